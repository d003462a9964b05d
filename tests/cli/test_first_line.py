"""A command says what it is about to do before anything slow (issue 21): its first line
comes before PyTorch, numba, SciPy, arch, matplotlib and pandas are imported, and a
kernel compilation is announced before the wait."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_madness.cli.experiment import first_line
from lstm_madness.data.db import make_engine
from lstm_madness.experiment.config import load_config

HEAVY = ("torch", "numba", "arch", "matplotlib", "scipy", "pandas")
MAIN = "from lstm_madness.cli import main; main()"


def _heavy_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter holds after ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.split()


def test_importing_the_cli_imports_no_heavy_library():
    assert _heavy_after("import lstm_madness.cli") == []


def test_what_run_does_before_its_first_line_imports_no_heavy_library():
    """``madness run CONFIG``: the config is read and checked and the store named, then
    the first line; numpy and SQLAlchemy only."""
    code = (
        "import lstm_madness.cli\n"
        "from lstm_madness.experiment.config import load_config\n"
        "from lstm_madness.data.db import make_engine, where\n"
        "load_config(None, ['data.target=SYN'])\n"
        "where(make_engine('sqlite:///x.db').url)"
    )
    assert _heavy_after(code) == []


def test_help_imports_no_heavy_library():
    code = (
        "import sys, contextlib, io\n"
        "sys.argv = ['madness', 'run', '--help']\n"
        "from lstm_madness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )
    assert _heavy_after(code) == []


def test_the_first_line_names_the_run_and_its_target(tmp_path):
    config = load_config(None, ["data.target=SYN"])
    path = tmp_path / "tiny.toml"
    assert first_line(config, None, path) == "run tiny.toml: loading SYN"
    assert first_line(config, "mine", path) == "run mine: loading SYN"
    named = load_config(None, ["name=lstm32", "data.target=XLF"])
    assert first_line(named, None, path) == "run lstm32: loading XLF"
    assert first_line(named, "mine", path) == "run mine: loading XLF"  # --name wins
    assert first_line(None, None, None, resume=3) == "run 3: resuming"


@pytest.mark.slow
def test_run_says_what_it_does_first_and_announces_a_cold_kernel_cache(tmp_path, write_returns):
    """A compiled run on a machine whose kernel cache is empty: the first line at once,
    then "compiling the training kernels once …" before the wait (not waited for here)."""
    store = tmp_path / "m.db"
    engine = make_engine(f"sqlite:///{store}")
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 300), "2002-01-01")
    engine.dispose()
    config = tmp_path / "tiny.toml"
    config.write_text(
        'name = "tiny"\n[data]\ntarget = "SYN"\n[model]\nunits = [4]\ntime_steps = 3\n'
        '[train]\nepochs = 1\ntrainer = "compiled"\n'
    )
    cache = tmp_path / "empty-cache"
    proc = subprocess.Popen(
        [sys.executable, "-c", MAIN, "run", str(config), "--db", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
    )
    lines: list[str] = []
    try:
        for line in proc.stderr:  # until the notice (or the end, if it never comes)
            lines.append(line.rstrip("\n"))
            if "compiling the training kernels" in line:
                break
    finally:
        proc.kill()
        proc.wait()
    assert lines[0] == f"run tiny: loading SYN from {Path(store)} …", lines
    assert f"compiling the training kernels once (about 20 s); cached in {cache}" in lines, lines

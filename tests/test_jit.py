"""The numba kernel cache (issue 21): install compiles every kernel module into the cache
that the commands read, and a cold cache is announced before the wait, never silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_madness import jit

TINY = "from numba import njit\n\n\n@njit(cache=True)\ndef twice(x):\n    return {k} * x\n"
NAME = "madness_test_tiny_kernels"


@pytest.fixture
def tiny_kernels(tmp_path, monkeypatch):
    """A one-kernel module registered in :data:`jit.KERNELS`, its numba cache in tmp_path;
    ``heard``: what :data:`jit.announce` was given."""
    numba = pytest.importorskip("numba")
    source = tmp_path / "src" / f"{NAME}.py"
    source.parent.mkdir()
    source.write_text(TINY.format(k=2))
    monkeypatch.syspath_prepend(str(source.parent))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(jit.KERNELS, NAME, ("the tiny kernels", "a moment"))
    monkeypatch.setattr(jit, "load_seconds", {})
    heard: list[str] = []
    monkeypatch.setattr(jit, "announce", heard.append)
    try:
        yield source, heard
    finally:
        sys.modules.pop(NAME, None)


def test_a_cold_kernel_module_is_announced_before_it_compiles(tiny_kernels, tmp_path):
    source, heard = tiny_kernels
    module = jit.load(NAME)
    notice = f"compiling the tiny kernels once (a moment); cached in {tmp_path / 'cache'}"
    assert heard == [notice] and not jit.cached(module)
    assert module.twice(3) == 6  # compiles, and writes the cache
    assert jit.cached(module)
    del sys.modules[NAME]  # a later process: loads from the cache, says nothing
    assert jit.cached(jit.load(NAME)) and heard == [notice]
    del sys.modules[NAME]
    source.write_text(TINY.format(k=3) + "# edited\n")  # a changed kernel: its cache is stale
    assert not jit.cached(jit.load(NAME)) and heard == [notice, notice]


def _warm(cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "lstm_madness.cli.warm"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_the_install_step_fills_a_fresh_cache_for_every_kernel_module(tmp_path):
    """``make demo`` / ``make test`` run ``python -m lstm_madness.cli.warm``: from an empty
    cache it compiles every kernel module there, saying so; a later process finds them."""
    cache = tmp_path / "numba"
    first = _warm(cache)
    assert first.returncode == 0, first.stderr
    for module in jit.KERNELS:
        assert list(cache.rglob(f"{module.rpartition('.')[2]}.*.nbi")), module
    assert f"compiling the training kernels once (about 20 s); cached in {cache}" in first.stderr
    again = _warm(cache)
    assert again.returncode == 0, again.stderr
    assert "compiling" not in again.stderr and f"numba kernels ready in {cache}" in again.stderr

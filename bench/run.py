"""One small ``madness run`` (not a test): the seconds it spends outside training and imports.

Issue 8's goal: a ``madness run`` of a small configuration spends at most 1 s outside
training and imports. Each repetition is a fresh process that first imports what the
command uses (the CLI, the runner, torch, SciPy, arch, and numba with its cached
kernels), then runs ``madness run`` on a small config (LSTM(8), 5 time steps, 5 epochs,
hold-out on 1,500 days of one AR(1) series) into a store that already holds earlier runs
on the same target, as a user's store does. What it waits for beyond training is the
command's wall time minus the run's ``train_s``: loading data, baselines, storing,
evaluating (metrics, backtest, tests, the trial set's SPA), finishing and printing.

Run: ``python -m bench run``; figures are printed and written to bench/results/run.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "run.json"
REPEATS = 5
CONFIG = """
[data]
target = "SYN"
[model]
units = [8]
time_steps = 5
[train]
epochs = 5
"""

_CHILD = """
import json, sys, time
from typer.testing import CliRunner
from lstm_madness.cli import app
import lstm_madness.experiment.runner, lstm_madness.experiment.summary
import torch, scipy.stats, arch.bootstrap
from lstm_madness import jit
from lstm_madness.models.compiled import kernels
kernels(); jit.load("lstm_madness.evaluation._resample")
start = time.perf_counter()
result = CliRunner().invoke(app, ["run", sys.argv[1], "--db", sys.argv[2], "--json", "-q"])
wall = time.perf_counter() - start
assert result.exit_code == 0, result.output
summary = json.loads(result.output)
print(json.dumps({"wall_s": wall, "timings": summary["timings"]}))
"""


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.sweep import _store

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/run.db"
        _store(db_url)
        config = Path(tmp) / "small.toml"
        config.write_text(CONFIG)
        loadavg_start = list(os.getloadavg())
        for _ in range(REPEATS):
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(config), db_url],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            out = json.loads(done.stdout.strip().splitlines()[-1])
            t = out["timings"]
            row = {
                "wall_s": round(out["wall_s"], 3),
                "train_s": round(t["train_s"], 3),
                "outside_training_s": round(out["wall_s"] - t["train_s"], 3),
                "store_s": round(t["store_s"], 3),
                "evaluate_s": round(t["evaluate_s"], 3),
            }
            rows.append(row)
            print(
                f"run: {row['wall_s']} s, training {row['train_s']} s, outside training "
                f"{row['outside_training_s']} s (store {row['store_s']}, evaluate "
                f"{row['evaluate_s']})",
                flush=True,
            )
    median = statistics.median(r["outside_training_s"] for r in rows)
    print(f"median outside training and imports: {median:.3f} s (goal <= 1 s)")
    results = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": loadavg_start,
            "loadavg_end": list(os.getloadavg()),
            "what": "madness run, LSTM(8), 5 steps, 5 epochs, hold-out, 1,500 days; "
            "the n-th run joins a trial set of n-1 earlier runs",
        },
        "runs": rows,
        "median_outside_training_s": round(median, 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Whole-study benchmarks on the shared real prices (``../shared/data/prices``).

1. The walk-forward XLF study, 1999–2017: yearly refits on an expanding window, 5 seeds
   (each a stored run), baselines, backtest, significance, verdict and the HTML report —
   wall time from an empty SQLite store with XLF already ingested.
2. XLF and its 30 components as inputs, 60 time steps, walk-forward: peak resident memory
   of the whole process (``ru_maxrss``) and prediction throughput over all windows.

Each part runs in its own process so that its peak memory is its own.
Run: ``python -m bench study`` (figures printed and written to bench/results/study.json).
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT.parent / "shared" / "data" / "prices"
RESULTS = ROOT / "bench" / "results"

STUDY = [
    "data.target=XLF",
    "data.start=1999-01-04",
    "data.end=2017-12-29",
    "model.units=[32]",
    "model.time_steps=5",
    "train.epochs=40",
    "train.patience=5",
    "train.batch_size=64",
    "split.scheme=walk_forward",
    "split.initial_train_days=1260",
    "split.retrain_every_days=252",
]
COMPONENTS = [
    "data.target=XLF",
    'data.inputs="universe:xlf"',
    "data.missing=start_later",
    "data.end=2020-12-11",
    "model.units=[32]",
    "model.time_steps=60",
    "train.epochs=5",
    "train.patience=0",
    "train.batch_size=64",
    "split.scheme=walk_forward",
    "split.initial_train_days=1260",
    "split.retrain_every_days=252",
]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _ingest(db_url: str, symbols: list[str]) -> float:
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.ingest import ingest_file
    from lstm_madness.data.store import init_db

    engine = make_engine(db_url)
    init_db(engine)
    start = time.perf_counter()
    for symbol in symbols:
        ingest_file(engine, PRICES / f"{symbol}.csv")
    engine.dispose()
    return time.perf_counter() - start


def study_part() -> dict:
    """Part 1, in this process."""
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.reporting import write_run_report
    from lstm_madness.sweep import SweepSpace, run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/study.db"
        ingest_s = _ingest(db_url, ["XLF"])
        start = time.perf_counter()
        sweep = run_sweep(db_url, load_config(None, STUDY), SweepSpace({}, 5))
        train_done = time.perf_counter()
        from lstm_madness.data.db import make_engine

        engine = make_engine(db_url)
        _, summary = write_run_report(engine, sweep["runs"][0], Path(tmp) / "report")
        total = time.perf_counter() - start
    return {
        "what": "walk-forward XLF 1999-2017, yearly refits, 5 seeds, LSTM(32), 5 steps, "
        "<=40 epochs (patience 5), baselines, backtest, significance, report",
        "runs": sweep["n_runs"],
        "ingest_s": round(ingest_s, 2),
        "train_and_store_s": round(train_done - start, 2),
        "total_s": round(total, 2),
        "n_test": summary["n_test"],
        "verdict_tradeable": summary["verdict"]["tradeable"],
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }


def components_part() -> dict:
    """Part 2, in this process."""
    import numpy as np

    from lstm_madness.data.db import make_engine
    from lstm_madness.data.universe import load_universe
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.dataset import fold_arrays, load_study_data
    from lstm_madness.experiment.folds import plan_folds
    from lstm_madness.experiment.runner import lstm_estimator, run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/components.db"
        symbols = load_universe("xlf")
        _ingest(db_url, symbols)
        engine = make_engine(db_url)
        config = load_config(None, COMPONENTS)
        start = time.perf_counter()
        summary = run_experiment(engine, config)
        run_s = time.perf_counter() - start
        data = load_study_data(engine, config)
        folds = plan_folds(len(data.dates), config.split)
        cut = folds[0].test.start  # every window: the first fold's train + all later days
        arrays = fold_arrays(data, slice(0, cut), slice(cut, len(data.dates)))
        model = lstm_estimator(config).fit(arrays.X_train[:256], arrays.y_train[:256])
        windows = np.concatenate([arrays.X_train, arrays.X_test])
        model.predict(windows[:64])  # warm-up
        t0 = time.perf_counter()
        model.predict(windows)
        predict_s = time.perf_counter() - t0
    return {
        "what": "XLF + 30 components (common window), 60 time steps, walk-forward",
        "inputs": len(data.symbols),
        "features": data.features.shape[1],
        "windows": len(windows),
        "run_total_s": round(run_s, 2),
        "n_test": summary["n_test"],
        "predict_all_windows_s": round(predict_s, 3),
        "predict_windows_per_s": round(len(windows) / predict_s),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }


def main() -> None:
    if not PRICES.is_dir():
        print(f"skipped: {PRICES} not found")
        return
    results = {
        "machine": platform.processor() or platform.machine(),
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    for part in ("study", "components"):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import json, bench.study as b; print(json.dumps(b.{part}_part()))",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results[part] = json.loads(out.stdout.strip().splitlines()[-1])
    s, c = results["study"], results["components"]
    print(f"{'benchmark':<56} {'figure':>12}")
    print(f"{'XLF walk-forward study, 5 seeds, end to end (s)':<56} {s['total_s']:>12}")
    print(f"{'  of which training + storing all runs (s)':<56} {s['train_and_store_s']:>12}")
    print(f"{'  peak memory (MiB)':<56} {s['peak_rss_mib']:>12}")
    print(f"{'XLF + 30 components, 60 steps: walk-forward run (s)':<56} {c['run_total_s']:>12}")
    print(f"{'  prediction over all windows (windows/s)':<56} {c['predict_windows_per_s']:>12}")
    print(f"{'  peak memory (MiB)':<56} {c['peak_rss_mib']:>12}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "study.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS / 'study.json'}")


if __name__ == "__main__":
    main()

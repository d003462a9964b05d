"""Sweep benchmark (not a test): what a user waits for as the number of trials grows.

1. **Scaling**: end-to-end wall time of sweeps of 16, 64, 256 and 1,024 small
   configurations (LSTM(4) or LSTM(8), 5 time steps, one epoch, seeds) on one synthetic
   AR(1) series of 1,500 days, each from an empty SQLite store, with the sweep's timing
   breakdown (train, predict, store, evaluate; see ``madness sweep --json``). Goal of
   issue 8: linear growth (256 configs <= 4.5x the 64-config time).
2. ``madness runs show --json`` on a member of the largest sweep: wall time of the whole
   command (a fresh process, imports included) and of the command inside this process.
   Goal: under 1 s.
3. The 64-config sweep of LSTM(16, 32, 64, 128) x 16 seeds, 5 epochs: the share of
   storing + evaluating in its wall time. Goal: <= 25 %. The evaluation stack's import is
   not in it (a sweep imports it when it starts, and the earlier sweeps already did in
   this process); its time in a fresh process is printed beside it, with the share it
   would give counted as evaluation. Beside it, the same trainings in
   Keras one after another, each timed inside one ``fit`` call (identical model, windows,
   batch size and epochs; Keras from ``bench/.keras-venv``, see ``bench/training.py``):
   ``KERAS_SEEDS`` seeds per size are measured and the 16 seeds extrapolated linearly.
   Goal: the sweep end to end >= 10x faster than those trainings.

Run: ``python -m bench sweep`` (all sizes; long) or
``python -m bench.sweep --sizes 16 --skip-lstm64 --out /tmp/sweep.json`` (a smoke run).
Figures are printed and written to bench/results/sweep.json with the load average
before and after, so a busy machine shows in the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sweep.json"
SIZES = (16, 64, 256, 1024)
#: Keras trainings measured per network size for the LSTM(16..128) comparison.
KERAS_SEEDS = 2
N_DAYS = 1500
#: Days of the LSTM(16..128) sweep: 3,078 fitted windows (the training benchmark's size,
#: and the issue's profile) after the hold-out split and the validation tail.
LSTM64_DAYS = 5110

SMALL = [
    "data.target=SYN",
    "model.time_steps=5",
    "train.epochs=1",
    "train.patience=0",
    "train.batch_size=64",
    "split.train_fraction=0.67",
]
LSTM64 = [
    "data.target=SYN",
    "model.time_steps=5",
    "train.epochs=5",
    "train.patience=0",
    "train.batch_size=32",
]


def _store(db_url: str, n_days: int = N_DAYS) -> None:
    """An empty store holding one AR(1) series (phi 0.1, sigma 1 %) as symbol SYN."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.store import init_db, upsert_bars

    rng = np.random.default_rng(0)
    returns = np.empty(n_days)
    returns[0] = 0.0
    noise = rng.normal(0.0, 0.01, n_days)
    for t in range(1, n_days):
        returns[t] = 0.1 * returns[t - 1] + noise[t]
    close = 100.0 * np.cumprod(1.0 + returns)
    frame = pd.DataFrame(
        {
            "symbol": "SYN",
            "date": pd.bdate_range("1995-01-03", periods=n_days),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "adj_close": close,
            "volume": 1_000_000,
        }
    )
    engine = make_engine(db_url)
    init_db(engine)
    with engine.begin() as conn:
        upsert_bars(conn, frame, source="bench")
    engine.dispose()


def _sweep(db_url: str, overrides: list[str], axes: dict, seeds: int) -> dict:
    from lstm_madness.experiment.config import load_config
    from lstm_madness.sweep import SweepSpace, run_sweep

    start = time.perf_counter()
    result = run_sweep(db_url, load_config(None, overrides), SweepSpace(axes, seeds))
    wall = time.perf_counter() - start
    return {**result, "end_to_end_s": wall}


def _runs_show(db_url: str, run_id: int) -> dict:
    from typer.testing import CliRunner

    from lstm_madness.cli import app

    command = ["runs", "show", str(run_id), "--db", db_url, "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    timed = []
    for _ in range(2):  # the first look after the sweep, then a repeated one
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", "from lstm_madness.cli import main; main()", *command],
            capture_output=True,
            check=True,
            env=env,
        )
        timed.append(time.perf_counter() - start)
    process_s = timed[0]
    runner = CliRunner()
    runner.invoke(app, command)  # warm: imports and caches of this process
    start = time.perf_counter()
    result = runner.invoke(app, command)
    in_process_s = time.perf_counter() - start
    assert result.exit_code == 0 and done.returncode == 0, result.output
    return {
        "process_s": round(process_s, 3),
        "process_repeat_s": round(timed[1], 3),
        "in_process_s": round(in_process_s, 3),
    }


def _keras_lstm64(db_url: str, run_id: int, units: list[int]) -> dict:
    """Keras wall time of the LSTM(16..128) sweep's trainings (inside ``fit``), measured
    on ``KERAS_SEEDS`` seeds per size and extrapolated to the sweep's 16."""
    from bench.training import ensure_keras, run_keras
    from lstm_madness.data.db import make_engine
    from lstm_madness.store.predictions import load_folds
    from lstm_madness.store.runs import get_run

    py, why = ensure_keras(lambda msg: print(msg, flush=True))
    if py is None:
        return {"error": why}
    engine = make_engine(db_url)
    config = get_run(engine, run_id).config
    n_train = int(load_folds(engine, run_id)["n_train"].sum())
    engine.dispose()
    n_fit = n_train - round(n_train * config["train"]["validation_fraction"])
    steps = config["model"]["time_steps"]
    rng = np.random.default_rng(0)
    jobs = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "windows.npz"
        np.savez(data, X=rng.normal(0, 1, (n_fit, steps, 1)), y=rng.normal(0, 0.01, n_fit))
        for u in units:
            for seed in range(KERAS_SEEDS):
                jobs.append(
                    {
                        "name": f"lstm{u}-s{seed}",
                        "data": str(data),
                        "units": [u],
                        "dropout": 0.0,
                        "cell": "lstm",
                        "batch_size": config["train"]["batch_size"],
                        "epochs": config["train"]["epochs"],
                        "learning_rate": config["train"]["learning_rate"],
                        "clip_norm": config["train"]["clip_norm"] or None,
                        "seed": seed,
                    }
                )
        out = run_keras(py, jobs, timeout=1800)
    measured = sum(j["total_s"] for j in out["jobs"])
    if out.get("error") or len(out["jobs"]) != len(jobs):
        return {"error": out.get("error") or "incomplete", "measured_s": measured}
    return {
        "keras": out.get("keras"),
        "tensorflow": out.get("tensorflow"),
        "n_fit_windows": n_fit,
        "measured_trainings": len(jobs),
        "measured_s": round(measured, 2),
        "extrapolated_64_s": round(measured * 16 / KERAS_SEEDS, 1),
    }


def _row(size: int, sweep: dict) -> dict:
    t = sweep["timings"]
    parts = ("train_s", "predict_s", "store_s", "evaluate_s")
    return {
        "configs": size,
        "end_to_end_s": round(sweep["end_to_end_s"], 2),
        **{key: round(t[key], 2) for key in parts},
        # start-up (the evaluation stack's import included), planning, loading the data
        "other_s": round(sweep["end_to_end_s"] - sum(t[key] for key in parts), 2),
        "per_config_ms": round(1000 * sweep["end_to_end_s"] / size, 1),
    }


def _evaluation_import_s() -> float:
    """Seconds to import the evaluation stack (what ``load_evaluation`` does when a sweep
    starts) in a fresh process that has already imported the training side."""
    code = (
        "import time, torch, numba, lstm_madness.sweep, lstm_madness.experiment.runner, "
        "lstm_madness.models.compiled\n"
        "from lstm_madness.experiment.runner import load_evaluation\n"
        "start = time.perf_counter(); load_evaluation(); print(time.perf_counter() - start)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    timed = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, check=True, env=env, text=True
            ).stdout
        )
        for _ in range(3)
    ]
    return float(np.median(timed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--skip-lstm64", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args([] if argv is None else argv)
    results: dict = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": list(os.getloadavg()),
            "days": N_DAYS,
            "what": "LSTM(4)/LSTM(8), 5 steps, 1 epoch; seeds fill the size; hold-out",
        },
        "scaling": [],
    }
    print(
        f"{'configs':>8} {'end to end s':>13} {'train s':>9} {'predict s':>10} "
        f"{'store s':>9} {'evaluate s':>11} {'ms/config':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        last = None
        for size in args.sizes:
            db_url = f"sqlite:///{tmp}/sweep{size}.db"
            _store(db_url)
            axes = {"model.units": ([4], [8])}
            sweep = _sweep(db_url, SMALL, axes, seeds=max(1, size // 2))
            row = _row(sweep["n_runs"], sweep)
            results["scaling"].append(row)
            print(
                f"{row['configs']:>8} {row['end_to_end_s']:>13} {row['train_s']:>9} "
                f"{row['predict_s']:>10} {row['store_s']:>9} {row['evaluate_s']:>11} "
                f"{row['per_config_ms']:>10}",
                flush=True,
            )
            last = (db_url, sweep["runs"][-1], size)
        if last is not None:
            db_url, run_id, size = last
            show = _runs_show(db_url, run_id)
            results["runs_show"] = {"sweep_configs": size, "run_id": run_id, **show}
            print(
                f"runs show --json on a member of the {size}-config sweep: "
                f"{show['process_s']} s as a command ({show['process_repeat_s']} s repeated), "
                f"{show['in_process_s']} s in process"
            )
        if not args.skip_lstm64:
            db_url = f"sqlite:///{tmp}/lstm64.db"
            _store(db_url, LSTM64_DAYS)
            axes = {"model.units": ([16], [32], [64], [128])}
            sweep = _sweep(db_url, LSTM64, axes, seeds=16)
            row = _row(sweep["n_runs"], sweep)
            share = (row["store_s"] + row["evaluate_s"]) / row["end_to_end_s"]
            imports = _evaluation_import_s()
            share_with_import = share + imports / row["end_to_end_s"]
            results["lstm16_128"] = {
                **row,
                "what": "LSTM(16/32/64/128) x 16 seeds, 5 epochs",
                "store_evaluate_share": round(share, 3),
                "evaluation_import_s": round(imports, 2),
                "store_evaluate_import_share": round(share_with_import, 3),
            }
            print(
                f"64 configs LSTM(16..128), 5 epochs: {row['end_to_end_s']} s end to end, "
                f"store + evaluate {share:.1%} (train {row['train_s']} s, other "
                f"{row['other_s']} s); importing the evaluation stack at start-up takes "
                f"{imports:.2f} s: {share_with_import:.1%} with it counted as evaluation"
            )
            keras = _keras_lstm64(db_url, sweep["runs"][0], [16, 32, 64, 128])
            results["lstm16_128"]["keras"] = keras
            if "extrapolated_64_s" in keras:
                speedup = keras["extrapolated_64_s"] / row["end_to_end_s"]
                results["lstm16_128"]["speedup_vs_keras"] = round(speedup, 1)
                print(
                    f"Keras, the same 64 trainings one after another: {keras['extrapolated_64_s']}"
                    f" s ({keras['measured_trainings']} measured inside fit, extrapolated) -> "
                    f"the sweep end to end is x{speedup:.1f} faster"
                )
            else:
                print(f"Keras comparison not available: {keras.get('error')}")
    sizes = {r["configs"]: r["end_to_end_s"] for r in results["scaling"]}
    if 64 in sizes and 256 in sizes:
        results["growth_256_over_64"] = round(sizes[256] / sizes[64], 2)
        print(f"256 configs / 64 configs: x{results['growth_256_over_64']} (goal <= 4.5)")
    results["meta"]["loadavg_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])

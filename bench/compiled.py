"""The compiled trainer against PyTorch, the batched engine and Keras 3; evidence for ``auto``.

Run ``python -m bench compiled`` (``python -m bench.compiled --help`` for options). Prints
tables and writes ``bench/results/compiled.json`` (with the load average before and after:
other processes on the same cores make small steps noisy). Parts:

* **iterations** — the original study's iterations 01 (LSTM(1)) and 02 (LSTM(32)): one
  time step, batch size 1, 100 epochs, no early stopping, on the ~3,700 training windows
  of XLF daily returns (``/work/shared/data/prices/XLF.csv`` or ``--prices``, 1999 to
  2020, the first 67 %): input the standardized return of day t, label the return of day
  t+1. Wall time of ``LSTMForecaster.fit`` with ``trainer="auto"`` (what ``madness run``
  uses) beside Keras 3 timed inside one ``fit`` call.
* **keras** — one network, 30 epochs, 3,078 windows of 5 time steps of seeded Gaussian
  returns: LSTM(32) batch 32, and LSTM 128:64 with dropout 0.2 batch 32; samples/s of
  whichever trainer ``auto`` picks, against Keras (median epoch after the first).
* **grid** — samples/s by trainer (``torch``, ``compiled``, ``batched``) over batch size ×
  units × time steps for one network and for 16 trained together (``batched`` trains the
  16 as one computation; ``torch`` trains networks one after another, so its 16-network
  figure is the one-network figure; ``compiled`` here too, though ``fit_forecasters`` fits
  compiled networks a thread per CPU: see **threads**). Each cell trains a short epoch
  (``n = clip(32 · batch, 64, 512)`` windows) and times the second epoch, so the cells
  are cheap and noisy; the thresholds of :func:`lstm_madness.models.training.resolve_trainer`
  come from where ``compiled`` stops beating the best of the others.
* **threads** — 16 compiled LSTM(16) and 16 LSTM(32) networks (seeds 0–15), batch 32,
  5 epochs, 3,078 windows of 5 time steps: wall time of one ``fit_forecasters`` call with
  ``n_jobs=1`` (one after another) and ``n_jobs`` = every CPU (a thread per CPU; the
  kernels release the GIL), medians of 3.
* **compile** — first-call cost of the compiled kernels in a fresh process with an empty
  cache (import + compilation) and with the cache filled (import + cache load).
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

from bench.training import ensure_keras, make_windows, run_keras
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.training import available_cpus, resolve_trainer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "compiled.json"
PRICES = ROOT.parent / "shared" / "data" / "prices" / "XLF.csv"
GRID_BATCH, GRID_UNITS, GRID_STEPS = (1, 8, 32, 128), (1, 8, 32, 128), (1, 5, 20)
TRAINERS = ("torch", "compiled", "batched")
COMMON = dict(
    learning_rate=1e-3, clip_norm=1.0, patience=0, validation_fraction=0.0, device="cpu", loss="mse"
)


def xlf_windows(path: Path, end: str = "2020-12-31") -> tuple[np.ndarray, np.ndarray]:
    """~3,700 training windows ``(n, 1, 1)`` of standardized XLF returns and the next
    day's return (the first 67 % of 1999–``end``)."""
    prices = pd.read_csv(path, parse_dates=["date"]).set_index("date")["adj_close"]
    ret = prices.pct_change().loc["1999-01-04":end].dropna().to_numpy()
    n = int(0.67 * (len(ret) - 1))
    x, y = ret[:n], ret[1 : n + 1]
    X = ((x - x.mean()) / x.std()).astype(np.float32).reshape(-1, 1, 1)
    return X, y


def timed_fit(ests: list[LSTMForecaster], data: list) -> dict:
    """Wall time of ``fit_forecasters`` and the time of each epoch (progress stamps)."""
    stamps: list[float] = []
    start = time.perf_counter()
    fit_forecasters(ests, data, progress=lambda _e, _a: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    epoch_s = list(np.diff([start, *stamps]))
    return {
        "total_s": total,
        "epoch_s": epoch_s,
        "trainer": ests[0].trainer_,
        "loss": ests[0].history_["train_loss"][-1],
    }


def run_iterations(
    prices: Path, keras_py, tmp: Path, epochs: int, log, keras_epochs: int | None = None
) -> dict:
    """Our trainer for ``epochs``; Keras for ``keras_epochs`` (default: the same), its
    total then scaled to ``epochs`` from the median epoch after the first (at batch size 1
    every epoch costs the same; 100 Keras epochs of LSTM(32) take over 20 minutes here)."""
    X, y = xlf_windows(prices)
    out: dict = {"n_windows": len(X), "epochs": epochs}
    jobs = []
    np.savez(tmp / "xlf.npz", X=X, y=((y - y.mean()) / y.std()).astype(np.float32))
    for name, units in (("01_lstm1", (1,)), ("02_lstm32", (32,))):
        est = LSTMForecaster(units=units, epochs=epochs, batch_size=1, seed=0, **COMMON)
        log(f"iterations: {name} ({resolve_trainer('auto', units, 1, 1)}) …")
        out[name] = timed_fit([est], [(X, y)])
        jobs.append(
            {
                "name": name,
                "data": str(tmp / "xlf.npz"),
                "units": list(units),
                "dropout": 0.0,
                "cell": "lstm",
                "batch_size": 1,
                "epochs": keras_epochs or epochs,
                "learning_rate": 1e-3,
                "clip_norm": 1.0,
            }
        )
    if keras_py is not None:
        log("iterations: keras …")
        kout = run_keras(keras_py, jobs, timeout=3600)
        for job in kout.get("jobs", []):
            entry = out[job["name"]]
            entry["keras_epochs_measured"] = len(job["epoch_s"])
            entry["keras_measured_s"] = job["total_s"]
            steady = float(np.median(job["epoch_s"][1:] or job["epoch_s"]))
            entry["keras_total_s"] = job["epoch_s"][0] + steady * (epochs - 1)
        out["keras_error"] = kout.get("error")
    return out


def run_keras_cases(keras_py, tmp: Path, epochs: int, log) -> dict:
    X, y = make_windows(3078, 5, 1, seed=0)
    np.savez(tmp / "cases.npz", X=X, y=y)
    cases = {"lstm32_b32": ((32,), 0.0), "lstm128x64_drop0.2_b32": ((128, 64), 0.2)}
    out, jobs = {}, []
    for name, (units, dropout) in cases.items():
        est = LSTMForecaster(
            units=units, dropout=dropout, epochs=epochs, batch_size=32, seed=0, **COMMON
        )
        log(f"keras cases: {name} ({resolve_trainer('auto', units, 32, 5)}) …")
        r = timed_fit([est], [(X, y)])
        r["samples_per_s"] = len(X) / float(np.median(r["epoch_s"][1:]))
        out[name] = r
        jobs.append(
            {
                "name": name,
                "data": str(tmp / "cases.npz"),
                "units": list(units),
                "dropout": dropout,
                "cell": "lstm",
                "batch_size": 32,
                "epochs": epochs,
                "learning_rate": 1e-3,
                "clip_norm": 1.0,
            }
        )
    if keras_py is not None:
        log("keras cases: keras …")
        kout = run_keras(keras_py, jobs, timeout=1800)
        for job in kout.get("jobs", []):
            out[job["name"]]["keras_samples_per_s"] = job["n"] / float(
                np.median(job["epoch_s"][1:])
            )
        out["keras_error"] = kout.get("error")
    return out


def grid_cell(trainer: str, batch: int, units: int, steps: int, models: int) -> float:
    """Samples/s (per network) of the second epoch."""
    n = int(np.clip(32 * batch, 64, 512))
    X, y = make_windows(n, steps, 1, seed=0)
    ests = [
        LSTMForecaster(
            units=(units,), epochs=2, batch_size=batch, seed=s, trainer=trainer, **COMMON
        )
        for s in range(models)
    ]
    stamps: list[float] = []
    fit_forecasters(
        ests, [(X, y)] * models, progress=lambda _e, _a: stamps.append(time.perf_counter())
    )
    return models * n / (stamps[-1] - stamps[-2]) if models == 1 or trainer == "batched" else 0.0


def run_grid(batches, units_list, steps_list, log) -> list[dict]:
    rows = []
    for steps in steps_list:
        for units in units_list:
            for batch in batches:
                row = {
                    "batch": batch,
                    "units": units,
                    "steps": steps,
                    "auto": resolve_trainer("auto", (units,), batch, steps),
                }
                for trainer in TRAINERS:
                    row[trainer] = grid_cell(trainer, batch, units, steps, 1)
                row["batched_16"] = grid_cell("batched", batch, units, steps, 16)
                single = {t: row[t] for t in TRAINERS}
                row["best_1"] = max(single, key=single.get)
                best16 = {
                    "torch": row["torch"],
                    "compiled": row["compiled"],
                    "batched": row["batched_16"],
                }
                row["best_16"] = max(best16, key=best16.get)
                log(
                    f"grid T={steps} H={units} B={batch}: "
                    + ", ".join(f"{t} {row[t]:,.0f}" for t in (*TRAINERS, "batched_16"))
                )
                rows.append(row)
    return rows


def run_threads(log, epochs: int = 5, reps: int = 3) -> dict:
    """Seconds of one ``fit_forecasters`` call fitting 16 compiled networks, sequentially
    (``n_jobs=1``) and a thread per CPU; medians of ``reps``."""
    X, y = make_windows(3078, 5, 1, seed=0)
    cpus = available_cpus()
    kw = dict(epochs=epochs, batch_size=32, trainer="compiled", **COMMON)
    fit_forecasters([LSTMForecaster(units=(16,), **{**kw, "epochs": 1})], [(X, y)])  # load
    out: dict = {"n_windows": len(X), "epochs": epochs, "networks": 16, "cpus": cpus}
    for units in (16, 32):
        row: dict = {}
        for jobs in sorted({1, cpus}):
            runs = []
            for _ in range(reps):
                ests = [LSTMForecaster(units=(units,), seed=s, **kw) for s in range(16)]
                start = time.perf_counter()
                fit_forecasters(ests, [(X, y)] * 16, n_jobs=jobs)
                runs.append(time.perf_counter() - start)
            row[f"n_jobs={jobs}"] = {"median_s": float(np.median(runs)), "runs_s": runs}
            log(f"threads: 16 × LSTM({units}), n_jobs={jobs}: {np.median(runs):.2f} s")
        out[f"lstm{units}"] = row
    return out


_COMPILE_PROBE = (
    "import time, numpy as np\n"
    "t0 = time.perf_counter()\n"
    "from lstm_madness.models.lstm import LSTMForecaster\n"
    "X = np.zeros((40, 2, 1), 'float32')\n"
    "t1 = time.perf_counter()\n"
    "LSTMForecaster(units=(2,), epochs=1, patience=1, trainer='compiled').fit(X, X[:, -1, 0])\n"
    "t2 = time.perf_counter()\n"
    "from lstm_madness.models import compiled\n"
    "print(compiled.first_load_s, t2 - t1)\n"
)


def run_compile() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for label in ("cold_cache", "warm_cache"):
            done = subprocess.run(
                [sys.executable, "-c", _COMPILE_PROBE],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            load_s, fit_s = map(float, done.stdout.split())
            out[label] = {"import_numba_s": load_s, "first_fit_s": fit_s}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prices", type=Path, default=PRICES)
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument(
        "--quick", action="store_true", help="fewer epochs and a reduced grid (to check the script)"
    )
    ap.add_argument("--parts", default="compile,iterations,keras,threads,grid")
    ap.add_argument(
        "--keras-iteration-epochs",
        type=int,
        default=5,
        help="Keras epochs measured for the batch-1 iterations (scaled to 100)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads (1 is faster on a shared, loaded machine)",
    )
    args = ap.parse_args([] if argv is None else argv)
    parts = args.parts.split(",")
    torch.set_num_threads(max(1, args.threads))
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results: dict = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "loadavg_start": os.getloadavg(),
            "quick": args.quick,
        }
    }
    if "compile" in parts:
        log("compile: cold and warm cache …")
        results["compile"] = run_compile()
    keras_py = None
    if not args.no_keras and ({"iterations", "keras"} & set(parts)):
        keras_py, status = ensure_keras(log)
        results["meta"]["keras_env"] = status
    with tempfile.TemporaryDirectory() as tmp:
        if "iterations" in parts:
            results["iterations"] = run_iterations(
                args.prices,
                keras_py,
                Path(tmp),
                10 if args.quick else 100,
                log,
                keras_epochs=args.keras_iteration_epochs,
            )
        if "keras" in parts:
            results["keras"] = run_keras_cases(keras_py, Path(tmp), 5 if args.quick else 30, log)
    if "threads" in parts:
        results["threads"] = run_threads(log, epochs=2 if args.quick else 5)
    if "grid" in parts:
        grid = (
            (GRID_BATCH, (8, 32, 128), (5,)) if args.quick else (GRID_BATCH, GRID_UNITS, GRID_STEPS)
        )
        results["grid"] = run_grid(*grid, log)
    results["meta"]["loadavg_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=float))
    print(render(results))
    return results


def render(r: dict) -> str:
    lines = [f"load average {r['meta']['loadavg_start']} → {r['meta']['loadavg_end']}"]
    if "compile" in r:
        c = r["compile"]
        lines.append(
            "compiled trainer, first fit in a fresh process (import numba + compile or "
            f"load the kernels): cold cache {c['cold_cache']['first_fit_s']:.1f} s, warm cache "
            f"{c['warm_cache']['first_fit_s']:.2f} s"
        )
    if "iterations" in r:
        it = r["iterations"]
        lines.append(f"\niterations ({it['n_windows']} windows, {it['epochs']} epochs, batch 1)")
        for name in ("01_lstm1", "02_lstm32"):
            e = it[name]
            k = e.get("keras_total_s")
            lines.append(
                f"  {name:10s} {e['trainer']:9s} {e['total_s']:8.1f} s   keras "
                + (
                    f"{k:8.1f} s (scaled from {e['keras_epochs_measured']} epochs)"
                    if k
                    else "not measured"
                )
            )
    if "keras" in r:
        lines.append("\none network, 3,078 windows × 5 steps, batch 32 (samples/s)")
        for name, e in r["keras"].items():
            if not isinstance(e, dict):
                continue
            k = e.get("keras_samples_per_s")
            ratio = f"{e['samples_per_s'] / k:.2f}×" if k else "–"
            lines.append(
                f"  {name:24s} {e['trainer']:9s} {e['samples_per_s']:10,.0f}   keras "
                f"{(k or 0):10,.0f}   {ratio}"
            )
    if "threads" in r:
        t = r["threads"]
        lines.append(
            f"\n16 compiled networks, {t['n_windows']:,} windows × 5 steps, batch 32, "
            f"{t['epochs']} epochs: one fit_forecasters call (median s)"
        )
        for name in ("lstm16", "lstm32"):
            cells = "   ".join(f"{key} {v['median_s']:6.2f}" for key, v in t[name].items())
            lines.append(f"  {name:8s} {cells}")
    if "grid" in r:
        lines.append(
            "\ngrid samples/s: T H B | torch compiled batched batched×16 | auto best1 best16"
        )
        for row in r["grid"]:
            lines.append(
                f"  {row['steps']:3d} {row['units']:4d} {row['batch']:4d} | "
                f"{row['torch']:10,.0f} {row['compiled']:10,.0f} {row['batched']:10,.0f} "
                f"{row['batched_16']:10,.0f} | {row['auto']:8s} {row['best_1']:8s} "
                f"{row['best_16']}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])

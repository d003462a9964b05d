"""Training throughput: plain PyTorch loop vs the batched engine vs Keras 3 on TensorFlow.

Run ``.venv/bin/python -m bench.training`` (``--help`` for options). It prints a table and
writes ``bench/results/training.json``. What is measured:

* **cases** — ~3,078 training windows of seeded Gaussian returns, 5 time steps, trained for
  a few epochs with Adam (lr 1e-3, global gradient-norm clip 1.0), MSE, shuffled batches, no
  early stopping: LSTM(32) batch 32; LSTM 128:64 with dropout 0.2 batch 32; LSTM(32)
  batch 1; LSTM(32) batch 32 with 30 input features. Columns:

  - ``loop``: ``LSTMForecaster.fit`` — the plain PyTorch loop (``nn.LSTM``, one model);
  - ``batched M=k``: ``train_many`` training k models (k seeds, same data) as one
    computation; samples/s is per-model-equivalent: ``k · n / epoch time``. M=1 is the honest
    single-model figure;
  - ``keras``: the identical model/data/epochs/batch size in Keras 3 on TensorFlow (CPU),
    run by ``bench/keras_ref.py`` in its own virtualenv ``bench/.keras-venv`` that this
    script creates (``pip install tensorflow-cpu keras``).

  Epoch time is the median over the epochs after the first (the first pays for allocation,
  tracing and compilation); the minimum is in the JSON too. The final training losses of
  the three are reported side by side (same data and protocol, different initial weights
  and batch orders, so they agree only approximately).
* **sweep** — 64 trainings on XLF-sized data (4,500 windows): 4 seeds × units {16, 32} ×
  time steps {5, 10} × 4 expanding walk-forward folds (1,800 … 4,500 windows), 5 epochs.
  Batched: one ``train_many`` call per (units, time steps) group of 16. Keras and the plain
  loop: one seed's 16 trainings are measured one after another and multiplied by 4 (the
  seeds do not change the work) — an extrapolation, stated as such in the output.
* **GFLOP/s** — achieved training FLOP rate against a 2048² float32 matmul on the same
  machine. FLOPs per sample: per recurrent layer and time step, forward
  ``2·G·H·(F_in + H)`` (matmuls, G = 4 gates for LSTM, 3 for GRU) ``+ 10·H`` (elementwise),
  plus ``2·H`` for the head; training ≈ 3 × forward.

Other engineers may share the 2 cores: the load average before and after is recorded and
timings taken under load are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lstm_madness.models.batched import TrainSpec, train_many
from lstm_madness.models.lstm import LSTMForecaster
from lstm_madness.models.network import RecurrentNet

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "training.json"
KERAS_VENV = ROOT / "bench" / ".keras-venv"
KERAS_SCRIPT = ROOT / "bench" / "keras_ref.py"
N_WINDOWS, TIME_STEPS, LR, CLIP = 3078, 5, 1e-3, 1.0
SWEEP_WINDOWS, SWEEP_FOLDS, SWEEP_EPOCHS = 4500, (1800, 2700, 3600, 4500), 5
SWEEP_SEEDS, SWEEP_UNITS, SWEEP_STEPS = (0, 1, 2, 3), (16, 32), (5, 10)


@dataclass(frozen=True)
class Case:
    name: str
    units: tuple[int, ...]
    dropout: float
    batch_size: int
    n_features: int
    epochs: int
    cell: str = "lstm"


def cases(epochs: int) -> list[Case]:
    return [
        Case("lstm32_b32", (32,), 0.0, 32, 1, epochs),
        Case("lstm128x64_drop0.2_b32", (128, 64), 0.2, 32, 1, epochs),
        Case("lstm32_b1", (32,), 0.0, 1, 1, max(2, epochs - 1)),
        Case("lstm32_b32_30feat", (32,), 0.0, 32, 30, epochs),
    ]


# ------------------------------------------------------------------------------ data


def make_windows(n: int, steps: int, n_features: int, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded Gaussian daily returns (std 1%) → windows X (n, steps, F) in percent and the
    next return of series 0, standardized, as y (n,)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, size=(n + steps, n_features))  # (days, F)
    X = np.lib.stride_tricks.sliding_window_view(r[:-1], steps, axis=0)[:n]  # (n, F, steps)
    X = (np.ascontiguousarray(X.transpose(0, 2, 1)) * 100).astype(np.float32)
    y = r[steps : steps + n, 0]
    return X, ((y - y.mean()) / y.std()).astype(np.float32)


def train_flops(units, n_features: int, steps: int, cell: str = "lstm") -> float:
    """Training FLOPs per sample (3 × forward; see the module docstring)."""
    gates = 4 if cell == "lstm" else 3
    fwd, f_in = 0.0, n_features
    for h in units:
        fwd += steps * (2 * gates * h * (f_in + h) + 10 * h)
        f_in = h
    return 3 * (fwd + 2 * units[-1])


def matmul_gflops(size: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / float(np.median(times)) / 1e9


def vmap_vs_engine(M: int = 16, units: int = 32, reps: int = 30) -> dict[str, float]:
    """One forward+backward step (B=32, T=5) for M models: ``torch.func.vmap`` of
    ``grad(functional_call(RecurrentNet))`` vs the engine's batched cell. µs per step."""
    import warnings

    from torch.func import functional_call, grad, stack_module_state, vmap

    from lstm_madness.models import batched_net

    T, B = TIME_STEPS, 32
    nets = []
    for seed in range(M):
        torch.manual_seed(seed)
        nets.append(RecurrentNet(1, (units,)))
    params, buffers = stack_module_state(nets)
    base = RecurrentNet(1, (units,)).to("meta")
    x, y = torch.randn(M, B, T, 1), torch.randn(M, B)

    def loss(p, b, xm, ym):
        return ((functional_call(base, (p, b), (xm,)) - ym) ** 2).mean()

    vgrad = vmap(grad(loss))
    stack = batched_net.NetworkStack(batched_net.arch_of(nets[0]), nets, torch.device("cpu"))
    xs = x.permute(0, 3, 2, 1).reshape(M, 1, T * B)  # (M, F, T·B)
    w = torch.full((M, B), 1.0 / B)
    engine_loss = stack.loss_fn("mse")

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps * 1e6

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no batching rule for aten::mkldnn_rnn_layer"
        v = timed(lambda: vgrad(params, buffers, x, y))
    e = timed(lambda: torch.autograd.grad(engine_loss(xs, y, w, T, None).sum(), stack.params))
    return {"M": M, "units": units, "vmap_us": v, "engine_us": e}


def epoch_stats(epoch_s: list[float]) -> dict[str, float]:
    steady = epoch_s[1:] or epoch_s
    return {
        "median_s": float(np.median(steady)),
        "min_s": float(min(steady)),
        "first_s": float(epoch_s[0]),
    }


# ---------------------------------------------------------------------------- runners


def run_loop(case: Case, X, y) -> dict:
    stamps: list[float] = []
    est = LSTMForecaster(
        units=case.units,
        cell=case.cell,
        dropout=case.dropout,
        epochs=case.epochs,
        batch_size=case.batch_size,
        learning_rate=LR,
        patience=0,
        validation_fraction=0.0,
        clip_norm=CLIP,
        seed=0,
        device="cpu",
        progress=lambda *_: stamps.append(time.perf_counter()),
    )
    t0 = time.perf_counter()
    est.fit(X, y)
    epoch_s = np.diff([t0, *stamps]).tolist()
    return {"epoch_s": epoch_s, **epoch_stats(epoch_s), "loss": est.history_["train_loss"][-1]}


def run_batched(case: Case, X, y, M: int, compile: bool = False) -> dict:
    nets = []
    for seed in range(M):
        torch.manual_seed(seed)
        nets.append(RecurrentNet(case.n_features, case.units, case.cell, case.dropout))
    specs = [TrainSpec(X, y, seed) for seed in range(M)]
    stamps: list[float] = []
    t0 = time.perf_counter()
    res = train_many(
        nets,
        specs,
        epochs=case.epochs,
        batch_size=case.batch_size,
        learning_rate=LR,
        loss="mse",
        clip_norm=CLIP,
        compile=compile,
        progress=lambda *_: stamps.append(time.perf_counter()),
    )
    epoch_s = np.diff([t0, *stamps]).tolist()
    losses = [r.history[-1]["loss"] for r in res]
    return {
        "M": M,
        "epoch_s": epoch_s,
        **epoch_stats(epoch_s),
        "loss": losses[0],
        "loss_mean": float(np.mean(losses)),
    }


def ensure_keras(log) -> tuple[Path | None, str]:
    """The Keras virtualenv's python, creating it on first use; (None, why) on failure."""
    py = KERAS_VENV / "bin" / "python"
    probe = [str(py), "-c", "import tensorflow, keras; print(keras.__version__)"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py, "existing"
    log(f"creating {KERAS_VENV.relative_to(ROOT)} and installing tensorflow-cpu + keras …")
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(KERAS_VENV)],
            check=True,
            capture_output=True,
            text=True,
        )
        pip = [str(py), "-m", "pip", "install", "-q"]
        done = subprocess.run([*pip, "tensorflow-cpu", "keras"], capture_output=True, text=True)
        if done.returncode != 0:
            done = subprocess.run([*pip, "tensorflow", "keras"], capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"pip install failed: {done.stderr.strip()[-500:]}"
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"could not create the virtualenv: {exc}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, "tensorflow/keras installed but do not import"
    return py, "created"


def run_keras(py: Path, jobs: list[dict], timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        jobs_path, out_path = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        jobs_path.write_text(json.dumps(jobs))
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
        try:
            done = subprocess.run(
                [str(py), str(KERAS_SCRIPT), str(jobs_path), str(out_path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
            error = None if done.returncode == 0 else done.stderr.strip()[-800:]
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:.0f} s"
        out = json.loads(out_path.read_text()) if out_path.exists() else {"jobs": []}
        out["error"] = error
        return out


# ------------------------------------------------------------------------------ sweep


def sweep_groups() -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(units, steps, [(seed, fold length), …]) — one batched call per group."""
    return [
        (u, s, [(seed, n) for seed in SWEEP_SEEDS for n in SWEEP_FOLDS])
        for u in SWEEP_UNITS
        for s in SWEEP_STEPS
    ]


def sweep_data() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {s: make_windows(SWEEP_WINDOWS, s, 1, seed=7) for s in SWEEP_STEPS}


def run_sweep_batched(data) -> dict:
    per_group = []
    t0 = time.perf_counter()
    for units, steps, jobs in sweep_groups():
        X, y = data[steps]
        nets, specs = [], []
        for seed, n in jobs:
            torch.manual_seed(seed)
            nets.append(RecurrentNet(1, (units,), "lstm"))
            specs.append(TrainSpec(X[:n], y[:n], seed))
        t1 = time.perf_counter()
        train_many(
            nets,
            specs,
            epochs=SWEEP_EPOCHS,
            batch_size=32,
            learning_rate=LR,
            loss="mse",
            clip_norm=CLIP,
        )
        per_group.append(
            {"units": units, "steps": steps, "models": len(jobs), "s": time.perf_counter() - t1}
        )
    return {"total_s": time.perf_counter() - t0, "groups": per_group}


def run_sweep_loop_subset(data) -> dict:
    """One seed's 16 trainings with the plain loop; the total for 64 is ×4."""
    t0 = time.perf_counter()
    for units, steps, _ in sweep_groups():
        X, y = data[steps]
        for n in SWEEP_FOLDS:
            LSTMForecaster(
                units=(units,),
                epochs=SWEEP_EPOCHS,
                batch_size=32,
                learning_rate=LR,
                patience=0,
                validation_fraction=0.0,
                clip_norm=CLIP,
                seed=0,
                device="cpu",
            ).fit(X[:n], y[:n])
    measured = time.perf_counter() - t0
    return {
        "measured_trainings": 16,
        "measured_s": measured,
        "extrapolated_64_s": measured * len(SWEEP_SEEDS),
    }


def keras_sweep_jobs(tmp: Path, data) -> list[dict]:
    jobs = []
    for units, steps, _ in sweep_groups():
        X, y = data[steps]
        for n in SWEEP_FOLDS:
            path = tmp / f"sweep_{steps}_{n}.npz"
            if not path.exists():
                np.savez(path, X=X[:n], y=y[:n])
            jobs.append(
                {
                    "name": f"sweep_u{units}_t{steps}_n{n}",
                    "data": str(path),
                    "units": [units],
                    "dropout": 0.0,
                    "cell": "lstm",
                    "batch_size": 32,
                    "epochs": SWEEP_EPOCHS,
                    "learning_rate": LR,
                    "clip_norm": CLIP,
                }
            )
    return jobs


# ------------------------------------------------------------------------------- main


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        prog="python -m bench.training", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--epochs", type=int, default=3, help="epochs per case (first = warm-up)")
    ap.add_argument("--models", default="1,16,64", help="batched M values, comma-separated")
    ap.add_argument("--no-keras", action="store_true", help="skip Keras")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile check")
    ap.add_argument("--no-sweep", action="store_true", help="skip the 64-config sweep")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own, i.e. all cores)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args([] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    Ms = [int(m) for m in args.models.split(",")]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = time.perf_counter()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
        "n_windows": N_WINDOWS,
        "time_steps": TIME_STEPS,
        "learning_rate": LR,
        "clip": CLIP,
    }
    with contextlib.suppress(OSError, StopIteration):
        meta["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    log("matmul reference …")
    peak = matmul_gflops()
    meta["matmul_2048_gflops"] = peak

    results: dict = {"meta": meta, "cases": {}}
    log("vmap vs engine …")
    results["vmap"] = vmap_vs_engine()
    keras_py, keras_status = (None, "skipped (--no-keras)")
    if not args.no_keras:
        keras_py, keras_status = ensure_keras(log)
    meta["keras_env"] = keras_status

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        keras_jobs, datasets = [], {}
        for case in cases(args.epochs):
            X, y = make_windows(N_WINDOWS, TIME_STEPS, case.n_features, seed=0)
            datasets[case.name] = (X, y)
            np.savez(tmp / f"{case.name}.npz", X=X, y=y)
            keras_jobs.append(
                {
                    "name": case.name,
                    "data": str(tmp / f"{case.name}.npz"),
                    "units": list(case.units),
                    "dropout": case.dropout,
                    "cell": case.cell,
                    "batch_size": case.batch_size,
                    "epochs": case.epochs,
                    "learning_rate": LR,
                    "clip_norm": CLIP,
                }
            )
        sdata = None if args.no_sweep else sweep_data()
        if sdata is not None:
            keras_jobs += keras_sweep_jobs(tmp, sdata)

        keras_out: dict = {"jobs": [], "error": keras_status if keras_py is None else None}
        if keras_py is not None:
            log(f"keras: {len(keras_jobs)} trainings in a subprocess …")
            keras_out = run_keras(keras_py, keras_jobs, timeout=900)
        kjobs = {j["name"]: j for j in keras_out.get("jobs", [])}
        results["keras"] = {
            k: keras_out.get(k) for k in ("keras", "tensorflow", "backend", "error")
        }

        for case in cases(args.epochs):
            X, y = datasets[case.name]
            n = len(X)
            flops = train_flops(case.units, case.n_features, TIME_STEPS, case.cell)
            log(f"{case.name}: plain loop …")
            row: dict = {
                "case": asdict(case),
                "train_flops_per_sample": flops,
                "loop": run_loop(case, X, y),
                "batched": {},
            }
            for M in Ms:
                log(f"{case.name}: batched M={M} …")
                row["batched"][str(M)] = run_batched(case, X, y, M)
            if case.name == "lstm32_b32" and not args.no_compile:
                # a fresh inductor cache, so the first epoch shows the cold compile time
                saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp / "inductor")
                for M in (1, 16):
                    log(f"{case.name}: batched M={M} compile=True …")
                    row.setdefault("batched_compiled", {})[str(M)] = run_batched(
                        case, X, y, M, compile=True
                    )
                if saved is None:
                    os.environ.pop("TORCHINDUCTOR_CACHE_DIR")
                else:
                    os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved
            if case.name in kjobs:
                kj = kjobs[case.name]
                row["keras"] = {
                    "epoch_s": kj["epoch_s"],
                    **epoch_stats(kj["epoch_s"]),
                    "loss": kj["loss"][-1],
                }
            for part in [
                row["loop"],
                *row["batched"].values(),
                row.get("keras"),
                *row.get("batched_compiled", {}).values(),
            ]:
                if part:
                    m = part.get("M", 1)
                    part["samples_per_s"] = m * n / part["median_s"]
                    part["gflops"] = part["samples_per_s"] * flops / 1e9
            results["cases"][case.name] = row

        if sdata is not None:
            log("sweep: batched …")
            sweep = {
                "trainings": 64,
                "epochs": SWEEP_EPOCHS,
                "windows": SWEEP_WINDOWS,
                "folds": list(SWEEP_FOLDS),
                "batched": run_sweep_batched(sdata),
            }
            log("sweep: plain loop subset …")
            sweep["loop"] = run_sweep_loop_subset(sdata)
            ks = [j for name, j in kjobs.items() if name.startswith("sweep_")]
            if len(ks) == 16:
                measured = sum(j["total_s"] for j in ks)
                sweep["keras"] = {
                    "measured_trainings": 16,
                    "measured_s": measured,
                    "extrapolated_64_s": measured * len(SWEEP_SEEDS),
                }
            results["sweep"] = sweep

    meta["loadavg_end"] = os.getloadavg()
    meta["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(render(results, Ms))
    print(f"\nwritten {args.out}")
    return results


def render(results: dict, Ms: list[int]) -> str:
    meta = results["meta"]
    lines = [
        f"CPU: {meta['cpu']} ({meta['cpu_count']} cores, torch threads "
        f"{meta['torch_threads']}), torch {meta['torch']}; load avg start "
        f"{meta['loadavg_start'][0]:.2f}, end {meta.get('loadavg_end', [math.nan])[0]:.2f}",
        f"2048² float32 matmul: {meta['matmul_2048_gflops']:.0f} GFLOP/s",
        f"Keras: {results['keras'].get('keras')} / TF {results['keras'].get('tensorflow')}"
        + (
            f" — NOT MEASURED: {results['keras']['error']}" if results["keras"].get("error") else ""
        ),
        "",
        "samples/s per epoch (median of epochs after the first; batched M=k: k models at "
        "once, per-model-equivalent k·n/s)",
    ]
    head = [
        "case",
        "loop",
        *[f"batched M={m}" for m in Ms],
        "keras",
        "M=1/keras",
        f"M={Ms[-1]}/keras",
        "GFLOP/s best",
        "loss loop/ours/keras",
    ]
    rows = []
    for name, row in results["cases"].items():
        k = row.get("keras")
        b = row["batched"]
        best = max(b.values(), key=lambda p: p["samples_per_s"])
        ks = k["samples_per_s"] if k else None
        rows.append(
            [
                name,
                _fmt(row["loop"]["samples_per_s"]),
                *[_fmt(b[str(m)]["samples_per_s"]) for m in Ms],
                _fmt(ks),
                _fmt(b[str(Ms[0])]["samples_per_s"] / ks, ".1f") + "×" if ks else "—",
                _fmt(b[str(Ms[-1])]["samples_per_s"] / ks, ".1f") + "×" if ks else "—",
                f"{best['gflops']:.1f} ({100 * best['gflops'] / meta['matmul_2048_gflops']:.0f}%)",
                f"{row['loop']['loss']:.3f}/{b[str(Ms[0])]['loss']:.3f}/"
                + (f"{k['loss']:.3f}" if k else "—"),
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        lines.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))
    comp = results["cases"].get("lstm32_b32", {}).get("batched_compiled")
    if comp:
        eager = results["cases"]["lstm32_b32"]["batched"]
        lines.append("")
        lines.append(
            "torch.compile (lstm32_b32): "
            + "; ".join(
                f"M={m}: {c['samples_per_s']:,.0f} samples/s vs eager "
                f"{eager[m]['samples_per_s']:,.0f} (first epoch incl. cold compile "
                f"{c['first_s']:.1f} s)"
                for m, c in comp.items()
                if m in eager
            )
        )
    vm = results.get("vmap")
    if vm:
        lines.append(
            f"torch.func.vmap(grad(functional_call(nn.LSTM net))) M={vm['M']}: "
            f"{vm['vmap_us']:,.0f} µs per forward+backward step vs engine "
            f"{vm['engine_us']:,.0f} µs ({vm['vmap_us'] / vm['engine_us']:.1f}× slower)"
        )
    sweep = results.get("sweep")
    if sweep:
        ours = sweep["batched"]["total_s"]
        lines += [
            "",
            f"64-config sweep ({sweep['windows']} windows, folds {sweep['folds']}, "
            f"{sweep['epochs']} epochs, 4 seeds × units {{16,32}} × steps {{5,10}}):",
            f"  batched (4 calls of 16): {ours:.1f} s",
        ]
        for key, label in (("loop", "plain PyTorch loop"), ("keras", "Keras")):
            part = sweep.get(key)
            if part:
                lines.append(
                    f"  {label}: {part['extrapolated_64_s']:.1f} s (extrapolated: measured "
                    f"16 trainings of one seed in {part['measured_s']:.1f} s, × 4 seeds) → "
                    f"batched is {part['extrapolated_64_s'] / ours:.1f}× faster"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])

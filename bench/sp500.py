"""The S&P 500 study at Fischer & Krauss scale (``examples/sp500/fischer_krauss.toml``).

Run: ``python -m bench sp500`` (figures printed and written to ``bench/results/sp500.json``;
``BENCH_SP500_SMOKE=1`` runs a reduced version to check the script;
``BENCH_SP500_PARTS=throughput`` or ``=period`` runs one part). Parts:

* **throughput** — sequences per second of one training epoch at the example's shape:
  LSTM(25), 240 steps of one feature, batch 512, dropout 0.1, RMSprop, binary
  cross-entropy, over 16,384 windows; the project's trainer (``trainer="auto"``, what
  ``madness run`` uses) beside plain PyTorch (``nn.LSTM``, ``nn.Dropout``, ``nn.Linear``,
  ``torch.optim.RMSprop``, the usual loop) in the same process run, each the median of
  two epochs after a warm-up epoch. Measured idle and beside a busy process (one core
  spinning). Plain PyTorch with subnormals flushed (``torch.set_flush_denormal(True)``,
  which the project's workers do) is shown too, so the ratio is not read as that alone.
  With CUDA present, the project's trainer on the GPU (``device="cuda"``) and plain
  PyTorch on the GPU are added.
* **period** — one study period of the example on real data, as a user runs it: the
  last 1,000 trading days to 2020-12-11 (750 training days, 250 trading days; about 500
  members), ``madness run`` as a subprocess into a SQLite store loaded from
  ``../shared/data/sp500`` (``$MADNESS_SP500``), trained to early stopping, stored and
  judged: wall time, the epochs early stopping ran, and the subprocess's peak resident
  memory.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SP500 = Path(os.environ.get("MADNESS_SP500", ROOT.parent / "shared" / "data" / "sp500"))
RESULTS = ROOT / "bench" / "results"
EXAMPLE = ROOT / "examples" / "sp500" / "fischer_krauss.toml"
MADNESS = [str(Path(sys.executable).with_name("madness"))]
SHAPE = {"units": 25, "time_steps": 240, "batch_size": 512, "dropout": 0.1}


def _windows(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = (0.02 * rng.standard_normal((n, SHAPE["time_steps"], 1))).astype(np.float32)
    y = (rng.random(n) > 0.5).astype(np.float32)
    return X, y


def project_rate(n: int, device: str = "cpu") -> dict:
    """Sequences/s of the project's trainer (``auto``) at the example's shape."""
    import numpy as np

    from lstm_madness.models.lstm import LSTMForecaster

    X, y = _windows(n)
    stamps: list[float] = []
    est = LSTMForecaster(
        units=(SHAPE["units"],), time_steps=SHAPE["time_steps"], dropout=SHAPE["dropout"],
        task="classification", epochs=3, batch_size=SHAPE["batch_size"], patience=0,
        validation_fraction=0.0, clip_norm=0.0, optimizer="rmsprop", device=device,
        progress=lambda *_: stamps.append(time.perf_counter()),
    )  # fmt: skip
    start = time.perf_counter()
    est.fit(X, y)
    epochs = np.diff([start, *stamps])[1:]  # after the warm-up epoch
    return {"seq_per_s": round(n / float(np.median(epochs)), 1), "trainer": est.trainer_}


def torch_rate(n: int, device: str = "cpu", flush: bool = False) -> dict:
    """Sequences/s of plain PyTorch at the example's shape (the usual training loop)."""
    import numpy as np
    import torch

    torch.set_flush_denormal(flush)
    torch.manual_seed(0)
    X, y = (torch.from_numpy(a).to(device) for a in _windows(n))

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(1, SHAPE["units"], batch_first=True)
            self.drop = torch.nn.Dropout(SHAPE["dropout"])
            self.head = torch.nn.Linear(SHAPE["units"], 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(self.drop(out[:, -1])).squeeze(-1)

    net = Net().to(device)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    bs = SHAPE["batch_size"]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad()
            loss_fn(net(X[idx]), y[idx]).backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"seq_per_s": round(n / float(np.median(times[1:])), 1)}


def _child(expr: str) -> dict:
    code = f"import json, bench.sp500 as b; print(json.dumps({expr}))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(n: int) -> dict:
    """Each figure in its own process, idle, then beside a spinning process."""
    import torch

    result: dict = {"shape": SHAPE}
    for load in ("idle", "busy"):
        # beside a busy process plain PyTorch can fall to ~100 sequences/s: fewer windows
        size = n if load == "idle" else max(n // 4, 4 * SHAPE["batch_size"])
        cases = {
            "project": f"b.project_rate({size})",
            "torch": f"b.torch_rate({size})",
            "torch_flush_denormal": f"b.torch_rate({size}, flush=True)",
        }
        spinner = None
        if load == "busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            result[load] = {"windows": size}
            for name, expr in cases.items():
                result[load][name] = _child(expr)
                print(f"  {load}: {name} {result[load][name]}", flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        figures = result[load]
        figures["ratio"] = round(figures["project"]["seq_per_s"] / figures["torch"]["seq_per_s"], 2)
    if torch.cuda.is_available():
        result["cuda"] = {
            "device": torch.cuda.get_device_name(0),
            "project": _child(f"b.project_rate({4 * n}, device='cuda')"),
            "torch": _child(f"b.torch_rate({4 * n}, device='cuda')"),
        }
    return result


def _last_period_start() -> str:
    """The first date of the last 1,000 trading days of the data (AAPL's calendar)."""
    lines = (SP500 / "prices" / "AAPL.csv").read_text().splitlines()[1:]
    return lines[-1000].split(",")[0]


def period(smoke: bool) -> dict:
    """One study period of the example, end to end, as ``madness run`` in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/sp500.db"
        files = sorted(str(p) for p in (SP500 / "prices").glob("*.csv"))
        start = time.perf_counter()
        subprocess.run([*MADNESS, "ingest", *files, "--db", db], check=True, capture_output=True)
        ingest_s = time.perf_counter() - start
        membership = str(SP500 / "membership.csv")
        subprocess.run(
            [*MADNESS, "universe", "add", "sp500", membership, "--db", db],
            check=True,
            capture_output=True,
        )
        sets = [f"data.start={_last_period_start()}"]
        if smoke:
            sets += ["train.epochs=2", "evaluation.bootstrap_reps=100"]
        cmd = [*MADNESS, "run", str(EXAMPLE), "--db", db, "--json", "--quiet"]
        for s in sets:
            cmd += ["--set", s]
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
    summary = json.loads(out.stdout)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
    timings = summary.get("timings", {})
    lstm = summary["models"]["lstm"]
    return {
        "overrides": sets,
        "ingest_s": round(ingest_s, 1),
        "run_wall_s": round(wall, 1),
        "train_s": timings.get("train_s"),
        "epochs_run": lstm.get("epochs_run"),
        "n_train": lstm.get("n_train"),
        "test_days": summary["backtest"]["n_days"],
        "members_mean": round(summary["backtest"]["members_mean"], 1),
        "peak_rss_mib_children": round(peak, 1),
    }


def main() -> None:
    smoke = os.environ.get("BENCH_SP500_SMOKE") == "1"
    parts = os.environ.get("BENCH_SP500_PARTS", "throughput,period").split(",")
    result: dict = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "smoke": smoke,
    }
    if "throughput" in parts:
        result["throughput"] = throughput(2048 if smoke else 16_384)
        _print_throughput(result["throughput"])
    if "period" in parts and not (SP500 / "membership.csv").is_file():
        print(f"period: skipped, {SP500} not found")
    elif "period" in parts:
        result["period"] = p = period(smoke)
        print(
            f"one study period ({p['members_mean']} members a day on average): "
            f"{p['run_wall_s']:.0f} s for madness run ({p['epochs_run']} epochs, training "
            f"{p['train_s']} s), peak {p['peak_rss_mib_children']:.0f} MiB; ingest "
            f"{p['ingest_s']:.0f} s"
        )
    result["load_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "sp500_smoke.json" if smoke else "sp500.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS / name}")


def _print_throughput(t: dict) -> None:
    print("LSTM(25), 240 steps, batch 512, RMSprop, dropout 0.1 — sequences/s of one epoch")
    print(f"{'':<26}{'project':>10}{'PyTorch':>10}{'ratio':>8}{'PyTorch+FTZ':>13}")
    for load in ("idle", "busy"):
        f = t[load]
        print(
            f"{load + ' (' + f['project']['trainer'] + ')':<26}"
            f"{f['project']['seq_per_s']:>10.0f}{f['torch']['seq_per_s']:>10.0f}"
            f"{f['ratio']:>7.1f}×{f['torch_flush_denormal']['seq_per_s']:>13.0f}"
        )
    if "cuda" in t:
        c = t["cuda"]
        print(f"cuda {c['device']}: project {c['project']['seq_per_s']:.0f}, "
              f"PyTorch {c['torch']['seq_per_s']:.0f} sequences/s")  # fmt: skip


if __name__ == "__main__":
    main()

"""Universe-study benchmark on the shared real prices (``../shared/data/prices``).

The 30 XLF components (the bundled list, XLF as benchmark), 2005–2020, yearly
walk-forward on an expanding window, one LSTM(32) shared by all members, 10 time steps,
batch 256, at most 20 epochs with patience 3, 3 seeds as one ``madness sweep``-style
batch of runs (baselines once, networks batched per fold), evaluation and verdict: wall
time from a SQLite store with the prices already ingested, and the peak resident memory
of the process (``ru_maxrss``). Goal of issue 11: under 10 minutes on 2 cores and under
2 GiB.

Run: ``python -m bench cross_section`` (figures printed and written to
``bench/results/cross_section.json``). ``BENCH_XS_SMOKE=1`` runs a reduced version
(2016–2020, 2 epochs, 1 seed) to check that the script works.
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
PRICES = ROOT.parent / "shared" / "data" / "prices"
RESULTS = ROOT / "bench" / "results"
EXAMPLE = ROOT / "examples" / "xlf" / "06_cross_section.toml"

FULL = {
    "overrides": [
        "data.start=2005-01-03",
        "data.end=2020-12-11",
        "model.units=[32]",
        "model.time_steps=10",
        "train.batch_size=256",
        "train.epochs=20",
        "train.patience=3",
        "split.scheme=walk_forward",
        "split.initial_train_days=1000",
        "split.retrain_every_days=252",
    ],
    "seeds": 3,
}
SMOKE = {
    "overrides": [
        "data.start=2016-01-04",
        "data.end=2020-12-11",
        "model.units=[32]",
        "model.time_steps=10",
        "train.batch_size=256",
        "train.epochs=2",
        "train.patience=3",
        "split.scheme=walk_forward",
        "split.initial_train_days=500",
        "split.retrain_every_days=252",
        "evaluation.bootstrap_reps=100",
    ],
    "seeds": 1,
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def part(smoke: bool) -> dict:
    """The whole benchmark, in this process (so that its peak memory is its own)."""
    import torch

    from lstm_madness.data.db import make_engine
    from lstm_madness.data.ingest import ingest_file
    from lstm_madness.data.store import init_db
    from lstm_madness.data.universe import load_universe
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.runner import run_experiments

    spec = SMOKE if smoke else FULL
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/xs.db")
        init_db(engine)
        for symbol in load_universe("xlf"):
            ingest_file(engine, PRICES / f"{symbol}.csv")
        configs = [
            load_config(EXAMPLE, [*spec["overrides"], f"train.seed={seed}"])
            for seed in range(spec["seeds"])
        ]
        start = time.perf_counter()
        summaries = run_experiments(engine, configs)
        total = time.perf_counter() - start
        engine.dispose()
    first = summaries[0]
    timings = [s["timings"] for s in summaries]
    return {
        "what": "30 XLF components, LSTM(32) shared, 10 steps, batch 256, <=20 epochs "
        f"(patience 3), yearly walk-forward, {spec['seeds']} seed(s)"
        + (" [SMOKE: reduced]" if smoke else ""),
        "overrides": spec["overrides"],
        "runs": len(summaries),
        "total_s": round(total, 2),
        "train_s": round(sum(t["train_s"] for t in timings), 2),
        "store_s": round(sum(t["store_s"] for t in timings), 2),
        "evaluate_s": round(sum(t["evaluate_s"] for t in timings), 2),
        "n_test_days": first["n_test"],
        "members_mean": first["backtest"]["members_mean"],
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    if not PRICES.is_dir():
        print(f"skipped: {PRICES} not found")
        return
    smoke = os.environ.get("BENCH_XS_SMOKE") == "1"
    code = f"import json, bench.cross_section as b; print(json.dumps(b.part({smoke})))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["machine"] = platform.processor() or platform.machine()
    print(result["what"])
    print(f"{'figure':<44} {'value':>12}")
    for key, label in [
        ("total_s", "wall time, train + store + evaluate (s)"),
        ("train_s", "  training, all runs (s)"),
        ("store_s", "  storing predictions (s)"),
        ("evaluate_s", "  evaluation (s)"),
        ("peak_rss_mib", "peak memory (MiB)"),
        ("n_test_days", "test days"),
    ]:
        print(f"{label:<44} {result[key]:>12}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "cross_section_smoke.json" if smoke else "cross_section.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS / name}")


if __name__ == "__main__":
    main()

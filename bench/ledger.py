"""Ledger benchmark: evaluating a trial set of 16 … 1,024 stored runs in one pass, and
``madness runs show`` (a live, read-only evaluation) on one member of the largest.

Runs are stored with synthetic predictions (1,000 test days, the network and the zero
baseline) so that only the evaluation is timed. ``show cold`` computes the trial set's
evidence (one query, one matrix, SPA, PBO); ``show warm`` reads it from the cache.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SIZES = (16, 64, 256, 1024)
DAYS = 1000


def _store(engine, n: int) -> list[int]:
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.summary import evaluate_runs
    from lstm_madness.store.lifecycle import create_run, finish_with_summaries
    from lstm_madness.store.predictions import record_folds, save_fold

    dates = pd.bdate_range("2015-01-02", periods=DAYS)
    rng = np.random.default_rng(n)
    realized = rng.normal(0.0003, 0.01, DAYS)
    folds = pd.DataFrame(
        [
            {
                "fold": 0,
                "train_start": dates[0].date() - pd.Timedelta(days=900),
                "train_end": dates[0].date() - pd.Timedelta(days=1),
                "test_start": dates[0].date(),
                "test_end": dates[-1].date(),
                "n_train": 600,
                "n_test": DAYS,
            }
        ]
    )
    ids = []
    for k in range(n):
        config = load_config(None, [f"train.seed={k}", f"data.target=B{n}"])
        run_id = create_run(engine, config)
        record_folds(engine, run_id, folds)
        frame = pd.concat(
            [
                pd.DataFrame(
                    {
                        "model": m,
                        "split": "test",
                        "date": dates,
                        "symbol": f"B{n}",
                        "y_true": realized,
                        "y_pred": p,
                        "realized": realized,
                    }
                )
                for m, p in (
                    ("lstm", 0.2 * realized + rng.normal(0, 0.01, DAYS)),
                    ("baseline:zero", np.zeros(DAYS)),
                )
            ],
            ignore_index=True,
        )
        save_fold(engine, run_id, 0, frame)
        ids.append(run_id)
    start = time.perf_counter()
    evaluations = evaluate_runs(engine, ids)
    finish_with_summaries(engine, {i: evaluations[i].summary for i in ids})
    return ids, time.perf_counter() - start


def main() -> None:
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.store import init_db
    from lstm_madness.experiment.summary import evaluate_runs
    from lstm_madness.store.lifecycle import mark_stale_runs

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MADNESS_CACHE_DIR"] = str(Path(tmp) / "cache")
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        init_db(engine)
        for n in SIZES:
            ids, one_pass = _store(engine, n)
            shown = ids[len(ids) // 2]
            for label in ("cold", "warm"):
                if label == "cold":
                    for f in (Path(tmp) / "cache").glob("trials/*.json"):
                        f.unlink()
                start = time.perf_counter()
                mark_stale_runs(engine)
                summary = evaluate_runs(engine, [shown])[shown].summary
                rows.append(
                    {
                        "runs": n,
                        "one_pass_s": one_pass,
                        "show": label,
                        "show_s": time.perf_counter() - start,
                        "trials": summary["significance"]["trials"],
                    }
                )
            print(
                f"{n:5d} runs: one pass {one_pass:7.2f} s ({one_pass / n * 1e3:6.1f} ms/run); "
                f"runs show cold {rows[-2]['show_s']:.2f} s, warm {rows[-1]['show_s']:.2f} s",
                flush=True,
            )
        engine.dispose()
    out = Path(__file__).parent / "results" / "ledger.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

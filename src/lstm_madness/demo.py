"""The main job: the whole study on the bundled S&P 500 sample, offline, in minutes.

``madness demo`` (and ``make demo``): initialise the store, ingest the S&P 500 daily bars
that ``arch`` ships (1999–2018), run a walk-forward LSTM study with baselines over a few
seeds (each seed a stored run, so the verdict counts them as trials), backtest after
costs, decide the verdict and write the report.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db
from lstm_madness.experiment.config import apply_overrides, from_dict
from lstm_madness.experiment.reporting import write_seeds_report
from lstm_madness.sweep import SweepSpace, run_sweep

DEMO_TOML = """
name = "demo-sp500-walk-forward"

[data]
target = "^GSPC"
start = 1999-01-04
end = 2018-12-31

[model]
units = [32]
time_steps = 10

[train]
epochs = 40
batch_size = 64
patience = 5
validation_fraction = 0.1

[split]
scheme = "walk_forward"
initial_train_days = 1260
retrain_every_days = 252
window = "expanding"

[backtest]
rule = "sign"
"""

DEMO_SEEDS = 3


def run_demo(
    db_url: str | None,
    out_dir: Path,
    *,
    seeds: int = DEMO_SEEDS,
    overrides: Sequence[str] = (),
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Run the demo study; return ``{"sweep", "run_id", "summary", "report", "ingest",
    "seeds"}``.

    With several seeds, every seed is evaluated in one pass; ``seeds`` is their
    :class:`~lstm_madness.report.seeds.SeedSet` (None for one seed), ``run_id`` and
    ``summary`` are those of the median seed by net Sharpe, whose details the report shows
    after a section covering every seed. ``report`` is its path,
    ``out_dir/run-N/report.html`` (N = ``run_id``), as ``madness report N`` writes it.
    ``progress`` receives the runner's fold and epoch events (see
    :data:`lstm_madness.experiment.runner.Progress`).
    """
    from lstm_madness.data.db import resolve_url
    from lstm_madness.data.ingest import ingest_sample

    url = resolve_url(db_url)
    engine = make_engine(url)
    init_db(engine)
    ingest = ingest_sample(engine, "sp500")
    base = from_dict(apply_overrides(tomllib.loads(DEMO_TOML), list(overrides)))
    sweep = (
        run_sweep(url, base, SweepSpace({}, seeds), run_progress=progress, name="demo")
        if seeds > 1
        else None
    )
    if sweep is None:
        from lstm_madness.experiment.runner import run_experiment

        run_ids = [int(run_experiment(engine, base, progress=progress)["run_id"])]
    else:
        run_ids = [int(i) for i in sweep["runs"]]
    # the seeds of this study, not every run of the config that the store holds
    report, shown, seeds = write_seeds_report(engine, run_ids, out_dir)
    run_id, summary = shown.run_id, shown.summary
    engine.dispose()
    return {
        "sweep": sweep,
        "run_id": run_id,
        "summary": summary,
        "report": report,
        "ingest": ingest,
        "seeds": seeds if len(seeds) > 1 else None,
    }

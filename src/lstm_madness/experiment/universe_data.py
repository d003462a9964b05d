"""From the store to a universe study's panel: members, calendar, features, labels.

A cross-sectional config (``target.kind`` ``cross_section`` / ``cross_section_direction``)
names its universe in ``data.target``: ``"universe:NAME"`` or a list of symbols.

- **Membership.** ``universe:NAME``: the intervals stored with ``madness universe add``
  win; without them the bundled list (``data/universes/NAME.csv``, today's members on
  every date) is used and the study carries :data:`SURVIVORSHIP_WARNING`. A list of
  symbols: each one a member on every date (the same caveat, named in the warnings).
  Members without stored prices are left out (listed in ``missing``).
- **Calendar.** The benchmark's trading days (``target.benchmark``, default the bundled
  universe's ETF) between ``data.start`` and ``data.end``; without a benchmark the union
  of the members' trading days. A member's return across a day it did not trade is NaN.
- **Panel.** :func:`lstm_madness.cross_section.build_panel` (see its alignment): a member
  is scored on ``t`` when it is a member on ``t`` with ``time_steps`` days of history; a
  price after a member's last date is never read into a window, a label or a return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.cross_section import (
    CrossSectionFold,
    CrossSectionPanel,
    build_cross_section_fold,
    build_panel,
)
from lstm_madness.data import schema
from lstm_madness.data.membership import (
    OPEN_START,
    SURVIVORSHIP_WARNING,
    bundled_benchmark,
    bundled_membership,
    load_membership,
    membership_mask,
)
from lstm_madness.data.store import as_date, calendar_days, read_panel, window_days
from lstm_madness.data.universe import available_universes
from lstm_madness.errors import DataError
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.experiment.folds import MIN_TRAIN_SAMPLES, Fold, plan_folds
from lstm_madness.experiment.limits import check_memory, check_time_steps, largest_fold
from lstm_madness.features import FEATURE_FIELDS

#: Said of a study over a plain list of symbols (no point-in-time membership).
LIST_WARNING = (
    "Survivorship bias: the universe is a fixed list of symbols, each a member on every "
    "date; load point-in-time membership with `madness universe add NAME FILE.csv`."
)


@dataclass(frozen=True, eq=False)
class UniverseStudy:
    """A universe's panel and where its membership came from."""

    panel: CrossSectionPanel
    source: str  #: "stored", "bundled" or "list"
    benchmark: str | None  #: ETF on the calendar (None: union of members' days)
    missing: tuple[str, ...]  #: listed members without stored prices

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.source == "bundled":
            out.append(SURVIVORSHIP_WARNING)
        elif self.source == "list":
            out.append(LIST_WARNING)
        if self.missing:
            shown = ", ".join(self.missing[:20])
            more = f" and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
            out.append(
                f"{len(self.missing)} listed member(s) without stored prices, left out: "
                f"{shown}{more}"
            )
        return out

    @property
    def dates(self) -> pd.DatetimeIndex:
        return self.panel.dates


def universe_intervals(engine: sa.Engine, config: ExperimentConfig) -> tuple[pd.DataFrame, str]:
    """The membership frame of the config's universe and its source (module docstring)."""
    target = config.data.target
    if isinstance(target, tuple):
        symbols = list(dict.fromkeys(target))
        frame = pd.DataFrame(
            {
                "symbol": symbols,
                "start": [OPEN_START] * len(symbols),
                "end": pd.Series([pd.NaT] * len(symbols), dtype="datetime64[ns]"),
            }
        )
        return frame, "list"
    name = target.split(":", 1)[1].strip().lower()
    with engine.connect() as conn:
        stored = load_membership(conn, schema.universe_members, name)
    if stored is not None:
        return stored, "stored"
    if name in available_universes():
        return bundled_membership(name), "bundled"
    raise DataError(
        f"data.target: no universe {name!r}: store its membership with "
        f"`madness universe add {name} FILE.csv` (bundled: {', '.join(available_universes())})"
    )


def benchmark_of(config: ExperimentConfig) -> str | None:
    """``target.benchmark``, else the bundled universe's ETF (None for a plain list)."""
    if config.target.benchmark:
        return config.target.benchmark
    target = config.data.target
    if isinstance(target, str):
        name = target.split(":", 1)[1].strip().lower()
        if name in available_universes():
            return bundled_benchmark(name)
    return None


def _read_union(
    engine: sa.Engine, symbols: list[str], field: str, config: ExperimentConfig
) -> pd.DataFrame:
    """``field`` of each member on its own trading days, outer-joined (the union)."""
    d = config.data
    parts = [
        read_panel(engine, [s], field, start=d.start, end=d.end, missing="keep") for s in symbols
    ]
    return pd.concat(parts, axis=1).sort_index()


@dataclass(frozen=True)
class _Members:
    intervals: pd.DataFrame
    source: str
    symbols: list[str]  #: listed members with stored prices
    missing: tuple[str, ...]  #: listed members without
    benchmark: str | None
    days: dict[str, int]  #: stored days between data.start and data.end (members, benchmark)


def _members(engine: sa.Engine, config: ExperimentConfig) -> _Members:
    """The universe's membership and which members and benchmark are stored; DataError
    when fewer than two members or the benchmark are (one query on the bars' key)."""
    intervals, source = universe_intervals(engine, config)
    listed = list(dict.fromkeys(intervals["symbol"]))
    bench = benchmark_of(config)
    d = config.data
    days = window_days(engine, [*listed, *([bench] if bench else [])], d.start, d.end)
    symbols = [s for s in listed if s in days]
    missing = tuple(s for s in listed if s not in days)
    if len(symbols) < 2:
        raise DataError(
            f"{config.target_key}: {len(symbols)} member(s) with stored prices; ingest the "
            "members first (madness fetch --universe NAME, or madness ingest FILES)"
        )
    if bench is not None and bench not in days:
        raise DataError(f"target.benchmark {bench!r} has no stored prices (ingest it first)")
    if d.benchmark_input and bench is None:
        raise DataError("data.benchmark_input needs target.benchmark (no ETF is known)")
    return _Members(intervals, source, symbols, missing, bench, days)


def check_universe_study(
    engine: sa.Engine, config: ExperimentConfig, baselines: Sequence[str] = ()
) -> None:
    """The checks of :func:`load_universe_study` that need no prices, with its errors:
    the universe is known, two members and the benchmark are stored, the calendar has
    enough days between ``data.start`` and ``data.end`` for the folds (``plan_folds`` on
    its days; the dates with a sample are fewer) and for samples of ``model.time_steps``
    days in each (:func:`~lstm_madness.experiment.limits.check_time_steps`); the memory
    of ``baselines`` and of the network fits this machine (every stored member counted
    on every day: an upper bound). A few queries on the bars' key: a run is refused
    before it is registered, and its data is read once."""
    from lstm_madness.models.baselines import check_width
    from lstm_madness.models.cross_section_baselines import fit_memory

    m = _members(engine, config)
    d = config.data
    start, end = as_date(d.start, "start"), as_date(d.end, "end")
    if m.benchmark is not None:
        n = m.days[m.benchmark]
        if n == 0:
            raise DataError(f"{m.benchmark} has no trading day between {start} and {end}")
    else:  # the union of the members' days (each member is read on its own days)
        for s in m.symbols:
            if m.days[s] == 0:
                raise DataError(f"{s} has no trading day between {start} and {end}")
        n = calendar_days(engine, m.symbols, d.start, d.end)
    folds = plan_folds(n, config.split, 1)
    members = len(m.symbols)
    calendar = [m.benchmark] if m.benchmark is not None else m.symbols
    check_time_steps(
        engine,
        config,
        folds,
        n_days=n,
        calendar=calendar,
        days_of=f"the calendar of {config.target_key}",
        min_dates=-(-MIN_TRAIN_SAMPLES // members),  # samples: dates × members at most
    )
    n_train, n_test = largest_fold(folds, config.model.time_steps, members)
    n_features = len(d.features) + d.benchmark_input + d.standardized_input
    dim = config.model.time_steps * n_features
    for name in baselines:
        if name == "ridge":
            check_width(name, n_train, dim)
    check_memory(
        config,
        n_train=n_train,
        n_test=n_test,
        n_features=n_features,
        dense_windows=False,  # the network gathers its windows per batch
        baselines={b: fit_memory(b, n_train, n_test, dim) for b in baselines},
        width_keys="data.features",
    )


def _no_sample_error(config: ExperimentConfig) -> DataError:
    return DataError(
        f"{config.target_key}: no complete sample (check data.start/end, membership "
        "and model.time_steps)"
    )


def load_universe_study(engine: sa.Engine, config: ExperimentConfig) -> UniverseStudy:
    """Read the members' fields and build the study's panel (module docstring)."""
    m = _members(engine, config)
    intervals, source, symbols, missing, bench = (
        m.intervals,
        m.source,
        m.symbols,
        m.missing,
        m.benchmark,
    )
    d = config.data
    # "ret" first: it sets the calendar the other fields are aligned to
    names = ["ret", *sorted({f for feat in d.features for f in FEATURE_FIELDS[feat]} - {"ret"})]
    fields: dict[str, pd.DataFrame] = {}
    for name in names:
        if bench is not None:
            read = dict(start=d.start, end=d.end, align_to=bench, missing="keep")
            panel = read_panel(engine, [bench, *symbols], name, **read)[symbols]
        else:
            panel = _read_union(engine, symbols, name, config)
        fields[name] = panel if name == "ret" else panel.reindex(fields["ret"].index)
    calendar = fields["ret"].index
    bench_ret = None
    if d.benchmark_input and bench is not None:  # _members refused it without one
        bench_ret = read_panel(engine, [bench], "ret", start=d.start, end=d.end, missing="keep")[
            bench
        ].reindex(calendar)
    mask = membership_mask(intervals, calendar, symbols)
    panel = build_panel(
        fields,
        mask,
        config.model.time_steps,
        kind=config.target.kind,
        features=d.features,
        benchmark_returns=bench_ret,
        standardized=d.standardized_input,
    )
    if not panel.eligible.any():
        raise _no_sample_error(config)
    return UniverseStudy(panel, source, bench, missing)


def sample_dates(study: UniverseStudy) -> np.ndarray:
    """Rows (dates) with at least one training sample: the dates folds are cut from."""
    return np.flatnonzero(study.panel.eligible.any(axis=1))


def _mask(rows: slice, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def plan_universe_folds(
    study: UniverseStudy, config: ExperimentConfig
) -> tuple[list[Fold], pd.DataFrame]:
    """The folds of ``config.split`` on the calendar's dates that hold a scored member on
    their test dates, and their table (``fold``, the first and last dates of the training
    and test samples, ``n_train`` and ``n_test``: the dates with a sample). DataError when
    a kept fold has fewer than :data:`~lstm_madness.experiment.folds.MIN_TRAIN_SAMPLES`
    training samples, or no fold is kept."""
    panel = study.panel
    n = len(panel.dates)
    kept, rows = [], []
    for fold in plan_folds(n, config.split, 1):
        train, test = _mask(fold.train, n), _mask(fold.test, n)
        if not panel.scored[test].any():
            continue
        n_train = int(panel.eligible[train].sum())
        if n_train < MIN_TRAIN_SAMPLES:
            raise DataError(
                f"fold {fold.index} has {n_train} complete training samples; start the test "
                "period later (split.*) or use more data"
            )
        kept.append(fold)
        # the samples of build_cross_section_fold: eligible on training dates, scored on test
        d_train = panel.samples(train, labelled=True)[0]
        d_test = panel.samples(test, labelled=False)[0]
        rows.append(
            {
                "fold": fold.index,
                "train_start": panel.dates[d_train[0]].date(),
                "train_end": panel.dates[d_train[-1]].date(),
                "test_start": panel.dates[d_test[0]].date(),
                "test_end": panel.dates[d_test[-1]].date(),
                "n_train": len(d_train),
                "n_test": len(d_test),
            }
        )
    if not kept:
        raise DataError(f"{config.target_key}: no fold holds a scored member on its test dates")
    return kept, pd.DataFrame(rows)


def universe_fold(study: UniverseStudy, fold: Fold) -> CrossSectionFold:
    """The samples of one fold (of :func:`plan_universe_folds`), with the scaler pooled over
    the members' rows up to its last training date."""
    n = len(study.panel.dates)
    return build_cross_section_fold(
        study.panel, train=_mask(fold.train, n), test=_mask(fold.test, n)
    )


def universe_rows(
    fold: CrossSectionFold, keep: np.ndarray, predictions: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The prediction rows a run stores for one fold: one per (test sample kept, model),
    with the member's label (``y_true``) and next-day return (``realized``)."""
    parts = []
    for name, y_pred in predictions.items():
        rows = fold.predictions_frame(y_pred)[keep]
        parts.append(rows.assign(model=name, split="test"))
    return pd.concat(parts, ignore_index=True)


def survivorship_warnings(engine: sa.Engine, config: ExperimentConfig) -> list[str]:
    """Survivorship warnings of a universe study, by where its membership comes from in
    the store now (the bundled list or a plain list of symbols: no point-in-time
    membership). Known limit: a membership stored after the run was trained removes the
    warning from the live summary of a run trained on the bundled list."""
    _, source = universe_intervals(engine, config)
    return {"bundled": [SURVIVORSHIP_WARNING], "list": [LIST_WARNING]}.get(source, [])

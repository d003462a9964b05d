"""Study kinds: chosen once from ``target.kind``, one protocol, two implementations.

Each kind is driven here as the engine drives it (load → folds → fold data → baselines →
rows; evaluation rows → net returns for the ledger), on a single asset's store and a
synthetic universe's panel.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from lstm_madness.cross_section import build_panel
from lstm_madness.data.db import make_engine
from lstm_madness.data.membership import membership_mask
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.kinds import KINDS, StudyKind, study_kind
from lstm_madness.experiment.kinds.cross_section import CROSS_SECTION
from lstm_madness.experiment.kinds.timing import TIMING
from lstm_madness.experiment.universe_data import UniverseStudy

XS = [
    "data.target=universe:synth",
    "target.kind=cross_section",
    "backtest.rule=long_short",
    "model.time_steps=5",
    "split.scheme=walk_forward",
    "split.initial_train_days=1000",
    "split.retrain_every_days=250",
]


class _Timings:
    def __init__(self) -> None:
        self.added: list[tuple[str, dict]] = []

    def add(self, name: str, **info) -> None:
        self.added.append((name, info))


def test_the_kind_is_chosen_once_from_the_target_kind() -> None:
    assert study_kind(load_config(None, [])) is TIMING
    assert study_kind(load_config(None, ["target.kind=direction"])) is TIMING
    assert study_kind(load_config(None, XS)) is CROSS_SECTION
    assert study_kind({"target": {"kind": "cross_section_direction"}}) is CROSS_SECTION
    assert study_kind({"data": {"target": "XLF"}}) is TIMING  # a stored config without kind
    assert study_kind("excess") is TIMING
    assert set(KINDS) == {"cross_section", "cross_section_direction"}


@pytest.mark.parametrize("kind", [TIMING, CROSS_SECTION], ids=lambda k: k.name)
def test_each_kind_implements_the_protocol(kind) -> None:
    for name, member in vars(StudyKind).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(kind, name)
        wanted = list(inspect.signature(member).parameters)[1:]
        assert list(inspect.signature(ours).parameters) == wanted, name
    assert isinstance(kind.name, str) and isinstance(kind.shares_baselines, bool)


def test_timing_from_the_store_to_the_rows(sqlite_url, write_returns, ar1_returns) -> None:
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", ar1_returns(900, 0.1, seed=4))
    config = load_config(
        None,
        ["data.target=SYN", "data.inputs=[\"SYN\"]", "model.time_steps=5",
         "split.scheme=holdout", "split.train_fraction=0.7"],
    )  # fmt: skip
    kind = study_kind(config)
    kind.check(engine, config)
    study = kind.load(engine, config)
    plan = kind.plan_folds(study, config)
    assert list(plan.table.columns) == [
        "fold", "train_start", "train_end", "test_start", "test_end", "n_train", "n_test"
    ]  # fmt: skip
    assert len(plan.folds) == len(plan.table) == 1 and plan.n_features == 1
    data = kind.fold_data(study, plan.folds[0])
    assert len(data.y_test) == plan.table["n_test"].iloc[0]
    timings = _Timings()
    baselines = kind.fit_baselines(config, data, timings)
    assert baselines.keep is None
    assert set(baselines.predictions) == {f"baseline:{n}" for n in kind.baseline_names(config)}
    assert [name for name, _ in timings.added] == list(baselines.predictions)
    # persistence: the target's last return of each window, unscaled
    last = study.features.iloc[data.rows_test, study.target_column].to_numpy()
    np.testing.assert_allclose(baselines.predictions["baseline:persistence"], last, rtol=1e-5)
    assert kind.validation_gap(config, data) == config.target.horizon - 1
    y_pred = np.zeros(len(data.y_test))
    rows = kind.rows(config, data, {"lstm": y_pred, **baselines.predictions}, baselines.keep)
    assert len(rows) == 5 * len(y_pred) and set(rows["symbol"]) == {"SYN"}
    np.testing.assert_array_equal(rows["realized"].to_numpy()[: len(y_pred)], data.asset_test)
    engine.dispose()


@pytest.fixture
def universe(make_universe):
    fields, intervals, _ = make_universe(n_symbols=20, n_days=1400)
    config = load_config(None, XS)
    mask = membership_mask(intervals, fields["ret"].index, fields["ret"].columns)
    panel = build_panel(fields, mask, config.model.time_steps, kind="cross_section")
    return config, UniverseStudy(panel, "stored", None, ())


def test_cross_section_fold_by_fold(universe) -> None:
    config, study = universe
    kind = study_kind(config)
    plan = kind.plan_folds(study, config)
    assert len(plan.folds) == 2 and plan.n_features == 1
    for fold, row in zip(plan.folds, plan.table.itertuples(), strict=True):
        data = kind.fold_data(study, fold)
        # the table counts the dates with a sample, as the fold holds them
        assert row.n_train == len(data.train[0]) and row.n_test == len(data.test[0])
        assert study.panel.dates[data.test[0][0]].date() == row.test_start
        timings = _Timings()
        baselines = kind.fit_baselines(config, data, timings)
        assert [name for name, _ in timings.added] == ["baselines"]
        keep = baselines.keep
        momentum = baselines.predictions["baseline:momentum"]
        np.testing.assert_array_equal(keep, np.isfinite(momentum))  # the others score all
        network = np.arange(len(keep), dtype=float)
        rows = kind.rows(config, data, {"lstm": network, **baselines.predictions}, keep)
        assert len(rows) == 5 * int(keep.sum())
        assert rows.groupby("model").size().eq(int(keep.sum())).all()
    # the fit set ends on the day before the validation tail's first date
    gap, dates = kind.validation_gap(config, data), data.train[0]
    first = len(dates) - max(1, int(np.ceil(config.train.validation_fraction * len(dates))))
    assert gap > 0 and dates[first - gap - 1] < dates[first] == dates[first - gap]
    stop = load_config(None, [*XS, "train.patience=0"])
    assert kind.validation_gap(stop, data) == 0
    assert not kind.shares_baselines and TIMING.shares_baselines


def test_a_direction_universe_has_a_zero_forecast_of_one_half(universe) -> None:
    config, study = universe
    config = load_config(None, [*XS, "target.kind=cross_section_direction"])
    data = CROSS_SECTION.fold_data(study, CROSS_SECTION.plan_folds(study, config).folds[0])
    zero = CROSS_SECTION.fit_baselines(config, data, _Timings()).predictions["baseline:zero"]
    assert np.all(zero == 0.5)


def test_the_ledger_reads_each_members_net_returns_through_its_kind() -> None:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=60)
    settings = EvaluationSettings(cost_bps=2.0)
    realized = rng.normal(0, 0.01, 60)
    frame = pd.concat(
        [
            pd.DataFrame({"run_id": i, "date": dates, "symbol": "SYN",
                          "y_pred": rng.normal(0, 0.01, 60), "realized": realized})
            for i in (1, 2)
        ],
        ignore_index=True,
    )  # fmt: skip
    nets = TIMING.member_net_returns(frame, {1: "regression", 2: "regression"}, settings)
    one = frame[frame["run_id"] == 1]
    expected = settings.backtest(one["y_pred"].to_numpy(), realized, "regression").net_returns
    np.testing.assert_array_equal(nets[1].to_numpy(), expected)
    bench = TIMING.benchmark_net_returns(frame, 1, dates[10:], settings)
    assert bench[0] == pytest.approx(realized[10] - 2e-4) and len(bench) == 50

    # a universe: each member's long-short book; the first member's equal-weight book
    symbols = [f"S{j}" for j in range(12)]
    rows = []
    for run_id in (1, 2):
        for d in dates:
            for s in symbols:
                rows.append((run_id, d, s, rng.normal(), rng.normal(0, 0.01)))
    panel = pd.DataFrame(rows, columns=["run_id", "date", "symbol", "y_pred", "realized"])
    ls = EvaluationSettings(rule="long_short", top_k=3)
    nets = CROSS_SECTION.member_net_returns(panel, {}, ls)
    books = CROSS_SECTION.member_books(panel, ls)
    np.testing.assert_array_equal(nets[2].to_numpy(), books[2].net_returns.to_numpy())
    bench = CROSS_SECTION.benchmark_net_returns(panel, 1, dates[5:], ls)
    np.testing.assert_array_equal(bench, books[1].equal_weight.to_numpy()[5:])


def test_trades_add_up_to_the_universe_book() -> None:
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2020-01-01", periods=40)
    symbols = [f"S{j}" for j in range(10)]
    rows = pd.DataFrame(
        [(d, s, "lstm", rng.normal(), rng.normal(0, 0.01), rng.normal(0, 0.01))
         for d in dates for s in symbols],
        columns=["date", "symbol", "model", "y_pred", "y_true", "realized"],
    )  # fmt: skip
    settings = EvaluationSettings(rule="long_short", top_k=2, short_borrow_bps=50.0)
    table = CROSS_SECTION.trades(rows, settings, "regression")
    book = settings.long_short(
        rows.pivot(index="date", columns="symbol", values="y_pred").to_numpy(),
        rows.pivot(index="date", columns="symbol", values="realized").to_numpy(),
    ).book
    daily = table.groupby("date")[["gross_return", "net_return"]].sum()
    np.testing.assert_allclose(daily["gross_return"], book.gross_returns, atol=1e-15)
    np.testing.assert_allclose(daily["net_return"], book.net_returns, atol=1e-15)

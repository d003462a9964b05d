"""Cross-sectional samples: windows, labels, membership and scaling against slow loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_madness.cross_section import (
    build_cross_section_fold,
    build_panel,
    cross_sectional_zscore,
    gather_windows,
    window_view,
)
from lstm_madness.data.membership import membership_mask
from lstm_madness.errors import ConfigError, DataError
from lstm_madness.features import StandardScaler

T = 10


@pytest.fixture
def universe(make_universe):
    fields, intervals, market = make_universe(n_symbols=12, n_days=1300)
    ret = fields["ret"]
    mask = membership_mask(intervals, ret.index, ret.columns)
    return fields, mask, market


def _panel(universe, **kwargs):
    fields, mask, market = universe
    steps = kwargs.pop("time_steps", T)
    options = {"benchmark_returns": market, "standardized": True, **kwargs}
    return build_panel(fields, mask, steps, **options)


# ------------------------------------------------------------------ a slow reference


def _slow_zscore(ret: np.ndarray, members: np.ndarray, row: int, col: int) -> float:
    if not np.isfinite(ret[row, col]):
        return np.nan
    pool = [
        ret[row, j] for j in range(ret.shape[1]) if members[row, j] and np.isfinite(ret[row, j])
    ]
    if not pool:
        return np.nan
    mean, sd = np.mean(pool), np.std(pool)
    return 0.0 if sd == 0 else (ret[row, col] - mean) / sd


def _slow_window(ret, members, bench, row: int, col: int) -> np.ndarray:
    out = np.empty((T, 3))
    for k, r in enumerate(range(row - T + 1, row + 1)):
        out[k] = (ret[r, col], bench[r], _slow_zscore(ret, members, r, col))
    return out


def _slow_scored(ret, members, bench, row: int, col: int) -> bool:
    return (
        row >= T - 1
        and bool(members[row, col])
        and bool(np.isfinite(_slow_window(ret, members, bench, row, col)).all())
    )


def _slow_label(ret, members, bench, row: int, col: int, kind: str) -> float:
    pool = {}
    for j in range(ret.shape[1]):
        nxt = ret[row + 1, j] if row + 1 < len(ret) else np.nan
        if _slow_scored(ret, members, bench, row, j) and np.isfinite(nxt):
            pool[j] = nxt
    if col not in pool:
        return np.nan
    if kind == "cross_section":
        return pool[col] - sum(pool.values()) / len(pool)
    return float(pool[col] > np.median(list(pool.values())))


# rows/symbols: a late joiner (S00 joins on day 260), a delisted member on its last day
# (S04, data end on day 1100), a member that leaves (S06 on day 900) and one that rejoins
# (S08: out from day 501 to 699), and plain members
PAIRS = [(260, 0), (261, 0), (1100, 4), (1099, 4), (900, 6), (700, 8), (500, 8), (37, 9)]


@pytest.mark.parametrize("kind", ["cross_section", "cross_section_direction"])
def test_windows_and_labels_match_a_slow_reference(universe, kind: str) -> None:
    panel = _panel(universe, kind=kind)
    assert panel.feature_names == ("ret", "benchmark:ret", "ret_xs_z")
    ret, members = panel.returns, panel.members
    bench = universe[2].to_numpy()
    for row, col in PAIRS:
        expected = _slow_window(ret, members, bench, row, col)
        got = panel.windows(np.array([row]), np.array([col]))[0]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
        assert panel.scored[row, col] == _slow_scored(ret, members, bench, row, col)
        np.testing.assert_allclose(
            panel.labels[row, col], _slow_label(ret, members, bench, row, col, kind)
        )
    assert panel.task == ("classification" if kind.endswith("direction") else "regression")


def test_zscore_matches_loop() -> None:
    rng = np.random.default_rng(3)
    ret = rng.normal(size=(20, 6))
    ret[rng.random(ret.shape) < 0.2] = np.nan
    members = rng.random(ret.shape) < 0.7
    members[5] = False  # a day without members: no z-score
    z = cross_sectional_zscore(ret, members)
    for row in range(20):
        for col in range(6):
            np.testing.assert_allclose(z[row, col], _slow_zscore(ret, members, row, col))


def test_labels_are_demeaned_over_the_days_eligible_members(universe) -> None:
    panel = _panel(universe)
    days = panel.eligible.any(axis=1)
    means = np.nanmean(np.where(panel.eligible, panel.labels, np.nan)[days], axis=1)
    np.testing.assert_allclose(means, 0.0, atol=1e-15)
    assert np.isnan(panel.labels[~panel.eligible]).all()
    assert np.isfinite(panel.labels[panel.eligible]).all()
    direction = _panel(universe, kind="cross_section_direction")
    share = np.nanmean(np.where(direction.eligible, direction.labels, np.nan)[days], axis=1)
    assert np.all(np.abs(share - 0.5) <= 0.5 / direction.eligible.sum(axis=1)[days] + 1e-12)


def test_members_scored_only_while_members_and_with_history(universe) -> None:
    panel = _panel(universe, time_steps=100)
    rows = np.arange(len(panel.dates))
    scored = panel.frame("scored")
    # S00: data from day 200, member from day 260: a full 100-day window first on day 299
    assert rows[scored["S00"].to_numpy()][0] == 299
    # S06 leaves on day 900 (inclusive); S08 is out from day 501 to day 699
    assert rows[scored["S06"].to_numpy()][-1] == 900
    assert not scored["S08"].iloc[501:700].any() and scored["S08"].iloc[[500, 799]].all()
    # S04's data end on day 1100: scored that day (its delisting is not known at t),
    # but not a training sample (no next-day return); never scored afterwards
    assert scored["S04"].iloc[1100] and not panel.eligible[1100, 4]
    assert not scored["S04"].iloc[1101:].any()
    assert not (panel.scored & ~panel.members).any()


def test_canary_nothing_after_t_reaches_a_sample_dated_t(universe) -> None:
    fields, mask, market = universe
    base = _panel(universe)
    t = 700
    ret = fields["ret"].copy()
    ret.iloc[t + 1 :] = np.random.default_rng(9).normal(0, 0.5, ret.iloc[t + 1 :].shape)
    bench = market.copy()
    bench.iloc[t + 1 :] = 0.3
    moved = build_panel({"ret": ret}, mask, T, benchmark_returns=bench, standardized=True)
    d, s = base.samples((None, base.dates[t]), labelled=False)
    d2, s2 = moved.samples((None, moved.dates[t]), labelled=False)
    np.testing.assert_array_equal(d, d2)
    np.testing.assert_array_equal(s, s2)
    np.testing.assert_array_equal(base.windows(d, s), moved.windows(d, s))
    # labels dated before t are known by the close of t
    np.testing.assert_array_equal(base.labels[:t], moved.labels[:t])


def test_canary_a_price_after_a_members_last_date_reaches_no_sample(universe) -> None:
    fields, mask, market = universe
    base = _panel(universe)
    ret = fields["ret"].copy()
    ret.iloc[902:, 6] = 5.0  # S06 is a member to day 900; its label on 900 uses day 901
    moved = build_panel({"ret": ret}, mask, T, benchmark_returns=market, standardized=True)
    for labelled in (True, False):
        d, s = base.samples(labelled=labelled)
        np.testing.assert_array_equal(base.windows(d, s), moved.windows(d, s))
    np.testing.assert_array_equal(base.labels, moved.labels)
    np.testing.assert_array_equal(base.scored, moved.scored)


def test_windows_are_views_and_gather_copies_only_the_batch(universe) -> None:
    panel = _panel(universe)
    view = window_view(panel.values, T)
    assert view.shape == (len(panel.dates) - T + 1, len(panel.symbols), T, 3)
    assert np.shares_memory(view, panel.values) and not view.flags.writeable
    d, s = panel.samples()
    batch = gather_windows(panel.values, T, d[:7], s[:7])
    assert batch.shape == (7, T, 3) and not np.shares_memory(batch, panel.values)
    for i in range(7):
        np.testing.assert_array_equal(batch[i], panel.values[d[i] - T + 1 : d[i] + 1, s[i]])
    with pytest.raises(DataError, match="fewer than"):
        gather_windows(panel.values, T, np.array([T - 2]), np.array([0]))


def test_samples_are_date_major(universe) -> None:
    panel = _panel(universe)
    d, s = panel.samples()
    key = d * len(panel.symbols) + s
    assert np.all(np.diff(key) > 0)
    assert len(d) == panel.eligible.sum()


def test_fold_scaler_is_pooled_over_training_member_rows(universe) -> None:
    panel = _panel(universe)
    dates = panel.dates
    fold = build_cross_section_fold(panel, train=(None, dates[799]), test=(dates[800], None))
    last = fold.train[0][-1]
    assert last <= 799 and fold.test[0][0] >= 800
    rows = [
        panel.values[t, j]
        for t in range(last + 1)
        for j in range(len(panel.symbols))
        if panel.members[t, j]
    ]
    expected = StandardScaler().fit(np.array(rows))
    np.testing.assert_allclose(fold.scaler.mean_, expected.mean_)
    np.testing.assert_allclose(fold.scaler.scale_, expected.scale_)
    # the training windows are the scaled panel's windows; labels follow the samples
    i = 123
    d, s = fold.train[0][i], fold.train[1][i]
    raw = panel.values[d - T + 1 : d + 1, s]
    np.testing.assert_allclose(fold.X_train[i], expected.transform(raw), rtol=1e-6, atol=1e-6)
    assert fold.X_train.dtype == np.float32 and fold.X_train.shape == (len(fold.y_train), T, 3)
    assert fold.y_train[i] == panel.labels[d, s]
    # test samples: every scored pair, labelled or not (S04's last day has no label)
    assert len(fold.y_test) == panel.scored[800:].sum()
    assert np.isnan(fold.y_test).sum() == (panel.scored[800:] & ~panel.eligible[800:]).sum() > 0
    np.testing.assert_array_equal(fold.realized_test, panel.realized[fold.test])


def test_a_rolling_folds_scaler_sees_only_the_rows_its_windows_cover(universe) -> None:
    """A rolling window forgets what lies before it: the scaler pools the member rows from
    the first training window's first day to the last training date, nothing earlier."""
    panel = _panel(universe)
    dates = panel.dates
    fold = build_cross_section_fold(panel, train=(dates[500], dates[799]), test=(dates[800], None))
    first, last = fold.train[0][0] - T + 1, fold.train[0][-1]
    assert first > 0
    rows = panel.values[first : last + 1][panel.members[first : last + 1]]
    expected = StandardScaler().fit(rows)
    np.testing.assert_allclose(fold.scaler.mean_, expected.mean_)
    np.testing.assert_allclose(fold.scaler.scale_, expected.scale_)
    # what lies before the window changes nothing
    fields, mask, market = universe
    ret = fields["ret"].copy()
    ret.iloc[: first - 1] *= 10.0
    moved = build_panel({"ret": ret}, mask, T, benchmark_returns=market, standardized=True)
    other = build_cross_section_fold(moved, train=(dates[500], dates[799]), test=(dates[800], None))
    np.testing.assert_array_equal(fold.scaler.mean_, other.scaler.mean_)
    np.testing.assert_array_equal(fold.X_train, other.X_train)


def test_fold_scaler_canary(universe) -> None:
    fields, mask, market = universe
    panel = _panel(universe)
    ret = fields["ret"].copy()
    ret.iloc[801:] *= 10.0
    moved = build_panel({"ret": ret}, mask, T, benchmark_returns=market, standardized=True)
    kw = {"train": (None, panel.dates[799]), "test": (panel.dates[800], None)}
    a, b = build_cross_section_fold(panel, **kw), build_cross_section_fold(moved, **kw)
    np.testing.assert_array_equal(a.scaler.mean_, b.scaler.mean_)
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_fold_and_panel_errors(universe) -> None:
    panel = _panel(universe)
    dates = panel.dates
    with pytest.raises(ConfigError, match="precede"):
        build_cross_section_fold(panel, train=(None, dates[800]), test=(dates[800], None))
    with pytest.raises(DataError, match="holds no date"):
        build_cross_section_fold(panel, train=(None, dates[5]), test=("2099-01-01", None))
    with pytest.raises(DataError, match="no complete training sample"):
        build_cross_section_fold(panel, train=(None, dates[5]), test=(dates[6], None))
    with pytest.raises(ConfigError, match=r"target\.kind"):
        _panel(universe, kind="return")
    with pytest.raises(ConfigError, match="time_steps"):
        _panel(universe, time_steps=0)
    fields, mask, _ = universe
    with pytest.raises(DataError, match="'ret'"):
        build_panel({"close": fields["ret"]}, mask, T)


def test_plain_features_without_extras(universe) -> None:
    fields, mask, _ = universe
    panel = build_panel(fields, mask, 5, features=("ret", "vol_20"))
    assert panel.feature_names == ("ret", "vol_20")
    vol = fields["ret"]["S10"].rolling(20).std().to_numpy()
    np.testing.assert_allclose(panel.values[:, 10, 1], vol, equal_nan=True)
    # a member without 20 days of returns has no complete vol_20 window yet
    assert not panel.scored[:23].any() and panel.scored[23].any()
    assert isinstance(panel.frame("labels"), pd.DataFrame)


def test_predictions_frame_is_one_row_per_test_sample(universe) -> None:
    panel = _panel(universe)
    dates = panel.dates
    fold = build_cross_section_fold(panel, train=(None, dates[799]), test=(dates[800], None))
    pred = np.arange(len(fold.test[0]), dtype=float)
    frame = fold.predictions_frame(pred)
    assert frame.columns.tolist() == ["date", "symbol", "y_true", "y_pred", "realized"]
    assert len(frame) == len(pred) and not frame.duplicated(["date", "symbol"]).any()
    row = frame.iloc[17]
    d, s = fold.test[0][17], fold.test[1][17]
    assert (row["date"], row["symbol"], row["y_pred"]) == (dates[d], panel.symbols[s], 17.0)
    np.testing.assert_array_equal(frame["realized"], fold.realized_test)
    with pytest.raises(DataError, match="predictions for"):
        fold.predictions_frame(pred[1:])

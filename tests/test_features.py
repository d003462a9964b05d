"""Features, labels, windows, scaling and folds — including the leakage audit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.features import (
    FoldData,
    StandardScaler,
    build_fold,
    feature_panel,
    make_labels,
    make_windows,
)

ALL = ("ret", "log_volume_change", "range", "vol_20")


def _dates(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2020-01-01", periods=n, name="date")


def _fields(
    n: int = 120, symbols: tuple[str, ...] = ("XLF", "JPM"), seed: int = 0
) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = _dates(n)
    ret = pd.DataFrame(rng.normal(0, 0.01, (n, len(symbols))), index=idx, columns=symbols)
    close = 100 * (1 + ret).cumprod()
    high = close * (1 + rng.uniform(0, 0.02, close.shape))
    low = close * (1 - rng.uniform(0, 0.02, close.shape))
    volume = pd.DataFrame(
        rng.integers(1_000, 10_000, (n, len(symbols))).astype(float), index=idx, columns=symbols
    )
    ret.iloc[0] = np.nan  # no return on the first day
    return {"ret": ret, "close": close, "high": high, "low": low, "volume": volume}


# ------------------------------------------------------------------ feature_panel


def test_feature_panel_values_and_columns():
    f = _fields(60)
    panel = feature_panel(f, ["XLF", "JPM"], ALL)
    assert list(panel.columns) == [f"{s}:{n}" for s in ("XLF", "JPM") for n in ALL]
    assert panel.index.name == "date" and panel.index.equals(f["ret"].index)
    assert panel.dtypes.eq(np.float64).all()
    t = 30
    vol = f["volume"]["JPM"]
    assert panel["JPM:log_volume_change"].iloc[t] == pytest.approx(
        np.log(vol.iloc[t] / vol.iloc[t - 1])
    )
    assert panel["XLF:range"].iloc[t] == pytest.approx(
        (f["high"]["XLF"].iloc[t] - f["low"]["XLF"].iloc[t]) / f["close"]["XLF"].iloc[t]
    )
    np.testing.assert_array_equal(panel["XLF:ret"], f["ret"]["XLF"])
    # vol_20 at t: sample std of ret[t-19..t]; undefined until 20 returns exist
    window = f["ret"]["XLF"].iloc[t - 19 : t + 1].to_numpy()
    assert panel["XLF:vol_20"].iloc[t] == pytest.approx(np.std(window, ddof=1))
    assert panel["XLF:vol_20"].iloc[:20].isna().all()  # row 0 has no return
    assert panel["XLF:vol_20"].iloc[20:].notna().all()
    assert np.isnan(panel["XLF:log_volume_change"].iloc[0])


def test_feature_panel_bad_volume_is_nan_not_inf():
    f = _fields(10)
    f["volume"].iloc[4, 0] = 0.0
    panel = feature_panel(f, ["XLF"], ["log_volume_change"])
    assert panel["XLF:log_volume_change"].iloc[4:6].isna().all()
    assert np.isfinite(panel.iloc[6:]).all().all()


def test_feature_panel_errors():
    f = _fields(10)
    with pytest.raises(ConfigError, match="unknown feature 'rsi'"):
        feature_panel(f, ["XLF"], ["ret", "rsi"])
    with pytest.raises(DataError, match="'volume'"):
        feature_panel({"ret": f["ret"]}, ["XLF"], ["log_volume_change"])
    with pytest.raises(DataError, match="'MSFT'"):
        feature_panel(f, ["MSFT"], ["ret"])


# ------------------------------------------------------------------ labels


def test_make_labels_compounds_forward():
    idx = _dates(5)
    r = pd.Series([np.nan, 0.10, -0.20, 0.05, 0.0], index=idx)
    one = make_labels(r, 1)
    np.testing.assert_allclose(one.iloc[:4], [0.10, -0.20, 0.05, 0.0])
    assert np.isnan(one.iloc[4])
    two = make_labels(r, 2)
    np.testing.assert_allclose(two.iloc[:3], [1.1 * 0.8 - 1, 0.8 * 1.05 - 1, 1.05 * 1.0 - 1])
    assert two.iloc[3:].isna().all() and two.index.equals(idx) and two.name == "label"
    direction = make_labels(r, 1, kind="direction")
    np.testing.assert_array_equal(direction.iloc[:4], [1.0, 0.0, 1.0, 0.0])  # 0 is not up
    assert np.isnan(direction.iloc[4])


def test_make_labels_excess_and_errors():
    idx = _dates(4)
    r = pd.Series([0.0, 0.10, 0.10, 0.10], index=idx)
    b = pd.Series([0.0, 0.05, 0.00, 0.02], index=idx)
    ex = make_labels(r, 2, kind="excess", benchmark_returns=b)
    np.testing.assert_allclose(ex.iloc[:2], [1.1**2 - 1.05, 1.1**2 - 1.02])
    assert ex.iloc[2:].isna().all()
    with pytest.raises(ConfigError, match="benchmark"):
        make_labels(r, 1, kind="excess")
    with pytest.raises(ConfigError, match="kind"):
        make_labels(r, 1, kind="log")
    with pytest.raises(ConfigError, match="horizon"):
        make_labels(r, 0)
    assert make_labels(r, 10).isna().all()


# ------------------------------------------------------------------ windows


def test_make_windows_is_an_aligned_read_only_view():
    values = np.arange(20.0).reshape(10, 2)  # (T, F)
    w = make_windows(values, 3)
    assert w.shape == (8, 3, 2)
    assert np.shares_memory(w, values) and not w.flags.writeable
    for i in range(8):
        np.testing.assert_array_equal(w[i], values[i : i + 3])
        np.testing.assert_array_equal(w[i, -1], values[i + 3 - 1])  # ends at row i+steps-1
    assert make_windows(values, 11).shape == (0, 11, 2)
    with pytest.raises(ConfigError):
        make_windows(values, 0)
    with pytest.raises(DataError):
        make_windows(values[:, 0], 2)


# ------------------------------------------------------------------ scaler


def test_standard_scaler():
    X = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [5.0, 5.0, 4.0]])
    s = StandardScaler().fit(X)
    np.testing.assert_allclose(s.mean_, [3.0, 5.0, 3.0])
    np.testing.assert_allclose(s.scale_, [np.sqrt(8 / 3), 1.0, 1.0])  # constant column -> 1
    np.testing.assert_array_equal(s.n_samples_seen_, [3, 3, 2])
    Z = s.transform(X)
    np.testing.assert_allclose(Z[:, 1], 0.0)
    assert np.isnan(Z[0, 2])
    windows = make_windows(X, 2)  # (2, 2, 3): transform works on any (..., F)
    np.testing.assert_allclose(s.transform(windows)[1], Z[1:3])
    np.testing.assert_allclose(s.inverse_transform(Z)[1:], X[1:])
    with pytest.raises(DataError, match="no finite"):
        StandardScaler().fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(DataError, match="not fitted"):
        StandardScaler().transform(X)


# ------------------------------------------------------------------ build_fold


def _study(n: int = 120, seed: int = 0, names=("ret", "vol_20")):
    f = _fields(n, seed=seed)
    features = feature_panel(f, ["XLF", "JPM"], names)
    return f, features


@pytest.mark.parametrize("horizon", [1, 3])
def test_build_fold_purges_overlapping_labels(horizon):
    f, features = _study()
    labels = make_labels(f["ret"]["XLF"], horizon)
    idx = features.index
    fold = build_fold(
        features, labels, 5, train=(None, idx[79]), test=(idx[80], None), horizon=horizon
    )
    assert isinstance(fold, FoldData)
    first_test = fold.rows_test[0]
    assert first_test == 80
    # the last training label is known at the close of the first test date
    assert fold.rows_train[-1] + horizon <= first_test
    assert fold.rows_train[-1] == 80 - horizon
    assert fold.n_purged == horizon - 1
    # vol_20 needs 20 returns (row 20 on), the window 4 more rows: first sample at row 24
    assert fold.rows_train[0] == 24 and fold.n_incomplete_train == 24
    # the last `horizon` dates have no label
    assert fold.rows_test[-1] == len(idx) - 1 - horizon
    assert fold.n_incomplete_test == horizon
    assert fold.X_train.dtype == np.float32 and fold.X_train.shape == (len(fold.rows_train), 5, 4)
    assert fold.X_test.shape == (len(fold.rows_test), 5, 4)
    assert fold.X_train.flags.writeable
    np.testing.assert_array_equal(fold.y_train, labels.to_numpy()[fold.rows_train])
    assert fold.dates_test.equals(idx[fold.rows_test])
    assert fold.feature_names == tuple(features.columns)


def test_build_fold_scaler_uses_rows_up_to_last_training_sample():
    f, features = _study()
    labels = make_labels(f["ret"]["XLF"], 2)
    idx = features.index
    fold = build_fold(
        features, labels, 5, train=(idx[30], idx[79]), test=(idx[80], idx[99]), horizon=2
    )
    expected = StandardScaler().fit(features.to_numpy()[: fold.rows_train[-1] + 1])
    np.testing.assert_array_equal(fold.scaler.mean_, expected.mean_)
    np.testing.assert_array_equal(fold.scaler.scale_, expected.scale_)
    # windows are the scaled feature rows ending at the sample's date
    r = fold.rows_test[3]
    np.testing.assert_allclose(
        fold.X_test[3], expected.transform(features.to_numpy()[r - 4 : r + 1]), rtol=1e-6
    )
    assert fold.rows_test[-1] == 99


def test_build_fold_masks_and_errors():
    f, features = _study()
    labels = make_labels(f["ret"]["XLF"], 1)
    idx = features.index
    train = np.arange(len(idx)) < 70
    test = (np.arange(len(idx)) >= 70) & (np.arange(len(idx)) < 90)
    fold = build_fold(features, labels, 5, train=train, test=test)
    assert fold.rows_train[-1] == 69 and fold.rows_test[[0, -1]].tolist() == [70, 89]
    with pytest.raises(ConfigError, match="precede"):
        build_fold(features, labels, 5, train=(None, idx[80]), test=(idx[80], None))
    with pytest.raises(DataError, match="no complete training"):
        build_fold(features, labels, 5, train=(None, idx[10]), test=(idx[11], None))
    with pytest.raises(ConfigError, match="mask"):
        build_fold(features, labels, 5, train=train[:-1], test=test)


def test_build_fold_drops_samples_with_a_nan_in_their_window():
    f, features = _study(names=("ret",))
    features.iloc[50, 1] = np.nan  # JPM:ret on row 50
    labels = make_labels(f["ret"]["XLF"], 1)
    idx = features.index
    fold = build_fold(features, labels, 5, train=(None, idx[79]), test=(idx[80], None))
    assert not set(range(50, 55)) & set(fold.rows_train.tolist())  # windows covering row 50
    assert {49, 55} <= set(fold.rows_train.tolist())
    assert fold.n_incomplete_train == 5 + 5  # rows 0..4 (row 0 NaN, short) and 50..54
    assert np.isfinite(fold.X_train).all()


# ------------------------------------------------------------------ leakage audit


def _scramble_after(fields: dict[str, pd.DataFrame], t: pd.Timestamp, seed: int):
    rng = np.random.default_rng(seed)
    out = {}
    for name, frame in fields.items():
        frame = frame.copy()
        later = frame.index > t
        frame.loc[later] = frame.loc[later].to_numpy() * rng.uniform(
            0.2, 3.0, frame.loc[later].shape
        )
        out[name] = frame
    return out


@pytest.mark.parametrize("cut", [25, 60, 99])
def test_leakage_truncation_and_scrambling(cut):
    """Everything dated <= t is the same whether later data is cut off or scrambled."""
    fields = _fields(130, seed=3)
    t = fields["ret"].index[cut]
    variants = [
        fields,
        {k: v.loc[:t] for k, v in fields.items()},  # truncated at t
        _scramble_after(fields, t, seed=1),  # scrambled after t
    ]
    panels = [feature_panel(v, ["XLF", "JPM"], ALL) for v in variants]
    base = panels[0].loc[:t]
    for panel in panels[1:]:
        pd.testing.assert_frame_equal(panel.loc[:t], base)
    assert len(panels[1]) == cut + 1
    after = panels[0].index > t
    assert not np.allclose(panels[2].loc[after, "XLF:ret"], panels[0].loc[after, "XLF:ret"])
    # windows dated <= t, and a scaler fitted on rows <= t
    steps = 5
    windows = []
    scalers = []
    for panel in panels:
        values = panel.to_numpy()
        n_le = cut + 1
        windows.append(make_windows(values, steps)[: n_le - steps + 1])
        scalers.append(StandardScaler().fit(values[:n_le]))
    for w, s in zip(windows[1:], scalers[1:], strict=True):
        np.testing.assert_array_equal(w, windows[0])
        np.testing.assert_array_equal(s.mean_, scalers[0].mean_)
        np.testing.assert_array_equal(s.scale_, scalers[0].scale_)
    # labels: the label dated d is known at d + horizon, so labels dated <= t - h agree
    h = 3
    labels = [make_labels(v["ret"]["XLF"], h) for v in variants]
    known = fields["ret"].index[: cut - h + 1]
    for lab in labels[1:]:
        pd.testing.assert_series_equal(lab.loc[known], labels[0].loc[known])


def test_leakage_fold_is_unchanged_by_data_after_the_first_test_date():
    fields = _fields(130, seed=4)
    idx = fields["ret"].index
    h = 2
    s = 90  # first test row: training labels reach at most its close
    folds = []
    for variant in (fields, _scramble_after(fields, idx[s], seed=2)):
        panel = feature_panel(variant, ["XLF", "JPM"], ALL)
        labels = make_labels(variant["ret"]["XLF"], h)
        folds.append(
            build_fold(panel, labels, 5, train=(None, idx[s - 1]), test=(idx[s], None), horizon=h)
        )
    a, b = folds
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.scaler.mean_, b.scaler.mean_)
    np.testing.assert_array_equal(a.scaler.scale_, b.scaler.scale_)
    assert not np.array_equal(a.X_test, b.X_test)  # the test period did change


def test_leakage_scaler_ignores_test_period_features():
    f, features = _study(seed=5)
    labels = make_labels(f["ret"]["XLF"], 1)
    idx = features.index
    changed = features.copy()
    changed.loc[idx[80] :] = changed.loc[idx[80] :] * 50 + 7  # only the test period
    kw = dict(train=(None, idx[79]), test=(idx[80], None))
    a = build_fold(features, labels, 5, **kw)
    b = build_fold(changed, labels, 5, **kw)
    np.testing.assert_array_equal(a.scaler.mean_, b.scaler.mean_)
    np.testing.assert_array_equal(a.scaler.scale_, b.scaler.scale_)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_test, b.X_test)


def _leaks(fold: FoldData, values_of: np.ndarray) -> bool:
    """True when a window of a sample contains that sample's own label (next-day return)."""
    raw = fold.scaler.inverse_transform(np.concatenate([fold.X_train, fold.X_test]))
    labels = np.concatenate([fold.y_train, fold.y_test])
    canary = raw[:, :, values_of]  # (n, T) canary column of each window
    return bool(np.isclose(canary, labels[:, None], rtol=1e-5, atol=0).any())


@pytest.mark.parametrize("shift", [1, 0])
def test_leakage_canary_next_day_return(shift):
    """A column equal to the next day's return, dated when it becomes known (shift 1),
    never reaches a sample dated before then; dated too early (shift 0) it is caught."""
    fields = _fields(100, symbols=("XLF",), seed=6)
    ret = fields["ret"]["XLF"]
    next_ret = ret.shift(-1)  # dated t: the return from close t to close t+1
    fields["ret"] = fields["ret"].assign(CANARY=next_ret.shift(shift))
    panel = feature_panel(fields, ["XLF", "CANARY"], ["ret"])
    labels = make_labels(ret, 1)
    idx = panel.index
    # a stamp column: the row index of each feature row, to check window alignment
    panel["STAMP:ret"] = np.arange(len(idx), dtype=float)
    fold = build_fold(panel, labels, 4, train=(None, idx[59]), test=(idx[60], None))
    leaked = _leaks(fold, values_of=1)
    assert leaked == (shift == 0)
    raw = fold.scaler.inverse_transform(fold.X_test)
    # every value in the window of the sample dated t is dated <= t
    np.testing.assert_allclose(raw[:, -1, 2], fold.rows_test, atol=1e-3)
    assert (raw[:, :, 2].max(axis=1) <= fold.rows_test + 1e-3).all()
    if shift == 1:
        # the newest canary value in sample t is the label of sample t-1: known at t
        np.testing.assert_allclose(raw[1:, -1, 1], fold.y_test[:-1], rtol=1e-5)

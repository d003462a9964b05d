"""Baselines of imported forecasts: values by hand, and no look-ahead (canary)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models.history_baselines import (
    HISTORY_BASELINES,
    direction_persistence,
    expanding_mean,
    expanding_up_share,
    history_baselines,
    majority,
    persistence,
)

R = np.array([np.nan, 0.01, -0.02, 0.03, 0.0, -0.01])


def test_values_by_hand() -> None:
    np.testing.assert_allclose(expanding_mean(R), [0.0, 0.01, -0.005, 0.02 / 3, 0.005, 0.002])
    np.testing.assert_allclose(persistence(R), [0.0, 0.01, -0.02, 0.03, 0.0, -0.01])
    np.testing.assert_allclose(expanding_up_share(R), [0.5, 1.0, 0.5, 2 / 3, 0.5, 0.4])
    np.testing.assert_allclose(majority(R), [1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(direction_persistence(R), [0.5, 1.0, 0.0, 1.0, 0.0, 0.0])


def _series(n: int = 400, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.01, n)
    r[0] = np.nan
    return pd.Series(r, index=pd.bdate_range("2015-01-01", periods=n))


@pytest.mark.parametrize("task", ["return", "direction"])
def test_no_look_ahead_canary(task: str) -> None:
    """Changing returns after t never changes a baseline dated t or earlier."""
    returns = _series()
    dates = returns.index[1:]
    base = history_baselines(returns, dates, task)
    cut = 250
    changed = returns.copy()
    changed.iloc[cut + 1 :] = -changed.iloc[cut + 1 :] * 7 + 0.05  # everything after day cut
    after = history_baselines(changed, dates, task)
    assert set(base) == {f"baseline:{n}" for n in HISTORY_BASELINES[task]}
    upto = dates <= returns.index[cut]
    for name in base:
        np.testing.assert_array_equal(base[name][upto], after[name][upto])
    moved = [name for name in base if not np.array_equal(base[name][~upto], after[name][~upto])]
    assert moved  # the canary can fail: later values do change


def test_the_return_ending_at_t_is_used_at_t() -> None:
    returns = _series()
    dates = returns.index[[10, 200]]
    out = history_baselines(returns, dates, "return")
    r = returns.to_numpy()
    assert out["baseline:mean"][0] == pytest.approx(np.nanmean(r[:11]))
    assert out["baseline:mean"][1] == pytest.approx(np.nanmean(r[:201]))
    assert out["baseline:persistence"].tolist() == [r[10], r[200]]
    assert out["baseline:zero"].tolist() == [0.0, 0.0]
    d = history_baselines(returns, dates, "direction")
    assert d["baseline:always_up"].tolist() == [1.0, 1.0]
    assert d["baseline:persistence"].tolist() == [float(r[10] > 0), float(r[200] > 0)]
    share = np.mean(r[1:201] > 0)
    assert d["baseline:majority"][1] == float(share >= 0.5)


def test_bad_inputs() -> None:
    returns = _series(20)
    with pytest.raises(DataError, match="without a stored return"):
        history_baselines(returns, [pd.Timestamp("2030-01-01")])
    with pytest.raises(DataError, match="ascending"):
        history_baselines(returns.iloc[::-1], returns.index[:3])
    with pytest.raises(ConfigError):
        history_baselines(returns, returns.index[:3], "regression")
    with pytest.raises(DataError, match="infinite"):
        expanding_mean(np.array([0.1, np.inf]))

"""Forecast metrics on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.metrics import forecast_metrics, hit_rate, mae, mse, r2_oos

Y = np.array([0.02, -0.01, 0.0, 0.03])
P = np.array([0.01, 0.01, 0.0, -0.01])


def test_mse_mae():
    # errors: 0.01, -0.02, 0, 0.04
    assert mse(Y, P) == pytest.approx((1e-4 + 4e-4 + 0 + 16e-4) / 4)
    assert mae(Y, P) == pytest.approx((0.01 + 0.02 + 0 + 0.04) / 4)


def test_r2_oos_campbell_thompson():
    bench = np.array([0.01, 0.01, 0.005, 0.005])  # training means of each sample's fold
    # SSE = 1e-4 + 4e-4 + 0 + 16e-4 = 21e-4
    # SST (vs the benchmark) = 1e-4 + 4e-4 + 0.25e-4 + 6.25e-4 = 11.5e-4
    assert r2_oos(Y, P, bench) == pytest.approx(1 - 21 / 11.5)
    assert r2_oos(Y, Y, bench) == 1.0
    assert r2_oos(Y, bench, bench) == 0.0  # the benchmark itself scores 0
    assert r2_oos(Y, P, 0.01) == pytest.approx(1 - 21e-4 / (1e-4 + 4e-4 + 1e-4 + 4e-4))
    assert math.isnan(r2_oos(Y, P, Y))
    with pytest.raises(DataError, match="y_benchmark"):
        r2_oos(Y, P, np.zeros(3))


def test_hit_rate():
    # signs: y (+, -, 0, +), ŷ (+, +, 0, -): hits at 0 and 2
    # the forecast of 0 on day 2 calls no direction (no position): not counted
    assert hit_rate(Y, P, "regression") == pytest.approx(1 / 3)
    assert math.isnan(hit_rate(Y, np.zeros(4), "regression"))  # never calls a direction
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    p = np.array([0.7, 0.2, 0.5, 0.51, 0.9])  # 0.5 calls nothing
    assert hit_rate(y, p, "classification") == pytest.approx(3 / 4)
    with pytest.raises(ConfigError, match="task"):
        hit_rate(Y, P, "ranking")


def test_forecast_metrics():
    out = forecast_metrics(Y, P, np.full(4, 0.01), "regression")
    assert set(out) == {"mse", "mae", "r2_oos", "hit_rate", "hit_n", "n"}
    assert out["n"] == 4 and out["hit_n"] == 3 and out["hit_rate"] == pytest.approx(1 / 3)
    zero = forecast_metrics(Y, np.zeros(4), None, "regression")
    assert zero["hit_n"] == 0 and math.isnan(zero["hit_rate"])
    assert out["mse"] == pytest.approx(21e-4 / 4)
    assert out["r2_oos"] == pytest.approx(1 - 21e-4 / 10e-4)
    assert forecast_metrics(Y, P, None, "regression")["r2_oos"] is None
    y = np.array([1.0, 0.0])
    p = np.array([0.8, 0.4])
    brier = forecast_metrics(y, p, None, "classification")
    assert brier["mse"] == pytest.approx((0.04 + 0.16) / 2) and brier["hit_rate"] == 1.0


def test_input_checks():
    with pytest.raises(DataError, match="equal length"):
        mse(Y, P[:3])
    with pytest.raises(DataError, match="no forecasts"):
        mae(np.array([]), np.array([]))
    with pytest.raises(DataError, match="NaN"):
        mse(Y, np.array([np.nan, 0, 0, 0]))
    with pytest.raises(ConfigError):
        forecast_metrics(Y, P, None, "ranking")

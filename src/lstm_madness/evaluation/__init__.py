"""Evaluation: forecast metrics, backtest, forecast tests, significance, verdict.

All pure functions on NumPy arrays / pandas objects; submodules are imported directly
(``from lstm_madness.evaluation.metrics import forecast_metrics``).
"""

from lstm_madness.evaluation.metrics import forecast_metrics, hit_rate, mae, mse, r2_oos

__all__ = ["forecast_metrics", "hit_rate", "mae", "mse", "r2_oos"]

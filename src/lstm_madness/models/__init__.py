"""Models: the recurrent forecaster, the baselines, the batched and the compiled trainers.

Every model has ``fit(X (n, time_steps, n_features), y (n,)) -> self`` and
``predict(X) -> (n,)`` float64. ``lstm_madness.models.batched`` and
``lstm_madness.models.compiled`` (numba) are imported on demand.
"""

from lstm_madness.models.baselines import (
    CLASSIFICATION_BASELINES,
    REGRESSION_BASELINES,
    AlwaysUpClassifier,
    HistoricalMeanForecaster,
    LogisticClassifier,
    MajorityClassifier,
    PersistenceForecaster,
    RidgeForecaster,
    ZeroForecaster,
    make_baseline,
)
from lstm_madness.models.lstm import (
    LSTMForecaster,
    RecurrentNet,
    make_loss,
    resolve_loss,
    split_validation,
    target_scaling,
)

__all__ = [
    "CLASSIFICATION_BASELINES",
    "REGRESSION_BASELINES",
    "AlwaysUpClassifier",
    "HistoricalMeanForecaster",
    "LSTMForecaster",
    "LogisticClassifier",
    "MajorityClassifier",
    "PersistenceForecaster",
    "RecurrentNet",
    "RidgeForecaster",
    "ZeroForecaster",
    "make_baseline",
    "make_loss",
    "resolve_loss",
    "split_validation",
    "target_scaling",
]

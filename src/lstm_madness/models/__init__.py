"""Models: the recurrent forecaster and its three trainers, and the baselines.

Every model has ``fit(X (n, time_steps, n_features), y (n,)) -> self`` and
``predict(X) -> (n,)`` float64. The recurrent network is :mod:`.network`; its training
protocol, shared by every trainer, :mod:`.protocol` (the optimizer update:
:mod:`.optimizer`); the trainers :mod:`.torch_trainer`, :mod:`.batched` (with
:mod:`.batched_net` and :mod:`.batched_optimizer`) and :mod:`.compiled` (with the numba
kernels of :mod:`._kernels`, loaded on first use); which one trains a network,
:mod:`.training`; the estimator, :mod:`.lstm`. Imports run one way: lstm → training →
the trainers → protocol → network.
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
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.network import RecurrentNet
from lstm_madness.models.protocol import (
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
    "fit_forecasters",
    "make_baseline",
    "make_loss",
    "resolve_loss",
    "split_validation",
    "target_scaling",
]

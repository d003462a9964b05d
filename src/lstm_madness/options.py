"""The names that configs and estimators accept, defined once (no heavy imports, so the
config layer can use them without loading PyTorch)."""

from __future__ import annotations

#: What a model predicts: a return (regression) or the probability of an up move.
TASKS = ("regression", "classification")
#: Recurrent cells of the network.
CELLS = ("lstm", "gru")
#: Training losses of a network; "auto" = mse for return targets, bce for direction.
NETWORK_LOSSES = ("mse", "huber", "bce")
LOSSES = ("auto", *NETWORK_LOSSES)
#: Where a network trains.
DEVICES = ("auto", "cpu", "cuda")
#: Training paths of a network (see :func:`lstm_madness.models.training.resolve_trainer`).
TRAINERS = ("auto", "torch", "batched", "compiled")
#: Optimizer updates of a network (see :mod:`lstm_madness.models.optimizer`).
OPTIMIZERS = ("adam", "rmsprop")
#: Feature name -> price fields it needs (besides the panel index taken from ``"ret"``);
#: computed by :func:`lstm_madness.features.feature_panel`.
FEATURE_FIELDS: dict[str, tuple[str, ...]] = {
    "ret": ("ret",),
    "log_volume_change": ("volume",),
    "range": ("high", "low", "close"),
    "vol_20": ("ret",),
}
#: Cost per unit of turnover, basis points, when none is given (``backtest.cost_bps``).
DEFAULT_COST_BPS = 5.0
#: Extra cost per unit of turnover, basis points, when none is given (``backtest.slippage_bps``).
DEFAULT_SLIPPAGE_BPS = 0.0
#: Annual fee on the short exposure, basis points, when none is given
#: (``backtest.short_borrow_bps``; charged by the long-short book).
DEFAULT_SHORT_BORROW_BPS = 0.0
#: Annual risk-free rate of Sharpe and Sortino when none is given (``backtest.risk_free``).
DEFAULT_RISK_FREE = 0.0

#: Target kinds of a cross-sectional (universe) study; every other kind times one asset.
CROSS_SECTION_KINDS = ("cross_section", "cross_section_direction")
#: Baselines of a single-asset study, per task (``baselines.models``; empty = all).
REGRESSION_BASELINES = ("zero", "mean", "persistence", "ridge")
CLASSIFICATION_BASELINES = ("always_up", "majority", "logistic")
#: Baselines of a universe study (the default, ``baselines.models`` empty).
CROSS_SECTION_BASELINES = ("zero", "reversal", "momentum", "ridge")
#: Baselines of a universe study run only when ``baselines.models`` names them (logistic:
#: Fischer & Krauss's logistic regression; opt-in so that existing runs keep their numbers).
CROSS_SECTION_OPT_IN_BASELINES = ("logistic",)
#: Every name ``baselines.models`` of a universe study accepts.
CROSS_SECTION_BASELINE_NAMES = (*CROSS_SECTION_BASELINES, *CROSS_SECTION_OPT_IN_BASELINES)

"""Fit several :class:`~lstm_madness.models.lstm.LSTMForecaster` at once.

Each estimator is trained by its trainer (``torch``, ``batched`` or ``compiled``; ``auto``
resolved by :func:`~lstm_madness.models.lstm.resolve_trainer`). Batched estimators that
share an architecture and training hyperparameters (seeds of one configuration,
walk-forward folds, grid points of a sweep that differ only in seed) are trained by
:func:`~lstm_madness.models.batched.train_many` as one batched computation. Each estimator
ends up fitted exactly as its own :meth:`~LSTMForecaster.fit` would have left it — same
initial weights, batch order, target scaling, early stopping and restored weights (to float
tolerance; with dropout > 0 the masks differ) — and predicts through its own
``nn.LSTM``/``nn.GRU`` network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models.batched import TrainSpec, train_many
from lstm_madness.models.lstm import (
    LSTMForecaster,
    RecurrentNet,
    resolve_device,
    resolve_loss,
    split_validation,
    target_scaling,
)

#: Hyperparameters that must agree for estimators to train together.
SHARED = (
    "units",
    "cell",
    "dropout",
    "task",
    "epochs",
    "batch_size",
    "learning_rate",
    "loss",
    "patience",
    "validation_fraction",
    "validation_gap",
    "min_delta",
    "clip_norm",
    "device",
)


def fit_forecasters(
    estimators: Sequence[LSTMForecaster],
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[LSTMForecaster]:
    """Fit ``estimators[i]`` on ``data[i] = (X_i (n_i, T, F), y_i (n_i,))``, each by its
    trainer (:meth:`LSTMForecaster.resolved_trainer`, recorded in ``trainer_``).

    ``torch`` and ``compiled`` estimators are fitted one by one; ``batched`` estimators
    that share :data:`SHARED` hyperparameters are trained together as one batched
    computation (a lone one as a batch of one). ``progress(epoch, n_still_training)`` is
    called after each epoch of each training call.
    """
    if len(estimators) != len(data):
        raise ConfigError(f"{len(estimators)} estimators but {len(data)} datasets")
    groups: dict[tuple, list[int]] = {}
    for i, (est, (X, _y)) in enumerate(zip(estimators, data, strict=True)):
        est._validate_params()
        trainer = est.resolved_trainer(est._check_X(X).shape[1])
        if trainer == "batched":
            groups.setdefault(tuple(repr(getattr(est, n)) for n in SHARED), []).append(i)
            continue
        own = est.progress
        if progress is not None and own is None:
            est.progress = lambda epoch, _loss, _val: progress(epoch, 1)
        try:
            if trainer == "torch":
                est._fit_torch(*data[i])
            else:
                from lstm_madness.models.compiled import fit_compiled

                fit_compiled(est, *est._check_data(*data[i]))
        finally:
            est.progress = own
    for members in groups.values():
        _fit_batched([estimators[i] for i in members], [data[i] for i in members], progress)
    return list(estimators)


def _fit_batched(
    estimators: Sequence[LSTMForecaster],
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Train estimators that agree on :data:`SHARED` as one :func:`train_many` call."""
    first = estimators[0]
    for est in estimators[1:]:
        for name in SHARED:
            if getattr(est, name) != getattr(first, name):
                raise ConfigError(f"estimators differ in {name!r}; they cannot train together")
    for est in estimators:
        est._validate_params()
    device = resolve_device(first.device)
    loss = resolve_loss(first.loss, first.task)
    nets, specs, prepared = [], [], []
    for est, (X, y) in zip(estimators, data, strict=True):
        X = est._check_X(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(y) != len(X) or not np.isfinite(y).all():
            raise DataError("y must be finite and as long as X")
        if first.task == "classification" and not np.isin(y, (0.0, 1.0)).all():
            raise DataError("classification labels must be 0 or 1")
        n, steps, n_features = X.shape
        if est.time_steps is not None and steps != est.time_steps:
            raise DataError(f"X windows have {steps} time steps, expected {est.time_steps}")
        n_fit, n_val = split_validation(
            n, first.validation_fraction, int(first.validation_gap), int(first.patience)
        )
        y_mean, y_scale = target_scaling(y[:n_fit], first.task)
        torch.manual_seed(int(est.seed))  # the same initial weights as est.fit
        nets.append(
            RecurrentNet(
                n_features, tuple(int(u) for u in first.units), first.cell, float(first.dropout)
            ).to(device)
        )
        specs.append(
            TrainSpec(X.astype(np.float32, copy=False), (y - y_mean) / y_scale, int(est.seed))
        )
        prepared.append((n_fit, n_val, steps, n_features, y_mean, y_scale))
    results = train_many(
        nets,
        specs,
        epochs=int(first.epochs),
        batch_size=int(first.batch_size),
        learning_rate=float(first.learning_rate),
        loss=loss,
        clip_norm=first.clip_norm or None,
        patience=int(first.patience),
        validation_fraction=float(first.validation_fraction),
        validation_gap=int(first.validation_gap),
        min_delta=float(first.min_delta),
        device=device,
        progress=progress,
    )
    for est, net, result, prep in zip(estimators, nets, results, prepared, strict=True):
        n_fit, n_val, steps, n_features, y_mean, y_scale = prep
        history = {
            "train_loss": [h["loss"] for h in result.history],
            "val_loss": [h["val_loss"] for h in result.history if "val_loss" in h],
        }
        net.eval()
        est.net_, est.device_, est.loss_ = net, device, loss
        est.n_features_in_, est.time_steps_ = n_features, steps
        est.n_train_, est.n_val_ = n_fit, n_val
        est.epochs_run_, est.best_epoch_ = result.epochs_run, result.best_epoch
        est.best_val_loss_ = (
            history["val_loss"][result.best_epoch - 1] if n_val and history["val_loss"] else None
        )
        est.history_ = history
        est.y_mean_, est.y_scale_ = y_mean, y_scale
        est.trainer_ = "batched"

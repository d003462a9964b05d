"""The training protocol every trainer follows, and the interface of the trainers.

A network is trained on windows ``X`` (n, T, F) and labels ``y`` (n,), samples in date
order, by one of three engines (:mod:`~lstm_madness.models.torch_trainer`,
:mod:`~lstm_madness.models.batched`, :mod:`~lstm_madness.models.compiled`; which one:
:func:`lstm_madness.models.training.resolve_trainer`). Each follows these steps:

1. ``torch.manual_seed(seed)``; build the :class:`RecurrentNet` on the CPU with torch's
   default initialization (:func:`seeded_network`), then move it to the device (so the
   initial weights do not depend on the device).
2. ``n_fit, n_val = split_validation(n, validation_fraction, validation_gap, patience)``:
   fit on samples ``[0, n_fit)``, validate on ``[n - n_val, n)``.
3. Regression targets are standardized with ``target_scaling(y[:n_fit])`` (validation
   targets too), so losses are in units of the fit set's std; prediction inverts it.
   Classification targets stay 0/1.
4. ``gen = torch.Generator(device=device).manual_seed(seed)``; each epoch, in ``train()``
   mode: ``perm = torch.randperm(n_fit, generator=gen, device=device)``; batches are
   ``perm[i:i + batch_size]`` for ``i = 0, batch_size, ...`` (the last may be smaller); per
   batch: mean loss (:func:`make_loss`), its gradient, then the optimizer update of
   :mod:`lstm_madness.models.optimizer` (global-norm clipping unless ``clip_norm`` is
   None/0, then Adam, or RMSprop for ``optimizer="rmsprop"``, with ``lr=learning_rate``).
   The epoch's train loss is the sample-weighted mean of its batch losses.
5. With validation, after each epoch: loss over the whole validation tail in ``eval()``
   mode; if ``val < best - min_delta`` (``best`` starts at +inf) keep a copy of the weights
   and reset ``wait``, else ``wait += 1``; stop once ``wait >= patience``. The best weights
   are restored at the end. Without validation all ``epochs`` run and the last weights are
   kept.

Dropout: the ``torch`` trainer draws from torch's global generator (seeded in step 1); the
batched engine from one generator seeded by all the seeds of its call, the compiled trainer
from numba's generator seeded with the seed (deterministic, not torch's masks).

Interface: an engine is a :class:`Trainer`, ``fit(jobs, progress, workers) ->
[FittedNetwork]``; a :class:`TrainingJob` is one network's :class:`TrainSettings`, checked
data (:func:`check_data`), seed and own per-epoch callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch
from torch import nn

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models.network import RecurrentNet
from lstm_madness.options import DEVICES, LOSSES, TASKS
from lstm_madness.windows import PanelWindows

__all__ = [
    "FittedNetwork",
    "GroupProgress",
    "ProgressCallback",
    "TrainSettings",
    "Trainer",
    "TrainingJob",
    "check_data",
    "check_windows",
    "epoch_reporter",
    "make_loss",
    "resolve_device",
    "resolve_loss",
    "seeded_network",
    "split_and_scale",
    "split_validation",
    "target_scaling",
]

#: ``progress(epoch, train_loss, val_loss)`` after each epoch of one network (from 1).
ProgressCallback = Callable[[int, float, float | None], None]
#: ``progress(epoch, n_still_training)`` after each epoch of a training call.
GroupProgress = Callable[[int, int], None]


# ------------------------------------------------------------------ the protocol's steps


def resolve_loss(loss: str, task: str) -> str:
    """The concrete loss name: ``"auto"`` is ``mse`` for regression, ``bce`` for
    classification; ``bce`` is only valid for classification and vice versa."""
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")
    if loss not in LOSSES:
        raise ConfigError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    if loss == "auto":
        return "bce" if task == "classification" else "mse"
    if (loss == "bce") != (task == "classification"):
        raise ConfigError(
            f"loss {loss!r} does not fit task {task!r}: classification needs "
            "'bce', regression 'mse' or 'huber'"
        )
    return loss


def make_loss(name: str) -> nn.Module:
    """Mean loss over a batch: ``mse``, ``huber`` (delta=1.0) or ``bce`` (with logits).

    Called as ``loss(output (B,), target (B,)) -> scalar``.
    """
    if name == "mse":
        return nn.MSELoss()
    if name == "huber":
        return nn.HuberLoss(delta=1.0)
    if name == "bce":
        return nn.BCEWithLogitsLoss()
    raise ConfigError(f"loss {name!r} is not one of mse, huber, bce")


def split_validation(
    n: int, validation_fraction: float, validation_gap: int, patience: int
) -> tuple[int, int]:
    """Sizes of the fit set and the validation tail of ``n`` time-ordered samples.

    With ``patience > 0`` and ``validation_fraction > 0``:
    ``n_val = max(1, ceil(validation_fraction * n))`` (plain float product), the
    validation set is the last ``n_val`` samples and the fit set the first
    ``n - n_val - validation_gap`` (the gap purges fit labels that overlap the validation
    period). Otherwise ``(n, 0)``: no validation, no early stopping.

    Returns
    -------
    (n_fit, n_val) : tuple of int
        Fit samples are ``[0, n_fit)``, validation samples ``[n - n_val, n)``.

    Raises
    ------
    DataError
        Fewer than one fit sample would remain.
    """
    if patience > 0 and validation_fraction > 0:
        n_val = max(1, math.ceil(validation_fraction * n))
        n_fit = n - n_val - validation_gap
    else:
        n_val, n_fit = 0, n
    if n_fit < 1:
        raise DataError(
            f"{n} training samples are too few for a validation tail of {n_val} "
            f"and a gap of {validation_gap}"
        )
    return n_fit, n_val


def target_scaling(y_fit: np.ndarray, task: str) -> tuple[float, float]:
    """``(mean, scale)`` that standardize regression targets: the fit set's mean and
    population std (ddof=0; 1.0 when not positive). Classification: ``(0.0, 1.0)``."""
    if task == "classification":
        return 0.0, 1.0
    mean = float(np.mean(y_fit))
    scale = float(np.std(y_fit))
    return mean, (scale if scale > 0 and math.isfinite(scale) else 1.0)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` must be available."""
    if device not in DEVICES:
        raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available")
    return torch.device(device)


def check_windows(X: np.ndarray | PanelWindows) -> np.ndarray | PanelWindows:
    """``X`` as an array of finite windows (n, T, F) (raises :class:`DataError`); a
    :class:`~lstm_madness.windows.PanelWindows` stays one (checked on its panel)."""
    if isinstance(X, PanelWindows):
        if not X.all_finite():
            raise DataError("X contains NaN or infinite values")
        return X
    X = np.asarray(X)
    if X.ndim != 3:
        raise DataError(f"X must have shape (n, time_steps, n_features), got {X.shape}")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinite values")
    return X


def check_data(
    X: np.ndarray, y: np.ndarray, task: str, time_steps: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Checked training data: ``X`` (n, T, F) as given, ``y`` (n,) float64 (raises
    :class:`DataError`); ``time_steps``, when given, must be ``T``."""
    X = check_windows(X)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n, steps, _ = X.shape
    if len(y) != n:
        raise DataError(f"X has {n} samples but y has {len(y)}")
    if n == 0:
        raise DataError("no training samples")
    if time_steps is not None and steps != time_steps:
        raise DataError(f"X windows have {steps} time steps, expected {time_steps}")
    if not np.isfinite(y).all():
        raise DataError("y contains NaN or infinite values")
    if task == "classification" and not np.isin(y, (0.0, 1.0)).all():
        raise DataError("classification labels must be 0 or 1")
    return X, y


# ------------------------------------------------------------------ the interface


@dataclass(frozen=True)
class TrainSettings:
    """A network and its training, all but the seed (validated by the estimator).

    Networks whose settings are equal (:meth:`key`) can train together in the batched
    engine. Values are kept as given; engines convert them (``int(...)``, ``float(...)``).
    """

    units: Sequence[int]
    cell: str
    dropout: float
    task: str
    epochs: int
    batch_size: int
    learning_rate: float
    loss: str
    patience: int
    validation_fraction: float
    validation_gap: int
    min_delta: float
    clip_norm: float | None
    device: str
    optimizer: str = "adam"

    def key(self) -> tuple[str, ...]:
        """The settings as a hashable key: networks with equal keys train together."""
        return tuple(repr(getattr(self, f.name)) for f in fields(self))


@dataclass(frozen=True)
class TrainingJob:
    """One network to train: its settings, data checked by :func:`check_data` (``y``
    float64, unscaled), its seed and its own per-epoch callback (None: the call's)."""

    settings: TrainSettings
    X: np.ndarray
    y: np.ndarray
    seed: int
    progress: ProgressCallback | None = None


@dataclass
class FittedNetwork:
    """What a trainer leaves of one network: the trained :class:`RecurrentNet` (in eval
    mode, its best validation epoch restored) and the record of its training.

    ``history`` holds ``"train_loss"`` and ``"val_loss"`` per epoch (standardized units
    for regression); ``best_val_loss`` is None without validation; ``trainer`` names the
    engine (``torch``, ``batched`` or ``compiled``)."""

    net: RecurrentNet
    device: torch.device
    loss: str
    n_features: int
    time_steps: int
    n_train: int
    n_val: int
    epochs_run: int
    best_epoch: int
    best_val_loss: float | None
    history: dict[str, list[float]]
    y_mean: float
    y_scale: float
    trainer: str

    @classmethod
    def after_loop(
        cls,
        net: RecurrentNet,
        device: torch.device,
        loss: str,
        shape: tuple[int, int],
        n_fit: int,
        n_val: int,
        epochs_run: int,
        best_epoch: int,
        best: float,
        history: dict[str, list[float]],
        y_mean: float,
        y_scale: float,
        trainer: str,
    ) -> FittedNetwork:
        """The record of a one-network loop (``torch``, ``compiled``): ``shape`` is
        ``(T, F)``; without validation the last epoch counts as the best, and a best loss
        that never became finite is None."""
        return cls(
            net=net,
            device=device,
            loss=loss,
            n_features=shape[1],
            time_steps=shape[0],
            n_train=n_fit,
            n_val=n_val,
            epochs_run=epochs_run,
            best_epoch=best_epoch if n_val else epochs_run,
            best_val_loss=best if n_val and math.isfinite(best) else None,
            history=history,
            y_mean=y_mean,
            y_scale=y_scale,
            trainer=trainer,
        )


class Trainer(Protocol):
    """An engine: fit every job, return their networks in job order.

    ``progress(epoch, n_still_training)`` after each epoch of the call, for jobs without
    their own callback (an engine that trains one network at a time reports 1). Callbacks
    run in the calling thread. ``workers``: threads the engine may use for concurrent fits
    (only the compiled trainer uses more than one).
    """

    def __call__(
        self,
        jobs: Sequence[TrainingJob],
        progress: GroupProgress | None = None,
        workers: int = 1,
    ) -> list[FittedNetwork]: ...


# ------------------------------------------------------------------ shared by the engines


def seeded_network(settings: TrainSettings, n_features: int, seed: int) -> RecurrentNet:
    """Step 1: ``torch.manual_seed(seed)``, then the network on the CPU (the caller moves
    it and, when fits run in threads, holds a lock around this call)."""
    torch.manual_seed(seed)
    units = tuple(int(u) for u in settings.units)
    return RecurrentNet(n_features, units, settings.cell, float(settings.dropout))


def split_and_scale(settings: TrainSettings, y: np.ndarray) -> tuple[int, int, float, float]:
    """Steps 2 and 3: ``(n_fit, n_val, y_mean, y_scale)`` of labels ``y`` (n,)."""
    n_fit, n_val = split_validation(
        len(y), settings.validation_fraction, int(settings.validation_gap), int(settings.patience)
    )
    y_mean, y_scale = target_scaling(y[:n_fit], settings.task)
    return n_fit, n_val, y_mean, y_scale


def epoch_reporter(
    own: ProgressCallback | None, progress: GroupProgress | None
) -> ProgressCallback | None:
    """A network's per-epoch callback: its own, else one reporting to the call's
    ``progress`` as one network still training."""
    if own is not None or progress is None:
        return own
    return lambda epoch, _loss, _val: progress(epoch, 1)

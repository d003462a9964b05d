"""The recurrent-network estimator: hyperparameters in, a fitted network out.

:class:`LSTMForecaster` (scikit-learn habit: hyperparameters in ``__init__``, ``fit(X, y)``
returns self, ``predict(X)``) validates its hyperparameters and data, picks the engine with
:func:`~lstm_madness.models.training.resolve_trainer` (a function of the config) and hands
the network to it (:func:`~lstm_madness.models.training.fit_networks`); it trains nothing
itself. The protocol every engine follows is :mod:`lstm_madness.models.protocol`; the
network, :mod:`lstm_madness.models.network`. :func:`fit_forecasters` fits many estimators
in one call (torch ones in turn, compiled ones in threads, batched ones with equal
settings as one batched computation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lstm_madness.errors import ConfigError, DataError, MadnessError
from lstm_madness.models.protocol import (
    FittedNetwork,
    GroupProgress,
    ProgressCallback,
    TrainingJob,
    TrainSettings,
    check_data,
    check_windows,
    resolve_loss,
)
from lstm_madness.models.training import fit_networks, resolve_trainer
from lstm_madness.options import CELLS, DEVICES, OPTIMIZERS

__all__ = ["PREDICT_CHUNK", "LSTMForecaster", "fit_forecasters"]

#: Samples per forward pass in :meth:`LSTMForecaster.predict`.
PREDICT_CHUNK = 8192


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


class LSTMForecaster:
    """Recurrent-network forecaster of the label dated ``t`` from the window ending at ``t``.

    Parameters
    ----------
    units : sequence of int
        Hidden units per stacked layer.
    time_steps : int, optional
        Expected window length; ``None`` accepts the length of ``X`` in :meth:`fit`.
    cell : {"lstm", "gru"}
    dropout : float
        In ``[0, 1)``, after every recurrent layer.
    task : {"regression", "classification"}
        Regression predicts the label in return units; classification the probability
        that the label is 1 (up).
    epochs : int
        Maximum passes over the fit set.
    batch_size : int
    learning_rate : float
        Step size of the optimizer (the update of :mod:`lstm_madness.models.optimizer`).
    loss : {"auto", "mse", "huber", "bce"}
        ``auto``: mse for regression, bce (with logits) for classification.
    patience : int
        Epochs without validation improvement before stopping; 0 disables the validation
        tail and early stopping.
    validation_fraction : float
        Share of the samples held out at the end of the training window for early stopping.
    validation_gap : int
        Samples dropped between the fit set and the validation tail (``horizon - 1``).
    min_delta : float
        Improvement in validation loss needed to count as better.
    clip_norm : float or None
        Max global gradient norm; ``None`` or 0 disables clipping.
    seed : int
        Seeds the weight initialization, the epoch shuffles and dropout.
    device : {"auto", "cpu", "cuda"}
    trainer : {"auto", "torch", "batched", "compiled"}
        How the network is trained (:func:`~lstm_madness.models.training.resolve_trainer`);
        all follow the protocol of :mod:`lstm_madness.models.protocol` (``batched`` and
        ``compiled``: to float32 rounding, their own dropout masks).
    progress : callable, optional
        ``progress(epoch, train_loss, val_loss)`` after each epoch (``torch`` and
        ``compiled`` trainers).
    optimizer : {"adam", "rmsprop"}
        The update after the clipping (:mod:`lstm_madness.models.optimizer`).

    Attributes
    ----------
    net_ : RecurrentNet
        The fitted network (restored to its best validation epoch), in eval mode.
    n_features_in_, time_steps_ : int
    n_train_, n_val_ : int
        Fit-set and validation-tail sizes.
    epochs_run_, best_epoch_ : int
        Epochs trained and the (1-based) epoch whose weights were kept.
    best_val_loss_ : float or None
        Validation loss of the kept weights (None without validation).
    history_ : dict of str to list of float
        ``"train_loss"`` and ``"val_loss"`` per epoch (``val_loss`` empty without
        validation). In standardized units for regression.
    y_mean_, y_scale_ : float
        Target standardization (regression); 0 and 1 for classification.
    loss_ : str
        The resolved loss name.
    device_ : torch.device
    trainer_ : str
        The trainer that fitted the network (``torch``, ``batched`` or ``compiled``).
    """

    def __init__(
        self,
        units: Sequence[int] = (32,),
        time_steps: int | None = None,
        cell: str = "lstm",
        dropout: float = 0.0,
        task: str = "regression",
        epochs: int = 100,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        loss: str = "auto",
        patience: int = 10,
        validation_fraction: float = 0.1,
        validation_gap: int = 0,
        min_delta: float = 0.0,
        clip_norm: float | None = 1.0,
        seed: int = 0,
        device: str = "auto",
        trainer: str = "auto",
        progress: ProgressCallback | None = None,
        optimizer: str = "adam",
    ) -> None:
        self.units = units
        self.time_steps = time_steps
        self.cell = cell
        self.dropout = dropout
        self.task = task
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.validation_gap = validation_gap
        self.min_delta = min_delta
        self.clip_norm = clip_norm
        self.seed = seed
        self.device = device
        self.trainer = trainer
        self.progress = progress
        self.optimizer = optimizer

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        units = tuple(self.units) if isinstance(self.units, Sequence) else ()
        if not units or any(
            isinstance(u, bool) or not isinstance(u, int | np.integer) or u < 1 for u in units
        ):
            raise ConfigError(
                f"units must be a non-empty list of positive integers, got {self.units!r}"
            )
        if self.time_steps is not None:
            _check_int("time_steps", self.time_steps, 1)
        if self.cell not in CELLS:
            raise ConfigError(f"cell {self.cell!r} is not one of {', '.join(CELLS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        resolve_loss(self.loss, self.task)
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("patience", self.patience, 0)
        _check_int("validation_gap", self.validation_gap, 0)
        _check_int("seed", self.seed, 0)
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        if not self.min_delta >= 0:
            raise ConfigError(f"min_delta must be >= 0, got {self.min_delta!r}")
        if self.clip_norm is not None and not self.clip_norm >= 0:
            raise ConfigError(f"clip_norm must be >= 0 or None, got {self.clip_norm!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        resolve_trainer(
            self.trainer, units, self.batch_size, self.time_steps, self.device, cell=self.cell
        )

    def resolved_trainer(self, time_steps: int | None = None) -> str:
        """The trainer :meth:`fit` uses (``time_steps`` defaults to the parameter)."""
        return resolve_trainer(
            self.trainer,
            tuple(self.units),
            self.batch_size,
            self.time_steps if time_steps is None else time_steps,
            self.device,
            cell=self.cell,
        )

    def settings(self) -> TrainSettings:
        """The network and training hyperparameters, all but the seed (what must agree for
        networks to train together)."""
        return TrainSettings(
            units=self.units,
            cell=self.cell,
            dropout=self.dropout,
            task=self.task,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            loss=self.loss,
            patience=self.patience,
            validation_fraction=self.validation_fraction,
            validation_gap=self.validation_gap,
            min_delta=self.min_delta,
            clip_norm=self.clip_norm,
            device=self.device,
            optimizer=self.optimizer,
        )

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: np.ndarray) -> LSTMForecaster:
        """Train on windows ``X`` (n, T, F) and labels ``y`` (n,), samples in date order,
        by the protocol of :mod:`lstm_madness.models.protocol`, with the engine
        :meth:`resolved_trainer` names (recorded in ``trainer_``).

        Returns
        -------
        self
        """
        fit_forecasters([self], [(X, y)])
        return self

    def _job(self, X: np.ndarray, y: np.ndarray) -> tuple[str, TrainingJob]:
        """Validate the hyperparameters and data; the engine's name and the job."""
        self._validate_params()
        X, y = check_data(X, y, self.task, self.time_steps)
        job = TrainingJob(self.settings(), X, y, int(self.seed), self.progress)
        return self.resolved_trainer(X.shape[1]), job

    def _set_fitted(self, fitted: FittedNetwork) -> None:
        self.net_ = fitted.net
        self.device_ = fitted.device
        self.loss_ = fitted.loss
        self.n_features_in_ = fitted.n_features
        self.time_steps_ = fitted.time_steps
        self.n_train_ = fitted.n_train
        self.n_val_ = fitted.n_val
        self.epochs_run_ = fitted.epochs_run
        self.best_epoch_ = fitted.best_epoch
        self.best_val_loss_ = fitted.best_val_loss
        self.history_ = fitted.history
        self.y_mean_ = fitted.y_mean
        self.y_scale_ = fitted.y_scale
        self.trainer_ = fitted.trainer

    # ------------------------------------------------------------------ predict
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Forecasts for windows ``X`` (n, T, F) -> ``(n,)`` float64.

        Regression: the label in return units (standardization inverted). Classification:
        the probability that the label is 1 (up). Eval mode, ``inference_mode``, chunks of
        :data:`PREDICT_CHUNK` samples.
        """
        if not hasattr(self, "net_"):
            raise MadnessError("LSTMForecaster is not fitted; call fit first")
        X = check_windows(X)
        if X.shape[1:] != (self.time_steps_, self.n_features_in_):
            raise DataError(
                f"X windows have shape {X.shape[1:]}, the model was fitted on "
                f"{(self.time_steps_, self.n_features_in_)}"
            )
        self.net_.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(X), PREDICT_CHUNK):
                chunk = torch.tensor(
                    np.asarray(X[i : i + PREDICT_CHUNK]), dtype=torch.float32, device=self.device_
                )  # (b, T, F)
                raw = self.net_(chunk)  # (b,)
                if self.task == "classification":
                    raw = torch.sigmoid(raw)
                out.append(raw.double().cpu().numpy())
        pred = np.concatenate(out) if out else np.empty(0)
        if self.task == "regression":
            pred = pred * self.y_scale_ + self.y_mean_
        return pred.astype(np.float64)


def fit_forecasters(
    estimators: Sequence[LSTMForecaster],
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    progress: GroupProgress | None = None,
    n_jobs: int | None = None,
) -> list[LSTMForecaster]:
    """Fit ``estimators[i]`` on ``data[i] = (X_i (n_i, T, F), y_i (n_i,))``, each by its
    trainer (:meth:`LSTMForecaster.resolved_trainer`, recorded in ``trainer_``), and each
    ending as its own :meth:`~LSTMForecaster.fit` would have left it.

    Every estimator and its data are checked first. Then, as
    :func:`~lstm_madness.models.training.fit_networks`: ``torch`` estimators one by one;
    ``compiled`` ones in ``n_jobs`` worker threads (None = every CPU, 1 = one after another
    in the calling thread; each ends with exactly the parameters, history and predictions
    of its fit alone); ``batched`` ones that share their :meth:`~LSTMForecaster.settings`
    as one batched computation (a lone one as a batch of one; to float tolerance of its
    fit alone, with dropout > 0 other masks).

    ``progress(epoch, n_still_training)`` is called after each epoch of each training call
    (the compiled workers' epochs interleave); an estimator's own ``progress`` takes its
    place for that estimator (torch and compiled). Every callback runs in the calling
    thread, one at a time. If a fit raises, the compiled fits not yet started are
    cancelled, those running stop after their current epoch, the first error is raised and
    no estimator of the call is left fitted by it.
    """
    if len(estimators) != len(data):
        raise ConfigError(f"{len(estimators)} estimators but {len(data)} datasets")
    prepared = [est._job(X, y) for est, (X, y) in zip(estimators, data, strict=True)]
    fitted = fit_networks(
        [job for _, job in prepared],
        [trainer for trainer, _ in prepared],
        progress=progress,
        n_jobs=n_jobs,
    )
    for est, network in zip(estimators, fitted, strict=True):
        est._set_fitted(network)
    return list(estimators)

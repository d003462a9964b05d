"""A stacked LSTM / GRU forecaster with a fixed, documented training protocol.

:class:`LSTMForecaster` fits one :class:`RecurrentNet` on windows ``X`` of shape
``(n, time_steps, n_features)`` (sample ``i`` dated by its last row) and labels ``y`` of
shape ``(n,)``. :mod:`lstm_madness.models.batched` trains many of them as one batched
computation and must reproduce the protocol in :meth:`LSTMForecaster.fit` exactly; it
reuses :func:`make_loss`, :func:`resolve_loss`, :func:`split_validation`,
:func:`target_scaling` and :func:`resolve_device` from here.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lstm_madness.errors import ConfigError, DataError, MadnessError
from lstm_madness.options import CELLS, DEVICES, LOSSES, TASKS, TRAINERS

#: ``progress(epoch, train_loss, val_loss)`` after each epoch (epoch counts from 1).
ProgressCallback = Callable[[int, float, float | None], None]

#: ``trainer="auto"`` picks the compiled loops (:mod:`lstm_madness.models.compiled`) when
#: ``batch_size · max(units)²`` is at most this, else the batched engine. Evidence (one
#: network, 3,072 windows, 2 epochs, samples/s compiled / batched / torch; 2-core AMD EPYC,
#: 2026-12-01, after the kernels took their products by BLAS): LSTM(64) batch 32, T=5:
#: 76,300 / 28,100 / 27,200; LSTM(128) batch 32, T=5: 28,000 / 13,500 / 13,900; LSTM(64)
#: batch 128: 79,100 / 42,900 / 54,900; LSTM(64) batch 32, T=20: 20,000 / 10,200 /
#: 11,100; LSTM(32) batch 128, T=20: 45,900 / 23,300 / 39,400. At the bound, LSTM(128)
#: batch 32, T=20 is about even (5,900 / 4,700 / 6,800); beyond it the batched engine
#: training many networks at once wins (LSTM(128) batch 128, T=5: 31,400 compiled against
#: 51,000 each for 16 batched). The grid of ``python -m bench compiled`` (batch size {1, 8,
#: 32, 128} × units {1, 8, 32, 128} × time steps {1, 5, 20}) shows compiled ahead of both
#: PyTorch trainers for one network below the bound. Many same-shape networks trained
#: together (a sweep, walk-forward folds) train a thread per core (compiled) or as one
#: batched computation; ``auto`` does not look at how many networks train together, so a
#: config trains the same way alone or in a sweep.
COMPILED_MAX_BATCH_UNITS2 = 524_288
#: A config refitted on walk-forward folds trains its folds' networks together (one batched
#: computation per fold group), so there ``auto`` keeps the compiled loops only where they
#: beat the batched engine training 16 networks at once: batch 1, or ``batch_size ·
#: max(units)² <=`` this (same grid, "batched×16" column: LSTM(8) batch 8, T=5: 85,600 vs
#: 60,700 samples/s; LSTM(32) batch 8: 48,000 vs 55,700; LSTM(8) batch 32: 157,600 vs
#: 271,200). Measured on ``bench study`` (XLF walk-forward, 19 yearly folds x 5 seeds,
#: LSTM(32) batch 64): 45 s compiled (a thread per core), 15.8 s batched.
COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD = 1_024
#: Samples per forward pass in :meth:`LSTMForecaster.predict`.
PREDICT_CHUNK = 8192


class RecurrentNet(nn.Module):
    """Stacked single-layer ``nn.LSTM`` / ``nn.GRU`` modules, dropout, a linear head.

    Parameters
    ----------
    n_features : int
        Inputs per time step ``F``.
    units : sequence of int
        Hidden units of each stacked layer (``units[0]`` first).
    cell : {"lstm", "gru"}
    dropout : float
        Dropout applied to every layer's output sequence (also after the last layer).
    """

    def __init__(
        self, n_features: int, units: Sequence[int], cell: str = "lstm", dropout: float = 0.0
    ) -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        sizes = [n_features, *units]
        self.rnns = nn.ModuleList(
            rnn(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw output of each window: ``(B, T, F) -> (B,)`` (a logit for direction)."""
        h = x  # (B, T, F)
        for rnn in self.rnns:
            h, _ = rnn(h)  # (B, T, H_i)
            h = self.dropout(h)
        return self.head(h[:, -1, :]).squeeze(-1)  # (B,)


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


def resolve_trainer(
    trainer: str,
    units: Sequence[int],
    batch_size: int,
    time_steps: int | None,
    device: str = "auto",
    *,
    walk_forward: bool = False,
) -> str:
    """The concrete trainer of a network: ``torch`` (the autograd loop of
    :meth:`LSTMForecaster.fit`), ``batched`` (:mod:`lstm_madness.models.batched`, trains
    same-shape networks together) or ``compiled`` (:mod:`lstm_madness.models.compiled`,
    CPU only).

    ``"auto"`` is a pure function of the architecture and batch size — never of how many
    networks train together, so a config trains the same way alone or inside a sweep:
    ``compiled`` when ``device`` is not ``"cuda"`` and ``batch_size · max(units)² <=``
    :data:`COMPILED_MAX_BATCH_UNITS2`, else ``batched``; for a config refitted on
    walk-forward folds that train together (``walk_forward``: part of the config too) the
    bound is :data:`COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD` (or batch size 1). ``time_steps``
    is accepted for the record: the measured crossover does not depend on it.
    """
    if trainer not in TRAINERS:
        raise ConfigError(f"trainer {trainer!r} is not one of {', '.join(TRAINERS)}")
    if trainer == "compiled" and device == "cuda":
        raise ConfigError("trainer 'compiled' runs on the CPU; it cannot use device 'cuda'")
    if trainer != "auto":
        return trainer
    del time_steps  # every trainer's cost is linear in it (bench compiled grid)
    work = int(batch_size) * max(int(u) for u in units) ** 2
    if walk_forward:
        small = int(batch_size) == 1 or work <= COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD
    else:
        small = work <= COMPILED_MAX_BATCH_UNITS2
    return "compiled" if device != "cuda" and small else "batched"


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
        Adam step size (default betas and eps, no weight decay).
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
        How the network is trained (:func:`resolve_trainer`); all follow the protocol of
        :meth:`fit` (``compiled``: to float32 rounding, its own dropout masks).
    progress : callable, optional
        ``progress(epoch, train_loss, val_loss)`` after each epoch.

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
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        resolve_trainer(self.trainer, units, self.batch_size, self.time_steps, self.device)

    def resolved_trainer(self, time_steps: int | None = None) -> str:
        """The trainer :meth:`fit` uses (``time_steps`` defaults to the parameter)."""
        return resolve_trainer(
            self.trainer,
            tuple(self.units),
            self.batch_size,
            self.time_steps if time_steps is None else time_steps,
            self.device,
        )

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 3:
            raise DataError(f"X must have shape (n, time_steps, n_features), got {X.shape}")
        if not np.isfinite(X).all():
            raise DataError("X contains NaN or infinite values")
        return X

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: np.ndarray) -> LSTMForecaster:
        """Train on windows ``X`` (n, T, F) and labels ``y`` (n,), samples in date order.

        Protocol (reproduced exactly by :mod:`lstm_madness.models.batched`):

        1. ``torch.manual_seed(seed)``; build ``RecurrentNet`` on the CPU with torch's
           default initialization, then move it to the device (so the initial weights do
           not depend on the device).
        2. ``n_fit, n_val = split_validation(n, validation_fraction, validation_gap,
           patience)``: fit on samples ``[0, n_fit)``, validate on ``[n - n_val, n)``.
        3. Regression targets are standardized with ``target_scaling(y[:n_fit])``
           (``y_mean_``, ``y_scale_``; validation targets too), so losses are in units of
           the fit set's std; :meth:`predict` inverts it. Classification targets stay 0/1.
        4. ``gen = torch.Generator(device=device).manual_seed(seed)``; each epoch, in
           ``train()`` mode: ``perm = torch.randperm(n_fit, generator=gen, device=device)``;
           batches are ``perm[i:i + batch_size]`` for ``i = 0, batch_size, ...`` (the last
           may be smaller); per batch: mean loss (:func:`make_loss`), ``zero_grad
           (set_to_none=True)``, ``backward``, ``clip_grad_norm_(parameters, clip_norm)``
           unless ``clip_norm`` is None/0, ``Adam(lr=learning_rate).step()``. The epoch's
           train loss is the sample-weighted mean of its batch losses.
        5. With validation, after each epoch: loss over the whole validation tail in one
           forward pass in ``eval()`` mode; if ``val < best - min_delta`` (``best``
           starts at +inf) keep a deep copy of the ``state_dict`` and reset ``wait``,
           else ``wait += 1``; stop once ``wait >= patience``. The best weights are
           restored at the end. Without validation all ``epochs`` run and the last
           weights are kept.

        Dropout draws from torch's global generator (seeded in step 1).

        This is the ``torch`` trainer; ``trainer`` (:func:`resolve_trainer`) may hand the
        same protocol to the batched engine or the compiled loops instead.

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._check_X(X)
        trainer = self.resolved_trainer(X.shape[1])
        if trainer == "batched":
            from lstm_madness.models.group import fit_forecasters

            fit_forecasters([self], [(X, y)])
            return self
        if trainer == "compiled":
            X, y = self._check_data(X, y)
            from lstm_madness.models.compiled import fit_compiled, one_blas_thread

            with one_blas_thread():
                fit_compiled(self, X, y)
            self.trainer_ = "compiled"
            return self
        return self._fit_torch(X, y)

    def _check_data(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Checked ``X`` (n, T, F) and ``y`` (n,) float64 (raises :class:`DataError`)."""
        X = self._check_X(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        n, steps, _ = X.shape
        if len(y) != n:
            raise DataError(f"X has {n} samples but y has {len(y)}")
        if n == 0:
            raise DataError("no training samples")
        if self.time_steps is not None and steps != self.time_steps:
            raise DataError(f"X windows have {steps} time steps, expected {self.time_steps}")
        if not np.isfinite(y).all():
            raise DataError("y contains NaN or infinite values")
        if self.task == "classification" and not np.isin(y, (0.0, 1.0)).all():
            raise DataError("classification labels must be 0 or 1")
        return X, y

    def _fit_torch(self, X: np.ndarray, y: np.ndarray) -> LSTMForecaster:
        """The reference autograd loop (steps 1–5 of :meth:`fit`)."""
        self._validate_params()
        X, y = self._check_data(X, y)
        n, steps, n_features = X.shape
        loss_name = resolve_loss(self.loss, self.task)
        device = resolve_device(self.device)
        seed = int(self.seed)
        clip = float(self.clip_norm) if self.clip_norm else None

        # 1. seeded default initialization (on the CPU, then moved)
        torch.manual_seed(seed)
        net = RecurrentNet(
            n_features, tuple(int(u) for u in self.units), self.cell, float(self.dropout)
        ).to(device)
        # 2. fit set and validation tail
        n_fit, n_val = split_validation(
            n, self.validation_fraction, int(self.validation_gap), int(self.patience)
        )
        # 3. target standardization (regression)
        y_mean, y_scale = target_scaling(y[:n_fit], self.task)
        X_all = torch.tensor(X, dtype=torch.float32, device=device)  # (n, T, F)
        y_all = torch.tensor((y - y_mean) / y_scale, dtype=torch.float32, device=device)  # (n,)
        X_fit, y_fit = X_all[:n_fit], y_all[:n_fit]
        X_val, y_val = X_all[n - n_val :], y_all[n - n_val :]

        loss_fn = make_loss(loss_name)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        gen = torch.Generator(device=device).manual_seed(seed)
        batch_size = int(self.batch_size)
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        best, best_state, best_epoch, wait = math.inf, None, 0, 0
        epoch = 0
        for epoch in range(1, int(self.epochs) + 1):
            # 4. one epoch of shuffled mini-batches
            net.train()
            perm = torch.randperm(n_fit, generator=gen, device=device)
            total = torch.zeros((), device=device)
            for i in range(0, n_fit, batch_size):
                idx = perm[i : i + batch_size]
                batch_loss = loss_fn(net(X_fit[idx]), y_fit[idx])
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                if clip is not None:
                    nn.utils.clip_grad_norm_(net.parameters(), clip)
                opt.step()
                total += batch_loss.detach() * idx.numel()
            train_loss = total.item() / n_fit
            history["train_loss"].append(train_loss)
            # 5. validation and early stopping
            val_loss = None
            if n_val:
                net.eval()
                with torch.no_grad():
                    val_loss = loss_fn(net(X_val), y_val).item()
                history["val_loss"].append(val_loss)
                if val_loss < best - self.min_delta:
                    best, best_epoch, wait = val_loss, epoch, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    wait += 1
            if self.progress is not None:
                self.progress(epoch, train_loss, val_loss)
            if n_val and wait >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()

        return self._fitted(
            net, device, loss_name, n_features, steps, n_fit, n_val, epoch, best_epoch, best,
            history, y_mean, y_scale, "torch",
        )  # fmt: skip

    def _fitted(
        self,
        net: RecurrentNet,
        device: torch.device,
        loss_name: str,
        n_features: int,
        steps: int,
        n_fit: int,
        n_val: int,
        epochs_run: int,
        best_epoch: int,
        best_val_loss: float,
        history: list,
        y_mean: float,
        y_scale: float,
        trainer: str,
    ) -> LSTMForecaster:
        """Set the learned attributes after a fit by any trainer; returns self."""
        self.net_ = net
        self.device_ = device
        self.loss_ = loss_name
        self.n_features_in_ = n_features
        self.time_steps_ = steps
        self.n_train_ = n_fit
        self.n_val_ = n_val
        self.epochs_run_ = epochs_run
        self.best_epoch_ = best_epoch if n_val else epochs_run
        self.best_val_loss_ = best_val_loss if n_val and math.isfinite(best_val_loss) else None
        self.history_ = history
        self.y_mean_ = y_mean
        self.y_scale_ = y_scale
        self.trainer_ = trainer
        return self

    # ------------------------------------------------------------------ predict
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Forecasts for windows ``X`` (n, T, F) -> ``(n,)`` float64.

        Regression: the label in return units (standardization inverted). Classification:
        the probability that the label is 1 (up). Eval mode, ``inference_mode``, chunks of
        :data:`PREDICT_CHUNK` samples.
        """
        if not hasattr(self, "net_"):
            raise MadnessError("LSTMForecaster is not fitted; call fit first")
        X = self._check_X(X)
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
                    X[i : i + PREDICT_CHUNK], dtype=torch.float32, device=self.device_
                )  # (b, T, F)
                raw = self.net_(chunk)  # (b,)
                if self.task == "classification":
                    raw = torch.sigmoid(raw)
                out.append(raw.double().cpu().numpy())
        pred = np.concatenate(out) if out else np.empty(0)
        if self.task == "regression":
            pred = pred * self.y_scale_ + self.y_mean_
        return pred.astype(np.float64)

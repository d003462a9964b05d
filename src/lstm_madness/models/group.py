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

Compiled estimators train concurrently in a thread pool (the numba kernels release the
GIL), one whole :func:`~lstm_madness.models.compiled.fit_compiled` per worker, so a sweep
of small networks uses every core; each ends bit for bit as fitted alone.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

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
    n_jobs: int | None = None,
) -> list[LSTMForecaster]:
    """Fit ``estimators[i]`` on ``data[i] = (X_i (n_i, T, F), y_i (n_i,))``, each by its
    trainer (:meth:`LSTMForecaster.resolved_trainer`, recorded in ``trainer_``).

    ``torch`` estimators are fitted one by one, first; then the ``compiled`` ones, in
    ``min(n_compiled, n_jobs)`` worker threads (one whole fit per worker: each ends with
    exactly the parameters, history and predictions of its fit alone); then ``batched``
    estimators that share :data:`SHARED` hyperparameters are trained together as one
    batched computation (a lone one as a batch of one).

    ``progress(epoch, n_still_training)`` is called after each epoch of each training call
    (the compiled workers' epochs interleave); an estimator's own ``progress`` takes its
    place for that estimator. Every callback runs in the calling thread, one at a time.
    If a fit raises, the compiled fits not yet started are cancelled, those running stop
    after their current epoch, and the first error is raised.

    ``n_jobs``: worker threads for the compiled estimators; None = :func:`available_cpus`,
    1 = one after another in the calling thread.
    """
    if len(estimators) != len(data):
        raise ConfigError(f"{len(estimators)} estimators but {len(data)} datasets")
    if n_jobs is not None and int(n_jobs) < 1:
        raise ConfigError(f"n_jobs must be at least 1 (or None for every CPU), got {n_jobs}")
    groups: dict[tuple, list[int]] = {}
    compiled: list[int] = []
    for i, (est, (X, _y)) in enumerate(zip(estimators, data, strict=True)):
        est._validate_params()
        trainer = est.resolved_trainer(est._check_X(X).shape[1])
        if trainer == "batched":
            groups.setdefault(tuple(repr(getattr(est, n)) for n in SHARED), []).append(i)
        elif trainer == "compiled":
            compiled.append(i)
        else:
            own = est.progress
            est.progress = _reporter(own, progress)
            try:
                est._fit_torch(*data[i])
            finally:
                est.progress = own
    if compiled:
        workers = min(len(compiled), n_jobs or available_cpus())
        from lstm_madness.models.compiled import one_blas_thread

        with one_blas_thread():
            _fit_compiled(
                [estimators[i] for i in compiled], [data[i] for i in compiled], progress, workers
            )
    for members in groups.values():
        _fit_batched([estimators[i] for i in members], [data[i] for i in members], progress)
    return list(estimators)


def available_cpus() -> int:
    """Threads a training call may use: PyTorch's intra-op thread count, the one knob for
    every trainer (the cores by default; ``$OMP_NUM_THREADS`` or ``torch.set_num_threads``
    lower it, as Ray does for a task of one CPU), never more than the CPUs this process may
    run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(torch.get_num_threads(), cpus or 1))


def _reporter(
    own: Callable[[int, float, float | None], None] | None,
    progress: Callable[[int, int], None] | None,
) -> Callable[[int, float, float | None], None] | None:
    """An estimator's per-epoch callback: its own, else one reporting to ``progress``."""
    if own is not None or progress is None:
        return own
    return lambda epoch, _loss, _val: progress(epoch, 1)


class _Stopped(Exception):
    """Raised inside a compiled worker at an epoch's end once another fit has failed."""


def _fit_compiled(
    estimators: Sequence[LSTMForecaster],
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    progress: Callable[[int, int], None] | None,
    workers: int,
) -> None:
    """Fit compiled estimators, ``workers`` at a time in threads (see :func:`fit_forecasters`).

    The workers do not call the callbacks: they queue each epoch's report, and this thread
    runs the callbacks (a database heartbeat, a progress bar) in arrival order."""
    from lstm_madness.models.compiled import fit_compiled, kernels

    checked = [est._check_data(X, y) for est, (X, y) in zip(estimators, data, strict=True)]
    if workers <= 1:
        for est, (X, y) in zip(estimators, checked, strict=True):
            own = est.progress
            est.progress = _reporter(own, progress)
            try:
                fit_compiled(est, X, y)
            finally:
                est.progress = own
        return
    kernels()  # import numba and load the kernels once, in this thread
    events: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def fit_one(est: LSTMForecaster, X: np.ndarray, y: np.ndarray) -> None:
        own = est.progress
        report = _reporter(own, progress)

        def queued(epoch: int, loss: float, val: float | None) -> None:
            if stop.is_set():
                raise _Stopped
            if report is not None:
                events.put((report, epoch, loss, val))

        est.progress = queued
        try:
            fit_compiled(est, X, y)
        finally:
            est.progress = own

    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compiled-fit") as pool:
        futures = [
            pool.submit(fit_one, est, X, y) for est, (X, y) in zip(estimators, checked, strict=True)
        ]
        for future in futures:
            future.add_done_callback(events.put)
        try:
            done = 0
            while done < len(futures):
                item = events.get()
                if isinstance(item, Future):
                    done += 1
                    exc = None if item.cancelled() else item.exception()
                    if exc is not None and error is None and not isinstance(exc, _Stopped):
                        error = exc
                        _stop(futures, stop)
                elif not stop.is_set():
                    report, epoch, loss, val = item
                    report(epoch, loss, val)
        except BaseException:  # a callback failed, or KeyboardInterrupt
            _stop(futures, stop)
            raise
    if error is not None:
        raise error


def _stop(futures: Sequence[Future], stop: threading.Event) -> None:
    """Cancel the fits not started and make the running ones stop after their epoch."""
    stop.set()
    for future in futures:
        future.cancel()


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

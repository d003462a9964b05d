"""The compiled trainer: one small network's training as numba loops instead of PyTorch.

At small batches a tiny LSTM step is a few hundred floating-point operations, and the
PyTorch path pays tens of operator dispatches for each; here forward, backward through
time, global-norm clipping and Adam (or RMSprop) are plain loops over preallocated float32 buffers
(:mod:`lstm_madness.models._kernels`), one compiled call per epoch.

:func:`fit_compiled` follows the protocol of :mod:`lstm_madness.models.protocol` step by
step: the initial weights come from the same seeded ``RecurrentNet``, the batch order from
the same ``torch.randperm`` generator, the same target scaling, mean batch losses (mse,
huber with delta 1, bce with logits), the optimizer update of
:mod:`lstm_madness.models.optimizer`, validation tail, early stopping and best-weight
restore. With dropout 0 the training losses and predictions equal the ``torch`` trainer's
to float32 rounding (sums run in another order). With dropout > 0 the masks come from
numba's own generator seeded with ``seed``: deterministic, but not PyTorch's masks bit for
bit. The trained weights are written back into a ``RecurrentNet``, so prediction runs
through the ordinary module.

:func:`fit` trains many networks concurrently, one whole :func:`fit_compiled` per worker
thread (the kernels release the GIL); each ends bit for bit as fitted alone.

numba is imported on first use only, and compiled functions are cached on disk
(:func:`cache_dir`), so a process pays the compilation once per machine, not per run.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from lstm_madness import jit
from lstm_madness.jit import cache_dir
from lstm_madness.models.compiled_lstm import PartsFit, uses_parts
from lstm_madness.models.network import flat_parameters, load_flat_parameters
from lstm_madness.models.protocol import (
    FittedNetwork,
    GroupProgress,
    ProgressCallback,
    TrainingJob,
    TrainSettings,
    epoch_reporter,
    resolve_loss,
    seeded_network,
    split_and_scale,
)
from lstm_madness.windows import PanelWindows

__all__ = [
    "Buffers",
    "cache_dir",
    "fit",
    "fit_compiled",
    "kernels",
    "layout",
    "one_blas_thread",
    "warm",
]

#: Rows per forward call when computing the validation loss.
EVAL_CHUNK = 256
LOSS_CODES = {"mse": 0, "huber": 1, "bce": 2}
#: Seconds the first :func:`kernels` call spent importing numba and loading or compiling
#: the kernels in this process (None before).
first_load_s: float | None = None
_KERNELS = "lstm_madness.models._kernels"
#: Held while a fit seeds torch's global generator and draws its initial weights, so fits
#: in concurrent threads (:func:`fit`) each get exactly their own seed's weights.
TORCH_SEED_LOCK = threading.Lock()


def one_blas_thread():
    """Context in which BLAS (scipy's OpenBLAS, which numba's ``np.dot`` calls) runs one
    thread. Compiled fits take their products of one batch by BLAS, often from a thread per
    core (:func:`fit`); BLAS's own threads would then oversubscribe the cores (see
    docs/benchmarks.md). Enter it once, in the calling thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def kernels():
    """The numba kernels module, importing numba (with the cache directory set) on first
    use (thread-safe)."""
    global first_load_s
    module = jit.load(_KERNELS)
    if first_load_s is None:
        first_load_s = jit.load_seconds.get(_KERNELS, 0.0)
    return module


def warm() -> None:
    """Load every kernel of this trainer, compiling it first where numba's cache is cold,
    for the argument types that fits pass them: a one-epoch fit of a tiny network through
    each path (the whole-batch loops for LSTM and GRU, Adam and RMSprop; the parts path of
    :mod:`~lstm_madness.models.compiled_lstm` from windows in an array and in a panel).
    Cell, layers, loss, optimizer and dropout are values, not types: these four fits give
    every signature a fit uses. Run at install (``python -m lstm_madness.cli.warm``)."""
    rng = np.random.default_rng(0)

    def job(X, cell: str = "lstm", batch: int = 8, optimizer: str = "adam") -> TrainingJob:
        settings = TrainSettings(
            units=(4,), cell=cell, dropout=0.1, task="regression", epochs=1,
            batch_size=batch, learning_rate=1e-3, loss="mse", patience=1,
            validation_fraction=0.25, validation_gap=0, min_delta=0.0, clip_norm=1.0,
            device="cpu", optimizer=optimizer,
        )  # fmt: skip
        return TrainingJob(settings, X, rng.standard_normal(len(X)), 0)

    short = rng.standard_normal((32, 3, 2)).astype(np.float32)
    steps = 64  # batch 128 x 64 steps: the parts path (compiled_lstm.MIN_BATCH_STEPS)
    ends = np.arange(steps - 1, steps + 15)
    panel = PanelWindows(
        rng.standard_normal((steps + 15, 2, 1)).astype(np.float32),
        np.concatenate([ends, ends]),
        np.repeat([0, 1], len(ends)),
        steps,
    )
    for X, cell, batch, optimizer in (
        (short, "lstm", 8, "adam"),
        (short, "gru", 8, "rmsprop"),
        (np.asarray(panel), "lstm", 128, "adam"),
        (panel, "lstm", 128, "rmsprop"),
    ):
        fit_compiled(job(X, cell, batch, optimizer))


class Buffers:
    """Preallocated float32 work arrays for batches of up to ``rows`` windows."""

    def __init__(self, rows: int, T: int, F: int, units: tuple[int, ...], gates: int) -> None:
        total = rows * T * sum(units)
        self.xb = np.zeros(rows * T * F, np.float32)
        self.A = np.zeros(gates * total, np.float32)
        self.C = np.zeros(total, np.float32)
        self.NH = np.zeros(total, np.float32)
        self.Hraw = np.zeros(total, np.float32)
        self.Hd = np.zeros(total, np.float32)
        self.M = np.zeros(total, np.float32)
        self.DH = np.zeros(total, np.float32)
        self.DGX = np.zeros(gates * total, np.float32)
        self.DGH = np.zeros(gates * total, np.float32)
        # per window: the gradient reaching its previous step's output and cell state
        self.DHN = np.zeros(rows * max(units), np.float32)
        self.DCN = np.zeros(rows * max(units), np.float32)
        self.product = np.zeros(rows * max(units), np.float32)
        self.out = np.zeros(rows, np.float32)
        self.dout = np.zeros(rows, np.float32)
        self.yb = np.zeros(rows, np.float32)
        # per-window gate vectors, then one (rows, gates · units) block for the BLAS path
        self.scratch = np.zeros((2 + rows) * gates * max(units), np.float32)

    @property
    def back(self) -> tuple[np.ndarray, ...]:
        return (self.DH, self.DGX, self.DGH, self.DHN, self.DCN, self.product)

    @property
    def fwd(self) -> tuple[np.ndarray, ...]:
        return (self.xb, self.A, self.C, self.NH, self.Hraw, self.Hd, self.M, self.out)


def layout(n_features: int, units: tuple[int, ...], gates: int, rows: int, T: int):
    """``meta`` rows ``(I, H, parameter offset, activation offset)`` and the head offset."""
    meta = np.zeros((len(units), 4), np.int64)
    p_off, a_off, inp = 0, 0, n_features
    for i, h in enumerate(units):
        meta[i] = (inp, h, p_off, a_off)
        p_off += gates * h * (inp + h + 2)
        a_off += rows * T * h
        inp = h
    return meta, p_off


# ------------------------------------------------------------------ one network


class _Fit:
    """One network's compiled training: its buffers, parameters and optimizer moments."""

    def __init__(self, job: TrainingJob, buffers: bool = True) -> None:
        s = job.settings
        self.k = k = kernels()
        X, y = job.X, job.y
        n, steps, n_features = X.shape
        self.loss_name = resolve_loss(s.loss, s.task)
        self.seed = seed = int(job.seed)
        self.clip = float(s.clip_norm) if s.clip_norm else 0.0
        self.update = k.RMSPROP if s.optimizer == "rmsprop" else k.ADAM
        self.units = units = tuple(int(u) for u in s.units)
        gates = 4 if s.cell == "lstm" else 3
        self.cell = k.LSTM if s.cell == "lstm" else k.GRU
        self.p_drop = float(s.dropout)

        with TORCH_SEED_LOCK:  # 1. the reference's initial weights (torch's global generator)
            self.net = seeded_network(s, n_features, seed)
        n_fit, n_val, self.y_mean, self.y_scale = split_and_scale(s, y)  # 2., 3.
        self.n_fit, self.n_val = n_fit, n_val
        if isinstance(X, PanelWindows) and not buffers:  # the parts path gathers per batch
            X32 = X
        else:
            X32 = np.ascontiguousarray(X, dtype=np.float32)
        y32 = ((y - self.y_mean) / self.y_scale).astype(np.float32)
        self.X_fit, self.y_fit = X32[:n_fit], y32[:n_fit]
        self.X_val, self.y_val = X32[n - n_val :], y32[n - n_val :]
        self.shape = (steps, n_features)

        self.batch_size = batch_size = int(s.batch_size)
        self.rows = rows = max(batch_size, min(EVAL_CHUNK, max(n_val, 1)))
        self.meta, self.head_off = layout(n_features, units, gates, rows, steps)
        if buffers:  # the parts path (compiled_lstm) has its own
            self.buf = Buffers(rows, steps, n_features, units, gates)
        self.params = flat_parameters(self.net)
        if self.params.size != self.head_off + units[-1] + 1:  # pragma: no cover - guard
            raise AssertionError("parameter layout does not match RecurrentNet")
        self.grads = np.zeros_like(self.params)
        self.m = np.zeros_like(self.params)
        self.v = np.zeros_like(self.params)
        self.val_out = np.zeros(n_val, np.float32)
        self.code = LOSS_CODES[self.loss_name]
        self.lr = float(s.learning_rate)
        self.step = 0

    def train_epoch(self, perm: np.ndarray) -> float:
        """Step 4 over the batches of ``perm``; the epoch's train loss."""
        k, buf = self.k, self.buf
        total, self.step = k.train_epoch(
            self.cell, self.X_fit, self.y_fit, perm, self.batch_size, self.params,
            self.grads, self.m, self.v, self.step, self.lr, self.clip, self.code, self.meta,
            self.head_off, self.p_drop, buf.fwd, buf.back, buf.scratch, buf.yb, buf.dout,
            self.update,
        )  # fmt: skip
        return float(np.float32(total / self.n_fit))

    def val_loss(self) -> float:
        """Step 5's loss over the validation tail (eval mode)."""
        k, buf = self.k, self.buf
        loss = k.evaluate(
            self.cell, self.X_val, self.y_val, self.rows, self.params, self.meta,
            self.head_off, self.code, buf.fwd, buf.scratch, self.val_out,
        )  # fmt: skip
        return float(np.float32(loss))


def fit_compiled(
    job: TrainingJob, report: ProgressCallback | None = None, threads: int = 1
) -> FittedNetwork:
    """Train one network by the compiled loops, calling ``report(epoch, train_loss,
    val_loss)`` after each epoch. The network ends on the CPU.

    A one-layer LSTM with long windows or large batches
    (:func:`~lstm_madness.models.compiled_lstm.uses_parts`) trains its batches in parts on
    ``threads`` worker threads (:mod:`lstm_madness.models.compiled_lstm`); the result does
    not depend on ``threads``.

    Thread-safe: fits of different networks may run in concurrent threads (the kernels
    release the GIL); each gives the same result as alone. One fit runs in one thread
    (numba's generator of the dropout masks is per thread)."""
    s = job.settings
    parts = uses_parts(s.cell, tuple(s.units), int(s.batch_size), int(job.X.shape[1]))
    base = _Fit(job, buffers=not parts)
    fit = PartsFit(base, threads) if parts else base
    try:
        return _train(job, base, fit, report)
    finally:
        if parts:
            fit.close()


def _train(job: TrainingJob, base: _Fit, fit, report: ProgressCallback | None) -> FittedNetwork:
    """The epochs of :func:`fit_compiled` (steps 4 and 5) by ``fit`` (``base`` itself or
    its parts path)."""
    s = job.settings
    base.k.seed(base.seed)  # dropout masks: numba's generator of this thread
    gen = torch.Generator().manual_seed(base.seed)  # 4. the reference's batch order
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    best, best_params, best_epoch, wait = math.inf, None, 0, 0
    epoch = 0
    for epoch in range(1, int(s.epochs) + 1):
        perm = torch.randperm(base.n_fit, generator=gen).numpy()
        train_loss = fit.train_epoch(perm)
        history["train_loss"].append(train_loss)
        val_loss = None
        if base.n_val:  # 5.
            val_loss = fit.val_loss()
            history["val_loss"].append(val_loss)
            if val_loss < best - s.min_delta:
                best, best_epoch, wait = val_loss, epoch, 0
                best_params = base.params.copy()
            else:
                wait += 1
        if report is not None:
            report(epoch, train_loss, val_loss)
        if base.n_val and wait >= s.patience:
            break
    load_flat_parameters(base.net, best_params if best_params is not None else base.params)
    base.net.eval()
    return FittedNetwork.after_loop(
        base.net, torch.device("cpu"), base.loss_name, base.shape, base.n_fit, base.n_val, epoch,
        best_epoch, best, history, base.y_mean, base.y_scale, "compiled",
    )  # fmt: skip


# ------------------------------------------------------------------ many networks


def fit(
    jobs: Sequence[TrainingJob], progress: GroupProgress | None = None, workers: int = 1
) -> list[FittedNetwork]:
    """Fit every job, ``min(len(jobs), workers)`` at a time in threads, with BLAS at one
    thread (:func:`one_blas_thread`).

    The workers do not call the callbacks: they queue each epoch's report, and this thread
    runs the callbacks (a database heartbeat, a progress bar) in arrival order. If a fit
    raises, the fits not yet started are cancelled, those running stop after their current
    epoch, and the first error is raised."""
    # the cores left over by concurrent fits go to the parts of each (compiled_lstm)
    threads = max(1, workers // max(1, min(len(jobs), workers)))
    workers = min(len(jobs), workers)
    with one_blas_thread():
        if workers <= 1:
            return [
                fit_compiled(job, epoch_reporter(job.progress, progress), threads) for job in jobs
            ]
        return _fit_threaded(jobs, progress, workers)


class _Stopped(Exception):
    """Raised inside a compiled worker at an epoch's end once another fit has failed."""


def _fit_threaded(
    jobs: Sequence[TrainingJob], progress: GroupProgress | None, workers: int
) -> list[FittedNetwork]:
    kernels()  # import numba and load the kernels once, in this thread
    events: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def fit_one(job: TrainingJob) -> FittedNetwork:
        report = epoch_reporter(job.progress, progress)

        def queued(epoch: int, loss: float, val: float | None) -> None:
            if stop.is_set():
                raise _Stopped
            if report is not None:
                events.put((report, epoch, loss, val))

        return fit_compiled(job, queued)

    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compiled-fit") as pool:
        futures = [pool.submit(fit_one, job) for job in jobs]
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
    return [future.result() for future in futures]


def _stop(futures: Sequence[Future], stop: threading.Event) -> None:
    """Cancel the fits not started and make the running ones stop after their epoch."""
    stop.set()
    for future in futures:
        future.cancel()

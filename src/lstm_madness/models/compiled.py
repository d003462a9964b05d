"""Train one small recurrent network with numba-compiled loops instead of PyTorch.

At small batches a tiny LSTM step is a few hundred floating-point operations, and the
PyTorch path pays tens of operator dispatches for each; here forward, backward through
time, global-norm clipping and Adam are plain loops over preallocated float32 buffers
(:mod:`lstm_madness.models._kernels`), one compiled call per epoch.

:func:`fit_compiled` follows :meth:`LSTMForecaster.fit <lstm_madness.models.lstm.
LSTMForecaster.fit>`'s protocol step by step: the initial weights come from the same seeded
``RecurrentNet``, the batch order from the same ``torch.randperm`` generator, the same
target scaling, mean batch losses (mse, huber with delta 1, bce with logits), clipping,
Adam, validation tail, early stopping and best-weight restore. With dropout 0 the training
losses and predictions equal the reference's to float32 rounding (sums run in another
order). With dropout > 0 the masks come from numba's own generator seeded with ``seed``:
deterministic, but not PyTorch's masks bit for bit. The trained weights are written back
into a ``RecurrentNet``, so prediction runs through the ordinary module.

numba is imported on first use only, and compiled functions are cached on disk
(:func:`cache_dir`), so a process pays the compilation once per machine, not per run.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np
import torch

from lstm_madness import _numba
from lstm_madness._numba import cache_dir
from lstm_madness.models.lstm import (
    RecurrentNet,
    resolve_loss,
    split_validation,
    target_scaling,
)

if TYPE_CHECKING:
    from lstm_madness.models.lstm import LSTMForecaster

__all__ = ["cache_dir", "fit_compiled", "kernels", "one_blas_thread"]

#: Rows per forward call when computing the validation loss.
EVAL_CHUNK = 256
_LOSS_CODES = {"mse": 0, "huber": 1, "bce": 2}
#: Seconds the first :func:`kernels` call spent importing numba and loading or compiling
#: the kernels in this process (None before).
first_load_s: float | None = None
_KERNELS = "lstm_madness.models._kernels"
#: Held while a fit seeds torch's global generator and draws its initial weights, so fits
#: in concurrent threads (:func:`~lstm_madness.models.group.fit_forecasters`) each get
#: exactly their own seed's weights.
TORCH_SEED_LOCK = threading.Lock()


def one_blas_thread():
    """Context in which BLAS (scipy's OpenBLAS, which numba's ``np.dot`` calls) runs one
    thread. Compiled fits take their products of one batch by BLAS, often from a thread per core
    (:func:`~lstm_madness.models.group.fit_forecasters`); BLAS's own threads would then
    oversubscribe the cores (measured on the XLF walk-forward study of ``bench study``:
    46 s with one BLAS thread, 106 s with two). Enter it once, in the calling thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def kernels():
    """The numba kernels module, importing numba (with the cache directory set) on first
    use (thread-safe)."""
    global first_load_s
    module = _numba.load(_KERNELS)
    if first_load_s is None:
        first_load_s = _numba.load_seconds.get(_KERNELS, 0.0)
    return module


class _Buffers:
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


def _layout(n_features: int, units: tuple[int, ...], gates: int, rows: int, T: int):
    """``meta`` rows ``(I, H, parameter offset, activation offset)`` and the head offset."""
    meta = np.zeros((len(units), 4), np.int64)
    p_off, a_off, inp = 0, 0, n_features
    for i, h in enumerate(units):
        meta[i] = (inp, h, p_off, a_off)
        p_off += gates * h * (inp + h + 2)
        a_off += rows * T * h
        inp = h
    return meta, p_off


def _flat(net: RecurrentNet) -> np.ndarray:
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu().numpy().copy()


def _load(net: RecurrentNet, flat: np.ndarray) -> None:
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.from_numpy(flat.copy()), net.parameters())


def fit_compiled(est: LSTMForecaster, X: np.ndarray, y: np.ndarray) -> LSTMForecaster:
    """Fit ``est`` (validated; ``X`` (n, T, F) and ``y`` (n,) float64 already checked) by
    the compiled loops, setting the same fitted attributes as ``LSTMForecaster.fit``.
    The network ends on the CPU.

    Thread-safe: fits of different estimators may run in concurrent threads (the kernels
    release the GIL); each gives the same result as alone. One fit runs in one thread
    (numba's generator of the dropout masks is per thread)."""
    k = kernels()
    n, steps, n_features = X.shape
    loss_name = resolve_loss(est.loss, est.task)
    seed = int(est.seed)
    clip = float(est.clip_norm) if est.clip_norm else 0.0
    units = tuple(int(u) for u in est.units)
    gates = 4 if est.cell == "lstm" else 3
    cell = k.LSTM if est.cell == "lstm" else k.GRU
    p_drop = float(est.dropout)

    with TORCH_SEED_LOCK:  # 1. the reference's initial weights (torch's global generator)
        torch.manual_seed(seed)
        net = RecurrentNet(n_features, units, est.cell, p_drop)
    n_fit, n_val = split_validation(  # 2.
        n, est.validation_fraction, int(est.validation_gap), int(est.patience)
    )
    y_mean, y_scale = target_scaling(y[:n_fit], est.task)  # 3.
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    y32 = ((y - y_mean) / y_scale).astype(np.float32)
    X_fit, y_fit = X32[:n_fit], y32[:n_fit]
    X_val, y_val = X32[n - n_val :], y32[n - n_val :]

    batch_size = int(est.batch_size)
    rows = max(batch_size, min(EVAL_CHUNK, max(n_val, 1)))
    meta, head_off = _layout(n_features, units, gates, rows, steps)
    buf = _Buffers(rows, steps, n_features, units, gates)
    params = _flat(net)
    if params.size != head_off + units[-1] + 1:  # pragma: no cover - layout guard
        raise AssertionError("parameter layout does not match RecurrentNet")
    grads = np.zeros_like(params)
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    val_out = np.zeros(n_val, np.float32)
    code = _LOSS_CODES[loss_name]
    lr = float(est.learning_rate)
    k.seed(seed)  # dropout masks: numba's generator of this thread, which runs every epoch

    gen = torch.Generator().manual_seed(seed)  # 4. the reference's batch order
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    best, best_params, best_epoch, wait, step = math.inf, None, 0, 0, 0
    epoch = 0
    for epoch in range(1, int(est.epochs) + 1):
        perm = torch.randperm(n_fit, generator=gen).numpy()
        total, step = k.train_epoch(
            cell,
            X_fit,
            y_fit,
            perm,
            batch_size,
            params,
            grads,
            m,
            v,
            step,
            lr,
            clip,
            code,
            meta,
            head_off,
            p_drop,
            buf.fwd,
            buf.back,
            buf.scratch,
            buf.yb,
            buf.dout,
        )
        train_loss = float(np.float32(total / n_fit))
        history["train_loss"].append(train_loss)
        val_loss = None
        if n_val:  # 5.
            val_loss = float(
                np.float32(
                    k.evaluate(
                        cell,
                        X_val,
                        y_val,
                        rows,
                        params,
                        meta,
                        head_off,
                        code,
                        buf.fwd,
                        buf.scratch,
                        val_out,
                    )
                )
            )
            history["val_loss"].append(val_loss)
            if val_loss < best - est.min_delta:
                best, best_epoch, wait = val_loss, epoch, 0
                best_params = params.copy()
            else:
                wait += 1
        if est.progress is not None:
            est.progress(epoch, train_loss, val_loss)
        if n_val and wait >= est.patience:
            break
    _load(net, best_params if best_params is not None else params)
    net.eval()

    return est._fitted(
        net, torch.device("cpu"), loss_name, n_features, steps, n_fit, n_val, epoch, best_epoch,
        best, history, y_mean, y_scale, "compiled",
    )  # fmt: skip

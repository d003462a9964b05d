"""The compiled trainer's one-layer LSTM path: each mini-batch split into parts that train
on several cores at once.

A one-layer LSTM over long windows (the 240-day sequences of Fischer & Krauss) has enough
work in each mini-batch to keep every core busy: the batch's windows are cut into parts of
:data:`PART_ROWS` windows; each part's forward, loss gradient and backward through time
run as one GIL-free kernel call (:mod:`lstm_madness.models._lstm_kernels`) on a worker
thread; the parts' gradients are summed in part order and the optimizer steps once. The
split depends only on the batch size, never on the thread count, so a fit gives the same
bits on one core or many.

Everything else is the protocol of :mod:`lstm_madness.models.protocol` as in
:func:`lstm_madness.models.compiled.fit_compiled` (which uses this path by
:func:`uses_parts`): the seeded initial weights, the ``torch.randperm`` batch order, the
losses, the optimizer update, validation and early stopping. Dropout masks come from
numba's generator seeded with the fit's seed, drawn in the calling thread.

The worker threads flush float32 subnormals to zero (``torch.set_flush_denormal``, their
own floating-point state only): gradients carried back 240 steps reach the subnormal range,
where each operation costs about a hundred times more (measured: 20 times slower backward
without). A subnormal is below 1.2e-38; setting it to zero changes no figure a user reads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from lstm_madness import jit
from lstm_madness.windows import PanelWindows

__all__ = ["PART_ROWS", "PartsFit", "uses_parts"]

#: Windows per part: a part's step (a ``(4H, PART_ROWS)`` block per matrix) stays in the
#: core's L2 cache, and ``PART_ROWS`` windows amortize a BLAS call (bench sp500).
PART_ROWS = 128
#: The path is taken when ``batch_size · time_steps`` reaches this many window-steps per
#: batch; below it the thread hand-off costs more than it saves (bench compiled grid).
MIN_BATCH_STEPS = 8192
_KERNELS = "lstm_madness.models._lstm_kernels"


def uses_parts(cell: str, units: tuple[int, ...], batch_size: int, time_steps: int) -> bool:
    """Whether a compiled fit takes this path: a one-layer LSTM with at least
    :data:`MIN_BATCH_STEPS` window-steps per batch."""
    return cell == "lstm" and len(units) == 1 and batch_size * time_steps >= MIN_BATCH_STEPS


def _flush_subnormals() -> None:
    torch.set_flush_denormal(True)


class _Part:
    """Flat buffers of one part of up to :data:`PART_ROWS` windows; :meth:`views` shapes
    a prefix of each for ``nb`` windows (contiguous, as the kernels need)."""

    def __init__(self, T: int, F: int, H: int) -> None:
        self.T, self.F, self.H = T, F, H
        n, G = PART_ROWS, 4 * H
        self.xb = np.zeros(T * F * n, np.float32)
        self.A = np.zeros(T * G * n, np.float32)
        self.C = np.zeros(T * H * n, np.float32)
        self.TC = np.zeros(T * H * n, np.float32)
        self.HS = np.zeros(T * H * n, np.float32)
        self.pre = np.zeros(G * n, np.float32)
        self.DG = np.zeros(G * n, np.float32)
        self.DH = np.zeros(H * n, np.float32)
        self.DC = np.zeros(H * n, np.float32)
        self.GB = np.zeros(G * n, np.float32)
        self.GX = np.zeros(G * F * n, np.float32)
        self.dW = np.zeros((G, H), np.float32)
        self.mask = np.ones(H * n, np.float32)
        self.out = np.zeros(n, np.float32)
        self.dout = np.zeros(n, np.float32)
        self.yb = np.zeros(n, np.float32)
        self.loss = 0.0

    def views(self, nb: int) -> dict[str, np.ndarray]:
        T, F, H, G = self.T, self.F, self.H, 4 * self.H
        return {
            "xb": self.xb[: T * F * nb].reshape((T, F, nb)),
            "mask": self.mask[: H * nb].reshape((H, nb)),
            "A": self.A[: T * G * nb].reshape((T, G, nb)),
            "C": self.C[: T * H * nb].reshape((T, H, nb)),
            "TC": self.TC[: T * H * nb].reshape((T, H, nb)),
            "HS": self.HS[: T * H * nb].reshape((T, H, nb)),
            "pre": self.pre[: G * nb].reshape((G, nb)),
            "DG": self.DG[: G * nb].reshape((G, nb)),
            "DH": self.DH[: H * nb].reshape((H, nb)),
            "DC": self.DC[: H * nb].reshape((H, nb)),
            "GB": self.GB[: G * nb].reshape((G, nb)),
            "GX": self.GX[: G * F * nb].reshape((G, F, nb)),
        }


class PartsFit:
    """One network's training by parts: the methods of the compiled trainer's fit object
    (``train_epoch(perm)``, ``val_loss()``) over its weights, optimizer state and data.

    ``base`` is that fit object (:class:`lstm_madness.models.compiled._Fit`): the seeded
    weights, the split, the scaled labels, the loss code and the optimizer state are its
    own, so both paths start from the same state. Call :meth:`close` when done."""

    def __init__(self, base, threads: int) -> None:
        self.base = base
        self.k = jit.load(_KERNELS)
        T, F = base.shape
        self.H = H = int(base.units[0])
        self.F = F
        n_parts = -(-max(base.batch_size, base.rows) // PART_ROWS)
        self.parts = [_Part(T, F, H) for _ in range(n_parts)]
        self.part_grads = np.zeros((n_parts, base.params.size), np.float32)
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, min(threads, n_parts)),
            thread_name_prefix="lstm-part",
            initializer=_flush_subnormals,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _run_part(self, i: int, X: np.ndarray, y: np.ndarray, rows: np.ndarray,
                  n_total: int, train: bool) -> None:  # fmt: skip
        k, base, part = self.k, self.base, self.parts[i]
        nb = rows.shape[0]
        v = part.views(nb)
        if isinstance(X, PanelWindows):  # straight from the fold's panel
            k.gather_panel(X.values, X.ends[rows], X.cols[rows], X.time_steps, v["xb"])
        else:
            k.gather(X, rows, v["xb"])
        yb = part.yb[:nb]
        yb[:] = y[rows]
        out, dout = part.out[:nb], part.dout[:nb]
        args = (v["xb"], v["mask"], v["A"], v["C"], v["TC"], v["HS"])
        k.forward(base.params, self.F, self.H, *args, v["pre"], out)
        part.loss = base.k.loss_sum_grad(base.code, out, yb, nb, n_total, dout)
        if train:
            k.backward(
                base.params, self.F, self.H, *args, dout, v["DG"], v["DH"], v["DC"],
                v["GB"], v["GX"], part.dW, self.part_grads[i],
            )  # fmt: skip

    def _batch(self, X: np.ndarray, y: np.ndarray, rows: np.ndarray, train: bool) -> float:
        """Run the parts of one batch ``rows`` on the pool; the sum of their losses."""
        nb = rows.shape[0]
        cuts = range(0, nb, PART_ROWS)
        for i, lo in enumerate(cuts):  # masks drawn here, in the fit's thread, in order
            mask = self.parts[i].mask[: self.H * min(PART_ROWS, nb - lo)]
            if train:
                self.k.draw_mask(mask, self.base.p_drop)
            else:
                mask[:] = 1.0
        futures = [
            self.pool.submit(self._run_part, i, X, y, rows[lo : lo + PART_ROWS], nb, train)
            for i, lo in enumerate(cuts)
        ]
        for future in futures:
            future.result()
        return float(sum(self.parts[i].loss for i in range(len(futures))))

    def train_epoch(self, perm: np.ndarray) -> float:
        """Step 4 over the batches of ``perm``; the epoch's train loss."""
        base, k = self.base, self.base.k
        total, bs = 0.0, base.batch_size
        grads = base.grads
        for lo in range(0, perm.shape[0], bs):
            rows = perm[lo : lo + bs]
            nb = rows.shape[0]
            batch_loss = np.float32(self._batch(base.X_fit, base.y_fit, rows, True) / nb)
            n_parts = -(-nb // PART_ROWS)
            grads[:] = self.part_grads[0]
            for i in range(1, n_parts):
                grads += self.part_grads[i]
            base.step += 1
            if base.update == k.RMSPROP:
                k.clip_rmsprop(base.params, grads, base.v, base.lr, base.clip)
            else:
                k.clip_adam(base.params, grads, base.m, base.v, base.step, base.lr, base.clip)
            total += np.float64(batch_loss) * nb
        return float(np.float32(total / base.n_fit))

    def val_loss(self) -> float:
        """Step 5's loss over the validation tail (eval mode: no dropout)."""
        base = self.base
        n = base.n_val
        rows = np.arange(n)
        total = 0.0
        step = PART_ROWS * len(self.parts)
        for lo in range(0, n, step):
            total += self._batch(base.X_val, base.y_val, rows[lo : lo + step], False)
        return float(np.float32(total / n))

"""numba kernels of the compiled trainer's one-layer LSTM path (loaded only by
:mod:`lstm_madness.models.lstm_parts`, lazily).

One block ("part") of a mini-batch: forward through time, the loss's gradient, the
backward through time and the part's parameter gradients, in one call that releases the
GIL, so the parts of one batch run on several cores at once and their gradients are summed
in a fixed order (the result does not depend on how many threads ran them).

Layout: window-inner. Every activation of step ``t`` is a ``(rows, nb)`` matrix whose last
axis runs over the part's ``nb`` windows, so the gate arithmetic is long contiguous loops
that vectorize whatever the width, and the three matrix products of a step are BLAS
products (``W_hh h``, ``W_hhᵀ δ`` and ``δ hᵀ``); the loss and its gradient are
:func:`lstm_madness.models._kernels.loss_sum_grad`'s. Buffers per part: ``xb (T, F, nb)``
the gathered inputs; ``A (T, 4H, nb)`` the activated gates (torch order i, f, g, o);
``C``, ``TC``, ``HS`` ``(T, H, nb)`` the cell states, their tanh and the outputs.

Parameters are the flat vector of ``RecurrentNet.parameters()`` for one LSTM layer:
``weight_ih (4H, F)``, ``weight_hh (4H, H)``, ``bias_ih (4H)``, ``bias_hh (4H)``, the
head's ``weight (H)`` and ``bias (1)``. Dropout (the layer's output, of which only the last
step reaches the head) takes the mask ``mask (H, nb)`` drawn by the caller.

Sums over the windows of a part are accumulated element-wise over the steps and reduced
once, in a fixed order, at the end: a fit gives the same bits every time.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lstm_madness.models._kernels import FASTMATH, FASTMATH_BACKWARD, fast_sigmoid, fast_tanh


@njit(cache=True, nogil=True, error_model="numpy")
def _offsets(F, H):
    GH = 4 * H
    o_whh = GH * F
    o_bih = o_whh + GH * H
    o_bhh = o_bih + GH
    o_head = o_bhh + GH
    return GH, o_whh, o_bih, o_bhh, o_head


@njit(cache=True, nogil=True, error_model="numpy")
def gather(X, rows, xb):
    """``xb[t, f, b] = X[rows[b], t, f]`` for the part's ``nb = len(rows)`` windows."""
    nb = rows.shape[0]
    T, F = X.shape[1], X.shape[2]
    for b in range(nb):
        r = rows[b]
        for t in range(T):
            for f in range(F):
                xb[t, f, b] = X[r, t, f]


@njit(cache=True, nogil=True, error_model="numpy")
def gather_panel(panel, days, cols, T, xb):
    """``xb[t, f, b] = panel[days[b] - T + 1 + t, cols[b], f]``: windows read straight from
    a ``(D, S, F)`` panel (sample ``b`` ends on row ``days[b]`` of member ``cols[b]``)."""
    nb = days.shape[0]
    F = panel.shape[2]
    for b in range(nb):
        d0 = days[b] - T + 1
        s = cols[b]
        for t in range(T):
            for f in range(F):
                xb[t, f, b] = panel[d0 + t, s, f]


@njit(cache=True, nogil=True, error_model="numpy")
def draw_mask(mask, p_drop):
    """Inverted-dropout mask: each entry ``1 / (1 - p_drop)`` with probability ``1 -
    p_drop``, else 0 (all ones when ``p_drop`` is 0), from numba's generator."""
    if p_drop <= 0.0:
        mask[:] = np.float32(1.0)
        return
    keep = 1.0 - p_drop
    scale = np.float32(1.0 / keep)
    for i in range(mask.shape[0]):
        mask[i] = scale if np.random.random() < keep else np.float32(0.0)  # noqa: NPY002


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def forward(params, F, H, xb, mask, A, C, TC, HS, pre, out):
    """Forward the part's windows ``xb``; ``out[b]`` gets window ``b``'s raw output."""
    T = xb.shape[0]
    nb = xb.shape[2]
    GH, o_whh, o_bih, o_bhh, o_head = _offsets(F, H)
    Wih = params[:o_whh].reshape((GH, F))
    Whh = params[o_whh:o_bih].reshape((GH, H))
    zero = np.float32(0.0)
    for t in range(T):
        P = pre
        if t > 0:
            np.dot(Whh, HS[t - 1], P)
        else:
            P[:, :] = zero
        a = A[t]
        x = xb[t]
        for j in range(GH):
            bias = params[o_bih + j] + params[o_bhh + j]
            row = P[j]
            dst = a[j]
            for b in range(nb):
                dst[b] = row[b] + bias
            for f in range(F):
                w = Wih[j, f]
                xf = x[f]
                for b in range(nb):
                    dst[b] += w * xf[b]
        for j in range(GH):
            dst = a[j]
            if 2 * H <= j < 3 * H:
                for b in range(nb):
                    dst[b] = fast_tanh(dst[b])
            else:
                for b in range(nb):
                    dst[b] = fast_sigmoid(dst[b])
        c, tc, h = C[t], TC[t], HS[t]
        for k in range(H):
            ig, fg, gg, og = a[k], a[H + k], a[2 * H + k], a[3 * H + k]
            ck, tk, hk = c[k], tc[k], h[k]
            if t > 0:
                cp = C[t - 1, k]
                for b in range(nb):
                    ck[b] = fg[b] * cp[b] + ig[b] * gg[b]
            else:
                for b in range(nb):
                    ck[b] = ig[b] * gg[b]
            for b in range(nb):
                tk[b] = fast_tanh(ck[b])
                hk[b] = og[b] * tk[b]
    hl = HS[T - 1]
    for b in range(nb):
        out[b] = params[o_head + H]
    for k in range(H):
        w = params[o_head + k]
        hk, mk = hl[k], mask[k]
        for b in range(nb):
            out[b] += w * (hk[b] * mk[b])


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH_BACKWARD)
def backward(params, F, H, xb, mask, A, C, TC, HS, dout, DG, DH, DC, GB, GX, dW, grads):
    """The part's gradients into ``grads`` (overwritten) from the activations stored by
    :func:`forward` and ``dout``. Scratch: ``DG (4H, nb)`` the step's gate gradients,
    ``DH``/``DC (H, nb)`` the gradient reaching the step's output and cell state, ``GB
    (4H, nb)`` and ``GX (4H, F, nb)`` the per-window sums of the bias and input-weight
    gradients, ``dW (4H, H)`` one step's recurrent-weight gradient."""
    T = xb.shape[0]
    nb = xb.shape[2]
    GH, o_whh, o_bih, o_bhh, o_head = _offsets(F, H)
    Whh = params[o_whh:o_bih].reshape((GH, H))
    gWhh = grads[o_whh:o_bih].reshape((GH, H))
    zero = np.float32(0.0)
    one = np.float32(1.0)
    grads[:] = zero
    GB[:, :] = zero
    GX[:, :, :] = zero
    DC[:, :] = zero
    _head_backward(params, o_head, H, HS[T - 1], mask, dout, DH, grads)
    for t in range(T - 1, -1, -1):
        a, tc = A[t], TC[t]
        for k in range(H):
            ig, fg, gg, og = a[k], a[H + k], a[2 * H + k], a[3 * H + k]
            tk, dh, dc = tc[k], DH[k], DC[k]
            di, df, dg, do = DG[k], DG[H + k], DG[2 * H + k], DG[3 * H + k]
            # one output per loop: few pointers, so LLVM's alias checks allow vectors
            for b in range(nb):
                dc[b] += dh[b] * og[b] * (one - tk[b] * tk[b])
            for b in range(nb):
                do[b] = dh[b] * tk[b] * (og[b] * (one - og[b]))
            for b in range(nb):
                di[b] = dc[b] * gg[b] * (ig[b] * (one - ig[b]))
            if t > 0:
                cp = C[t - 1, k]
                for b in range(nb):
                    df[b] = dc[b] * cp[b] * (fg[b] * (one - fg[b]))
            else:
                df[:] = zero
            for b in range(nb):
                dg[b] = dc[b] * ig[b] * (one - gg[b] * gg[b])
            for b in range(nb):
                dc[b] *= fg[b]
        x = xb[t]
        for j in range(GH):
            dj, gb = DG[j], GB[j]
            for b in range(nb):
                gb[b] += dj[b]
            for f in range(F):
                gx, xf = GX[j, f], x[f]
                for b in range(nb):
                    gx[b] += dj[b] * xf[b]
        if t > 0:
            np.dot(DG, HS[t - 1].T, dW)
            for j in range(GH):
                for k in range(H):
                    gWhh[j, k] += dW[j, k]
            np.dot(Whh.T, DG, DH)
    _reduce_over_windows(GB, GX, o_bih, o_bhh, grads)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH_BACKWARD)
def _head_backward(params, o_head, H, hl, mask, dout, DH, grads):
    """The head's gradients into ``grads`` and the gradient reaching the last step's
    output into ``DH``."""
    nb = dout.shape[0]
    s = np.float32(0.0)
    for b in range(nb):
        s += dout[b]
    grads[o_head + H] = s
    for k in range(H):
        w = params[o_head + k]
        hk, mk, dk = hl[k], mask[k], DH[k]
        s = np.float32(0.0)
        for b in range(nb):
            s += dout[b] * hk[b] * mk[b]
            dk[b] = w * mk[b] * dout[b]
        grads[o_head + k] = s


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH_BACKWARD)
def _reduce_over_windows(GB, GX, o_bih, o_bhh, grads):
    """The bias and input-weight gradients: the per-window sums summed over the windows,
    in window order."""
    GH, F, nb = GX.shape
    for j in range(GH):
        s = np.float32(0.0)
        gb = GB[j]
        for b in range(nb):
            s += gb[b]
        grads[o_bih + j] = s
        grads[o_bhh + j] = s
        for f in range(F):
            s = np.float32(0.0)
            gx = GX[j, f]
            for b in range(nb):
                s += gx[b]
            grads[j * F + f] = s

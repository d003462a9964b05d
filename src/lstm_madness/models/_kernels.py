"""numba kernels of :mod:`lstm_madness.models.compiled` (loaded only by it, lazily).

One network's training step as plain loops (and BLAS products for wide layers) over
preallocated float32 buffers: a stacked LSTM/GRU forward that stores its activations, a
head, the loss and its gradient, a hand-written backward through time, global-norm
clipping and Adam or RMSprop — one call per epoch.

Layouts. Parameters live in one flat float32 vector in ``RecurrentNet.parameters()`` order:
per layer ``weight_ih (G·H, n_in)``, ``weight_hh (G·H, H)``, ``bias_ih (G·H)``, ``bias_hh
(G·H)`` (torch gate order: LSTM i, f, g, o; GRU r, z, n), then the head's ``weight (1, H)``
and ``bias (1)``. ``meta[l] = (I_l, H_l, offset of weight_ih_l, offset of layer l in the
activation buffers)``; activation buffers are flat and step-major, layer ``l`` holding
``(T, nb, H_l)`` for a batch of ``nb`` windows (``(T, nb, G·H_l)`` for the gate buffer, at
``G ×`` the offset), so one step of every window is a contiguous matrix.

Cells (torch's formulation): LSTM ``c' = f·c + i·g``, ``h' = o·tanh(c')``; GRU
``n = tanh(W_in x + b_in + r·(W_hn h + b_hn))``, ``h' = (1 − z)·n + z·h``.

Losses: 0 = mse, 1 = huber (delta 1), 2 = bce with logits; each the mean over the batch.
Inner products are summed with ``fastmath`` reassociation (vectorized) or by BLAS, so sums
differ from torch's in the last float32 bits; a fit gives the same bits every time.

Every kernel is compiled ``nogil``: fits in concurrent Python threads run in parallel.
numba's ``np.random`` state is per thread, so :func:`seed` and the :func:`train_epoch` calls
of one fit must run in the same thread.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lstm_madness.models.optimizer import BETA1, BETA2, CLIP_EPS, EPS, RMS_EPS, RMS_RHO

# Every kernel uses ``error_model="numpy"``: a float division by zero gives inf/nan instead
# of raising, so numba emits no zero check, and loops that divide (the activations, Adam)
# vectorize.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
#: The backward without reassociation: it has no inner product to vectorize, and with it
#: LLVM reorders the gradient accumulations in a way that depends on where the buffers lie
#: in memory (the same fit then differs between runs in the last bits).
FASTMATH_BACKWARD = {"contract", "nsz", "arcp"}

LSTM, GRU = 0, 1
MSE, HUBER, BCE = 0, 1, 2
ADAM, RMSPROP = 0, 1


#: tanh as ``x·P(x²)/Q(x²)`` on ``x`` clamped to ±``_TANH_CLAMP`` (beyond it float32 tanh is
#: ±1 to within 3e-7): a rational fit of relative error on [0, 7.905] by Lawson-weighted
#: least squares (float64 maximum error 1.7e-9). Evaluated in float32 its error is at most
#: 3.1e-7 absolute, 3.1e-7 relative (``tests/models/test_compiled.py``). It has no library
#: call, so LLVM vectorizes the gate loops (numba has no vector ``exp``/``tanh`` without
#: SVML).
_TANH_CLAMP = 7.90531110763549805
_TANH_P = (
    9.99999991e-01,
    1.31238148e-01,
    3.14880910e-03,
    1.16379493e-05,
    -2.23060915e-08,
    6.36819296e-11,
    -1.15945340e-13,
)
_TANH_Q = (1.0, 4.64571446e-01, 2.46726712e-02, 2.61223902e-04)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def fast_tanh(x):
    x = min(max(x, np.float32(-_TANH_CLAMP)), np.float32(_TANH_CLAMP))
    s = x * x
    num = np.float32(_TANH_P[6])
    for i in range(5, -1, -1):
        num = num * s + np.float32(_TANH_P[i])
    den = np.float32(_TANH_Q[3])
    for i in range(2, -1, -1):
        den = den * s + np.float32(_TANH_Q[i])
    return x * num / den


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def fast_sigmoid(x):
    """The logistic function as ``(1 + tanh(x/2)) / 2``: within 1.8e-7 of it."""
    return np.float32(0.5) + np.float32(0.5) * fast_tanh(np.float32(0.5) * x)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _layer(meta, layer, G):
    """Layer ``layer``'s inputs, units and gate rows (``G`` gates), the offsets of its
    ``weight_ih``, ``weight_hh``, ``bias_ih`` and ``bias_hh`` in the flat parameters, and
    its offset in the activation buffers."""
    n_in, H, po, ao = meta[layer, 0], meta[layer, 1], meta[layer, 2], meta[layer, 3]
    GH = G * H
    o_whh = po + GH * n_in
    o_bih = o_whh + GH * H
    return n_in, H, GH, po, o_whh, o_bih, o_bih + GH, ao


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def forward(cell, X, rows, nb, params, meta, head_off, p_drop, train, buf, scratch):
    """Forward ``nb`` windows ``X[rows[:nb]]`` (T, F each); return the raw outputs (nb,).

    ``buf = (xb, A, C, NH, Hraw, Hd, M, out)`` (all flat, step-major: row ``t·nb + b`` is
    window ``b`` at step ``t``): the gathered input ``(T, nb, F)``; per layer the activated
    gates, LSTM cell states, GRU ``W_hn h + b_hn``, raw outputs, outputs after dropout and
    the dropout masks (drawn from numba's own generator when ``train`` and ``p_drop > 0``);
    the outputs ``(nb,)``. Layers of :data:`BLAS_MIN_UNITS` units or more, in batches of
    :data:`BLAS_MIN_BATCH` windows or more, take their input projection (all steps) and
    each step's recurrent product as BLAS products; the others run as loops.
    """
    xb, A, C, NH, Hraw, Hd, M, out = buf
    T = X.shape[1]
    F = X.shape[2]
    for b in range(nb):
        r = rows[b]
        for t in range(T):
            for f in range(F):
                xb[(t * nb + b) * F + f] = X[r, t, f]
    G = 4 if cell == LSTM else 3
    L = meta.shape[0]
    keep = 1.0 - p_drop
    scale = np.float32(1.0 / (1.0 - p_drop))
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for layer in range(L):
        n_in, H, GH, po, o_whh, o_bih, o_bhh, ao = _layer(meta, layer, G)
        if layer == 0:
            src, sao = xb, 0
        else:
            src, sao = Hd, meta[layer - 1, 3]
        blas = H >= BLAS_MIN_UNITS and nb >= BLAS_MIN_BATCH
        gx = scratch[0:GH]
        gh = scratch[GH : 2 * GH]
        # this step's W_hh h_{t-1} of every window (BLAS path)
        GHB = scratch[2 * GH : 2 * GH + nb * GH].reshape((nb, GH))
        # 2-d views indexed by loop variables only: the inner products vectorize
        Wih = params[po:o_whh].reshape((GH, n_in))
        Whh = params[o_whh:o_bih].reshape((GH, H))
        bih = params[o_bih:o_bhh]
        bhh = params[o_bhh : o_bhh + GH]
        if blas:  # the input projection of every window and step: A holds x W_ihᵀ
            R = T * nb
            x_rows = src[sao : sao + R * n_in].reshape((R, n_in))
            np.dot(x_rows, Wih.T, A[G * ao : G * ao + R * GH].reshape((R, GH)))
        for t in range(T):
            if blas and t > 0:
                prev = Hraw[ao + (t - 1) * nb * H : ao + t * nb * H].reshape((nb, H))
                np.dot(prev, Whh.T, GHB)
            for b in range(nb):
                hbase = ao + (t * nb + b) * H
                pbase = hbase - nb * H
                abase = G * ao + (t * nb + b) * GH
                if blas:
                    for j in range(GH):
                        gx[j] = A[abase + j] + bih[j]
                        gh[j] = (GHB[b, j] if t > 0 else zero) + bhh[j]
                else:
                    sbase = sao + (t * nb + b) * n_in
                    xs = src[sbase : sbase + n_in]
                    hp = Hraw[pbase : pbase + H]
                    for j in range(GH):
                        s = params[o_bih + j]
                        for k in range(n_in):
                            s += Wih[j, k] * xs[k]
                        gx[j] = s
                        s2 = params[o_bhh + j]
                        if t > 0:
                            for k in range(H):
                                s2 += Whh[j, k] * hp[k]
                        gh[j] = s2
                if cell == LSTM:
                    # loops over at most three arrays each, so that LLVM vectorizes them
                    a = A[abase : abase + GH]  # gate pre-activations, then activations
                    for j in range(GH):
                        a[j] = gx[j] + gh[j]
                    for j in range(2 * H):
                        a[j] = fast_sigmoid(a[j])  # i, f
                    for j in range(2 * H, 3 * H):
                        a[j] = fast_tanh(a[j])  # g
                    for j in range(3 * H, GH):
                        a[j] = fast_sigmoid(a[j])  # o
                    c_t = C[hbase : hbase + H]
                    if t > 0:
                        c_p = C[pbase : pbase + H]
                        for k in range(H):
                            c_t[k] = a[H + k] * c_p[k] + a[k] * a[2 * H + k]
                    else:
                        for k in range(H):
                            c_t[k] = a[k] * a[2 * H + k]
                    h_t = Hraw[hbase : hbase + H]
                    for k in range(H):
                        h_t[k] = a[3 * H + k] * fast_tanh(c_t[k])
                else:
                    for k in range(H):
                        r = fast_sigmoid(gx[k] + gh[k])
                        z = fast_sigmoid(gx[H + k] + gh[H + k])
                        n_ = fast_tanh(gx[2 * H + k] + r * gh[2 * H + k])
                        hp_k = Hraw[pbase + k] if t > 0 else zero
                        Hraw[hbase + k] = (one - z) * n_ + z * hp_k
                        NH[hbase + k] = gh[2 * H + k]
                        A[abase + k] = r
                        A[abase + H + k] = z
                        A[abase + 2 * H + k] = n_
                if train and p_drop > 0.0:
                    for k in range(H):
                        m = scale if np.random.random() < keep else zero  # noqa: NPY002 (numba)
                        M[hbase + k] = m
                        Hd[hbase + k] = Hraw[hbase + k] * m
                else:
                    for k in range(H):
                        M[hbase + k] = one
                        Hd[hbase + k] = Hraw[hbase + k]
    # head on the last step of the last layer
    H, ao = meta[L - 1, 1], meta[L - 1, 3]
    for b in range(nb):
        base = ao + ((T - 1) * nb + b) * H
        s = params[head_off + H]
        for k in range(H):
            s += params[head_off + k] * Hd[base + k]
        out[b] = s
    return out[:nb]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def loss_sum_grad(kind, out, yb, nb, n_total, dout):
    """Sum of the per-row loss of ``out[:nb]`` vs ``yb[:nb]`` (mse, huber delta 1, bce with
    logits); ``dout[:nb]`` gets d(mean loss)/d out for a batch of ``n_total`` rows (the
    rows may be one part of it: :mod:`~lstm_madness.models.compiled_lstm`)."""
    total = 0.0
    inv = np.float32(1.0 / n_total)
    for b in range(nb):
        d = out[b] - yb[b]
        if kind == MSE:
            total += d * d
            dout[b] = np.float32(2.0) * d * inv
        elif kind == HUBER:
            ad = abs(d)
            if ad < 1.0:
                total += 0.5 * d * d
                dout[b] = d * inv
            else:
                total += ad - 0.5
                dout[b] = (np.float32(1.0) if d > 0 else np.float32(-1.0)) * inv
        else:
            x = np.float64(out[b])
            total += max(x, 0.0) - x * yb[b] + math.log1p(math.exp(-abs(x)))
            dout[b] = (fast_sigmoid(out[b]) - yb[b]) * inv
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def loss_grad(kind, out, yb, nb, dout):
    """Mean loss of ``out`` vs ``yb`` over ``nb`` rows; ``dout`` gets d(mean loss)/d out."""
    return loss_sum_grad(kind, out, yb, nb, nb, dout) / nb


#: Layers at least this wide, in batches of at least :data:`BLAS_MIN_BATCH` windows, run
#: their matrix products as BLAS calls: the input projection of all steps, each step's
#: recurrent product (forward) and the gradient reaching the previous step (backward), and
#: the weight gradients over all windows and steps. Smaller ones keep the loops (there a
#: BLAS call costs more than the work it does).
BLAS_MIN_UNITS = 16
BLAS_MIN_BATCH = 8


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH_BACKWARD)
def backward(cell, nb, T, params, grads, meta, head_off, buf, back, scratch):
    """Gradients of the batch's mean loss into ``grads`` (overwritten) from the activations
    stored by :func:`forward`, given ``dout = d loss / d out`` in ``buf[7]`` (see
    :func:`train_epoch`). ``back = (DH, DGX, DGH)``: ``DH`` is flat like ``Hraw``, d loss /
    d (dropped) output of each layer; ``DGX``/``DGH`` (flat like ``A``) keep each window's
    and step's gate gradients for the BLAS path (:data:`BLAS_MIN_UNITS`,
    :data:`BLAS_MIN_BATCH`): there the gradient reaching the previous step's output and the
    weight gradients are BLAS products over the windows (and steps)."""
    xb, A, C, NH, Hraw, Hd, M, dout = buf
    DH, DGX, DGH, DHN_, DCN_, PRODUCT_ = back
    grads[:] = 0.0
    DH[:] = 0.0
    G = 4 if cell == LSTM else 3
    L = meta.shape[0]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    H, ao = meta[L - 1, 1], meta[L - 1, 3]
    for b in range(nb):
        base = ao + ((T - 1) * nb + b) * H
        g = dout[b]
        grads[head_off + H] += g
        for k in range(H):
            grads[head_off + k] += g * Hd[base + k]
            DH[base + k] = g * params[head_off + k]
    for layer in range(L - 1, -1, -1):
        n_in, H, GH, po, o_whh, o_bih, o_bhh, ao = _layer(meta, layer, G)
        blas = H >= BLAS_MIN_UNITS and nb >= BLAS_MIN_BATCH
        if layer == 0:
            src, sao = xb, 0
        else:
            src, sao = Hd, meta[layer - 1, 3]
        Wih = params[po:o_whh].reshape((GH, n_in))
        Whh = params[o_whh:o_bih].reshape((GH, H))
        dWih = grads[po:o_whh].reshape((GH, n_in))
        dWhh = grads[o_whh:o_bih].reshape((GH, H))
        # per window: the gradient reaching its previous step's output and cell state
        DHN = DHN_[: nb * H].reshape((nb, H))
        DCN = DCN_[: nb * H].reshape((nb, H))
        product = PRODUCT_[: nb * H].reshape((nb, H))
        DHN[:, :] = 0.0
        DCN[:, :] = 0.0
        for t in range(T - 1, -1, -1):
            for b in range(nb):
                hbase = ao + (t * nb + b) * H
                pbase = hbase - nb * H
                abase = G * ao + (t * nb + b) * GH
                dhn = DHN[b]
                dcn = DCN[b]
                if blas:  # this step's gate gradients stay in place for the products
                    dgx = DGX[abase : abase + GH]
                    dgh = DGH[abase : abase + GH]
                else:
                    dgx = scratch[0:GH]
                    dgh = scratch[GH : 2 * GH]
                if cell == LSTM:
                    for k in range(H):
                        dh = DH[hbase + k] * M[hbase + k] + dhn[k]
                        ig = A[abase + k]
                        fg = A[abase + H + k]
                        gg = A[abase + 2 * H + k]
                        og = A[abase + 3 * H + k]
                        tc = fast_tanh(C[hbase + k])
                        cp = C[pbase + k] if t > 0 else zero
                        dc = dh * og * (one - tc * tc) + dcn[k]
                        dcn[k] = dc * fg
                        dgx[k] = dc * gg * ig * (one - ig)
                        dgx[H + k] = dc * cp * fg * (one - fg)
                        dgx[2 * H + k] = dc * ig * (one - gg * gg)
                        dgx[3 * H + k] = dh * tc * og * (one - og)
                        dhn[k] = zero
                    for j in range(GH):
                        dgh[j] = dgx[j]
                else:
                    for k in range(H):
                        dh = DH[hbase + k] * M[hbase + k] + dhn[k]
                        r = A[abase + k]
                        z = A[abase + H + k]
                        n_ = A[abase + 2 * H + k]
                        hp_k = Hraw[pbase + k] if t > 0 else zero
                        dpn = dh * (one - z) * (one - n_ * n_)
                        dz = dh * (hp_k - n_) * z * (one - z)
                        dr = dpn * NH[hbase + k] * r * (one - r)
                        dgx[k] = dr
                        dgx[H + k] = dz
                        dgx[2 * H + k] = dpn
                        dgh[k] = dr
                        dgh[H + k] = dz
                        dgh[2 * H + k] = dpn * r
                        dhn[k] = dh * z
                if blas:
                    continue
                sbase = sao + (t * nb + b) * n_in
                xs = src[sbase : sbase + n_in]
                for j in range(GH):
                    gj = dgx[j]
                    grads[o_bih + j] += gj
                    grads[o_bhh + j] += dgh[j]
                    for k in range(n_in):
                        dWih[j, k] += gj * xs[k]
                if layer > 0:
                    dxs = DH[sbase : sbase + n_in]
                    for j in range(GH):
                        gj = dgx[j]
                        for k in range(n_in):
                            dxs[k] += gj * Wih[j, k]
                if t > 0:
                    hp = Hraw[pbase : pbase + H]
                    for j in range(GH):
                        gj = dgh[j]
                        for k in range(H):
                            dWhh[j, k] += gj * hp[k]
                            dhn[k] += gj * Whh[j, k]
            if blas and t > 0:  # d loss / d h_{t-1} of every window: one product
                step = DGH[G * ao + t * nb * GH : G * ao + (t + 1) * nb * GH].reshape((nb, GH))
                np.dot(step, Whh, product)
                DHN += product  # GRU: on top of the direct term dh·z
        if blas:  # the batch's weight gradients as products over its rows (windows x steps)
            R = nb * T
            dgx_rows = DGX[G * ao : G * ao + R * GH].reshape((R, GH))
            dgh_rows = DGH[G * ao : G * ao + R * GH].reshape((R, GH))
            x_rows = src[sao : sao + R * n_in].reshape((R, n_in))
            dWih += np.dot(dgx_rows.T, x_rows)
            if T > 1:  # steps 1 … T-1 against the outputs of steps 0 … T-2
                Rp = nb * (T - 1)
                dWhh += np.dot(dgh_rows[nb:].T, Hraw[ao : ao + Rp * H].reshape((Rp, H)))
            for i in range(R):
                for j in range(GH):
                    grads[o_bih + j] += dgx_rows[i, j]
                    grads[o_bhh + j] += dgh_rows[i, j]
            if layer > 0:
                DH[sao : sao + R * n_in] += np.dot(dgx_rows, Wih).reshape(R * n_in)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def clip_adam(params, grads, m, v, step, lr, clip):
    """Global-norm clipping to ``clip`` (``clip <= 0``: none), then Adam step number
    ``step``: the update of :mod:`lstm_madness.models.optimizer`, in place."""
    if clip > 0.0:
        sq = 0.0
        for i in range(grads.shape[0]):
            sq += np.float64(grads[i]) * grads[i]
        coef = clip / (math.sqrt(sq) + CLIP_EPS)
        if coef < 1.0:
            c32 = np.float32(coef)
            for i in range(grads.shape[0]):
                grads[i] *= c32
    bc1 = 1.0 - BETA1**step
    bc2 = 1.0 - BETA2**step
    step_size = np.float32(lr / bc1)
    bc2_sqrt = np.float32(math.sqrt(bc2))
    eps = np.float32(EPS)
    b1c = np.float32(1.0 - BETA1)
    b2 = np.float32(BETA2)
    b2c = np.float32(1.0 - BETA2)
    for i in range(params.shape[0]):
        g = grads[i]
        m[i] += b1c * (g - m[i])
        v[i] = b2 * v[i] + b2c * g * g
        params[i] -= step_size * m[i] / (np.sqrt(v[i]) / bc2_sqrt + eps)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def clip_rmsprop(params, grads, v, lr, clip):
    """Global-norm clipping to ``clip`` (``clip <= 0``: none), then one RMSprop step: the
    update of :mod:`lstm_madness.models.optimizer`, in place (the clipping as
    :func:`clip_adam`)."""
    if clip > 0.0:
        sq = 0.0
        for i in range(grads.shape[0]):
            sq += np.float64(grads[i]) * grads[i]
        coef = clip / (math.sqrt(sq) + CLIP_EPS)
        if coef < 1.0:
            c32 = np.float32(coef)
            for i in range(grads.shape[0]):
                grads[i] *= c32
    lr32 = np.float32(lr)
    eps = np.float32(RMS_EPS)
    rho = np.float32(RMS_RHO)
    rhoc = np.float32(1.0 - RMS_RHO)
    for i in range(params.shape[0]):
        g = grads[i]
        v[i] = rho * v[i] + rhoc * g * g
        params[i] -= lr32 * g / (np.sqrt(v[i]) + eps)


@njit(cache=True, nogil=True, error_model="numpy")
def seed(s):
    """Seed numba's own generator (dropout masks)."""
    np.random.seed(s)  # noqa: NPY002 (numba has only the legacy API)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def train_epoch(
    cell,
    X,
    y,
    perm,
    batch_size,
    params,
    grads,
    m,
    v,
    step,
    lr,
    clip,
    loss_kind,
    meta,
    head_off,
    p_drop,
    buf,
    back,
    scratch,
    yb,
    dout,
    update=ADAM,
):
    """One epoch of mini-batches ``perm[i:i + batch_size]`` (forward, loss, backward, clip,
    Adam, or RMSprop when ``update == RMSPROP``); returns ``(sum over batches of mean loss ×
    batch rows, optimizer steps so far)``."""
    n = perm.shape[0]
    T = X.shape[1]
    total = 0.0
    out = buf[7]
    bbuf = (buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], dout)
    for i in range(0, n, batch_size):
        nb = min(batch_size, n - i)
        rows = perm[i : i + nb]
        for b in range(nb):
            yb[b] = y[rows[b]]
        forward(cell, X, rows, nb, params, meta, head_off, p_drop, True, buf, scratch)
        batch_loss = np.float32(loss_grad(loss_kind, out, yb, nb, dout))
        backward(cell, nb, T, params, grads, meta, head_off, bbuf, back, scratch)
        step += 1
        if update == RMSPROP:
            clip_rmsprop(params, grads, v, lr, clip)
        else:
            clip_adam(params, grads, m, v, step, lr, clip)
        total += np.float64(batch_loss) * nb
    return total, step


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def evaluate(cell, X, y, chunk, params, meta, head_off, loss_kind, buf, scratch, outs):
    """Mean loss over all of ``X``/``y`` in eval mode (no dropout), forward in chunks of
    ``chunk`` rows; ``outs`` (n,) receives the raw outputs."""
    n = X.shape[0]
    rows = np.arange(n)
    for i in range(0, n, chunk):
        nb = min(chunk, n - i)
        o = forward(cell, X, rows[i : i + nb], nb, params, meta, head_off, 0.0, False, buf, scratch)
        outs[i : i + nb] = o
    dummy = np.empty(n, np.float32)
    if n == 0:
        return 0.0
    return loss_grad(loss_kind, outs, y, n, dummy)

"""The batched engine's network: ``M`` same-shape recurrent nets as one batched computation.

:class:`NetworkStack` holds the parameters of ``M`` nets of one architecture (:class:`Arch`,
read from ``RecurrentNet``-like modules by :func:`arch_of`) in one ``(M, P)`` buffer; the
per-tensor parameters are views into it, so clipping and Adam are a handful of
whole-buffer operations per step. Its forward pass is a hand-written LSTM/GRU cell with
batched matmuls, so one kernel launch serves ``M`` models. Activations are feature-major,
``(M, G·H, B)``, so every gate is a dense block per model; :func:`stack_data` and
:func:`gather` put the models' windows on the device and in that layout. The LSTM layer has a
hand-written backward (one autograd node per layer, the recurrent weight gradient as one
matmul over all steps, buffers reused between steps); the GRU layer uses autograd. Gate
orders and equations are those of ``nn.LSTM`` / ``nn.GRU``.

The training loop that drives it is :mod:`lstm_madness.models.batched`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lstm_madness.errors import ConfigError, DataError

__all__ = ["Arch", "NetworkStack", "arch_of", "dropout_masks", "gather", "stack_data"]

# --------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class Arch:
    """The shape shared by the nets of a stack, and their parameters' flat layout."""

    cell: str  # "lstm" | "gru"
    n_features: int
    units: tuple[int, ...]
    dropout: float
    names: tuple[str, ...]  # parameter names in the flat layout
    shapes: tuple[tuple[int, ...], ...]

    @property
    def gates(self) -> int:
        return 4 if self.cell == "lstm" else 3

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)


def arch_of(net: nn.Module) -> Arch:
    """The architecture of a ``RecurrentNet``-like module (raises :class:`ConfigError`)."""
    rnns = getattr(net, "rnns", None)
    head = getattr(net, "head", None)
    if rnns is None or not isinstance(head, nn.Linear) or len(rnns) == 0:
        raise ConfigError("train_many needs RecurrentNet-like modules (rnns, dropout, head)")
    kinds = {type(r) for r in rnns}
    if kinds not in ({nn.LSTM}, {nn.GRU}):
        raise ConfigError(f"unsupported recurrent layers {sorted(k.__name__ for k in kinds)}")
    names: list[str] = []
    for i, rnn in enumerate(rnns):
        if rnn.num_layers != 1 or rnn.bidirectional or not rnn.bias or not rnn.batch_first:
            raise ConfigError("each recurrent layer must be 1-layer, unidirectional, biased")
        names += [f"rnns.{i}.{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    names += ["head.weight", "head.bias"]
    shapes = tuple(tuple(net.get_parameter(n).shape) for n in names)
    drop = getattr(net, "dropout", None)
    return Arch(
        cell="lstm" if nn.LSTM in kinds else "gru",
        n_features=rnns[0].input_size,
        units=tuple(r.hidden_size for r in rnns),
        dropout=float(drop.p) if isinstance(drop, nn.Dropout) else 0.0,
        names=tuple(names),
        shapes=shapes,
    )


# ------------------------------------------------------------------------ batched network


class NetworkStack:
    """Parameters of M nets in one (M, P) buffer, and the batched forward pass."""

    def __init__(self, arch: Arch, nets: Sequence[nn.Module], device: torch.device) -> None:
        self.arch = arch
        self.M = len(nets)
        with torch.no_grad():
            rows = [
                torch.cat([net.get_parameter(n).detach().reshape(-1) for n in arch.names])
                for net in nets
            ]
            self.flat = torch.stack(rows).to(device=device, dtype=torch.float32).contiguous()
        self.params: list[torch.Tensor] = []
        self.spans: list[tuple[int, int]] = []
        offset = 0
        for shape in arch.shapes:
            k = math.prod(shape)
            view = self.flat[:, offset : offset + k].view(self.M, *shape)
            self.params.append(view.requires_grad_(True))  # leaf views into flat
            self.spans.append((offset, offset + k))
            offset += k
        self._compiled: dict[str, Callable] = {}
        #: per-layer reusable buffers; None under torch.compile (it plans its own memory)
        self.ws: list[_Workspace] | None = [_Workspace() for _ in arch.units]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only the models on ``rows`` (a 1-D index tensor)."""
        self.flat = self.flat.index_select(0, rows)
        self.M = len(rows)
        self.params = [
            self.flat[:, a:b].view(self.M, *shape).requires_grad_(True)
            for (a, b), shape in zip(self.spans, self.arch.shapes, strict=True)
        ]

    def write_back(self, nets: Sequence[nn.Module], flat: torch.Tensor) -> None:
        with torch.no_grad():
            for m, net in enumerate(nets):
                for name, shape, (a, b) in zip(
                    self.arch.names, self.arch.shapes, self.spans, strict=True
                ):
                    net.get_parameter(name).copy_(flat[m, a:b].view(shape))

    def loss_fn(self, loss: str) -> Callable:
        """``f(x (M, F, T·B), y (M, B), w (M, B), T, drop) -> (M,)``: each model's loss,
        ``Σ_b w[m, b] · loss(out[m, b], y[m, b])``."""

        def per_model(x, y, w, T, drop):
            return (_row_loss(self.forward(x, T, drop), y, loss) * w).sum(1)

        return per_model

    def compiled_loss(self, loss: str) -> Callable:
        self.ws = None
        if loss not in self._compiled:
            self._compiled[loss] = torch.compile(self.loss_fn(loss), dynamic=False, fullgraph=True)
        return self._compiled[loss]

    def forward(
        self, x: torch.Tensor, T: int, drop: Sequence[torch.Tensor | None] | None = None
    ) -> torch.Tensor:
        """x: (M, F, T·B), column t·B + b = step t of sample b → predictions (M, B).

        Feature-major layout: every gate is a contiguous (H, B) block per model, so the
        elementwise work runs on dense memory. ``drop[l]`` multiplies layer l's output
        ((M, H, T·B), or (M, H, B) for the last layer, which only feeds its last step).
        """
        M = x.shape[0]
        B = x.shape[2] // T
        # x may hold only the first M models (the others have no batch at this step)
        p = self.params if M == self.M else [q[:M] for q in self.params]
        n_layers = len(self.arch.units)
        seq = h = x
        if self.arch.cell == "gru":
            layer_fn = self._gru_layer
        else:  # the hand-written backward is faster in eager mode; dynamo cannot trace it
            layer_fn = _lstm_layer if self.ws is not None else self._lstm_layer_autograd
        for layer, H in enumerate(self.arch.units):
            w_ih, w_hh, b_ih, b_hh = p[4 * layer : 4 * layer + 4]
            last = layer == n_layers - 1
            ws = self.ws[layer] if self.ws else None
            h, seq = layer_fn(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, not last, ws)
            d = drop[layer] if drop is not None else None
            if d is not None:
                if last:
                    h = h * d
                else:
                    seq = seq * d  # (M, H, T·B)
        w_head, b_head = p[-2], p[-1]  # (M, 1, H), (M, 1)
        out = torch.baddbmm(b_head.unsqueeze(2), w_head, h)  # (M, 1, B)
        return out.squeeze(1)

    @staticmethod
    def _lstm_layer_autograd(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, keep, ws=None):
        # the same layer in plain differentiable ops: what torch.compile traces and fuses
        # gate order i, f, g, o as in nn.LSTM; unbind/chunk (not slicing) keep the backward
        # free of full-size zero-filled gradient buffers
        xp = torch.baddbmm((b_ih + b_hh).unsqueeze(2), w_ih, seq)  # (M, 4H, T·B)
        xs = xp.view(M, 4 * H, T, B).unbind(2)  # T × (M, 4H, B)
        outs: list[torch.Tensor] = []
        h = c = xs[0]  # placeholders, set at t = 0
        for t in range(T):
            gates = xs[0] if t == 0 else torch.baddbmm(xs[t], w_hh, h)  # (M, 4H, B)
            i, f, g, o = gates.chunk(4, dim=1)  # 4 × (M, H, B)
            i, g, o = torch.sigmoid(i), torch.tanh(g), torch.sigmoid(o)
            c = i * g if t == 0 else torch.addcmul(torch.sigmoid(f) * c, i, g)
            h = o * torch.tanh(c)  # (M, H, B)
            if keep:
                outs.append(h)
        return h, (torch.cat(outs, dim=2) if keep else None)  # (M, H, B), (M, H, T·B)

    @staticmethod
    def _gru_layer(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, keep, ws=None):
        # gate order r, z, n as in nn.GRU; b_hn sits inside r * (W_hn h + b_hn)
        xp = torch.baddbmm(b_ih.unsqueeze(2), w_ih, seq)  # (M, 3H, T·B)
        xs = xp.view(M, 3 * H, T, B).unbind(2)  # T × (M, 3H, B)
        bh = b_hh.unsqueeze(2)  # (M, 3H, 1)
        outs: list[torch.Tensor] = []
        h = xs[0]  # placeholder, set at t = 0
        for t in range(T):
            hp = bh if t == 0 else torch.baddbmm(bh, w_hh, h)  # (M, 3H, B|1)
            x_rz, x_n = xs[t].split([2 * H, H], dim=1)
            h_rz, h_n = hp.split([2 * H, H], dim=1)
            r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=1)  # (M, H, B)
            n = torch.tanh(torch.addcmul(x_n, r, h_n))
            h = n - n * z if t == 0 else torch.addcmul(n, h - n, z)  # (h - n)·z + n
            if keep:
                outs.append(h)
        return h, (torch.cat(outs, dim=2) if keep else None)  # (M, H, B), (M, H, T·B)


def _lstm_layer(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, keep, ws=None):
    """One LSTM layer over (M, F, T·B) → last hidden state (M, H, B) and, with ``keep``,
    the whole output sequence (M, H, T·B)."""
    h_last, out_seq = _LSTMLayer.apply(seq, w_ih, w_hh, b_ih, b_hh, T, keep, ws)
    return h_last, (out_seq if keep else None)


_sigmoid_bwd = torch.ops.aten.sigmoid_backward.grad_input
_tanh_bwd = torch.ops.aten.tanh_backward.grad_input


class _Workspace:
    """One layer's buffers, reused from one training step to the next (fresh large
    allocations cost page faults on every step). Only for strictly sequential use: a
    forward's buffers are overwritten by the next forward, so its backward must come first.
    """

    def __init__(self) -> None:
        self._bufs: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, like: torch.Tensor, *shape: int) -> torch.Tensor:
        """An uninitialised (M, …) buffer: the first M rows of the largest one seen."""
        key = (name, shape[1:], like.device, like.dtype)
        buf = self._bufs.get(key)
        if buf is None or buf.shape[0] < shape[0]:
            buf = self._bufs[key] = like.new_empty(shape)
        return buf[: shape[0]]


def _buffer(ws: _Workspace | None, name: str, like: torch.Tensor, *shape: int):
    return like.new_empty(shape) if ws is None else ws.get(name, like, *shape)


class _LSTMLayer(torch.autograd.Function):
    """A batched LSTM layer with a hand-written backward (one autograd node per layer).

    Gate order i, f, g, o and the equations of ``nn.LSTM``. Inside, buffers are
    time-major, (T, M, ·, B), so each step works on contiguous blocks; the input projection
    and the weight gradients use the whole sequence as one (M, ·, T·B) matrix.
    """

    @staticmethod
    def forward(ctx, seq, w_ih, w_hh, b_ih, b_hh, T: int, keep: bool, ws):
        M, _, TB = seq.shape
        B, H = TB // T, w_hh.shape[2]
        xp = _buffer(ws, "xp", seq, M, 4 * H, TB)
        torch.baddbmm((b_ih + b_hh).unsqueeze(2), w_ih, seq, out=xp)  # input projection
        A = _buffer(ws, "A", seq, T, M, 4 * H, B)  # gate pre-activations → activations
        A.copy_(xp.view(M, 4 * H, T, B).permute(2, 0, 1, 3))
        C, TC, Hs = (_buffer(ws, n, seq, T, M, H, B) for n in ("C", "TC", "H"))
        for t in range(T):
            a = A[t]  # (M, 4H, B)
            if t:
                a.baddbmm_(w_hh, Hs[t - 1])  # + W_hh h_{t-1}
            a[:, : 2 * H].sigmoid_()
            a[:, 2 * H : 3 * H].tanh_()
            a[:, 3 * H :].sigmoid_()
            i, f, g, o = a.chunk(4, dim=1)  # (M, H, B) each
            torch.mul(i, g, out=C[t])
            if t:
                C[t].addcmul_(f, C[t - 1])  # c = f·c_{t-1} + i·g
            torch.tanh(C[t], out=TC[t])
            torch.mul(o, TC[t], out=Hs[t])  # h = o·tanh(c)
        # saved (not just kept) so that a buffer overwritten before this backward — a second
        # forward through the same workspace — raises instead of giving wrong gradients
        ctx.save_for_backward(seq, w_ih, w_hh, A, C, TC, Hs)
        ctx.ws = ws
        if keep:
            out_seq = Hs.permute(1, 2, 0, 3).reshape(M, H, TB)  # a copy
        else:
            out_seq = seq.new_empty(0)
            ctx.mark_non_differentiable(out_seq)
        return Hs[T - 1].clone(), out_seq

    @staticmethod
    def backward(ctx, d_last, d_seq):
        seq, w_ih, w_hh, A, C, TC, Hs = ctx.saved_tensors
        ws = ctx.ws
        T, M, H, B = Hs.shape
        dH = None  # upstream gradient of the output sequence, as a time-major view
        if d_seq is not None and d_seq.numel():
            dH = d_seq.view(M, H, T, B).permute(2, 0, 1, 3)
        dA = _buffer(ws, "dA", seq, T, M, 4 * H, B)
        w_hh_t = w_hh.transpose(1, 2)  # (M, H, 4H)
        dc_next = None
        for t in reversed(range(T)):
            up = dH[t] if dH is not None else None
            if t == T - 1:
                dh = d_last if up is None else d_last + up
            elif up is None:
                dh = torch.bmm(w_hh_t, dA[t + 1])
            else:
                dh = torch.baddbmm(up, w_hh_t, dA[t + 1])  # (M, H, B)
            i, f, g, o = A[t].chunk(4, dim=1)
            da_i, da_f, da_g, da_o = dA[t].chunk(4, dim=1)
            _sigmoid_bwd(dh * TC[t], o, grad_input=da_o)
            dc = torch.ops.aten.tanh_backward(dh * o, TC[t])  # dh·o·(1 - tanh²c)
            if dc_next is not None:
                dc.add_(dc_next)
            _sigmoid_bwd(dc * g, i, grad_input=da_i)
            _tanh_bwd(dc * i, g, grad_input=da_g)
            if t:
                _sigmoid_bwd(dc * C[t - 1], f, grad_input=da_f)
                dc_next = dc.mul_(f)
            else:
                da_f.zero_()
        dA_m = _buffer(ws, "dA_m", seq, M, 4 * H, T, B)
        dA_m.copy_(dA.permute(1, 2, 0, 3))
        dA_m = dA_m.view(M, 4 * H, T * B)
        H_m = _buffer(ws, "H_m", seq, M, H, T, B)
        H_m.copy_(Hs.permute(1, 2, 0, 3))
        H_m = H_m.view(M, H, T * B)
        # Σ_t dA_t h_{t-1}ᵀ over steps 1 … T-1 as one matmul
        d_w_hh = torch.bmm(dA_m[:, :, B:], H_m[:, :, : (T - 1) * B].transpose(1, 2))
        d_w_ih = torch.bmm(dA_m, seq.transpose(1, 2))  # (M, 4H, F)
        d_b = dA_m.sum(2)  # (M, 4H)
        d_in = torch.bmm(w_ih.transpose(1, 2), dA_m) if ctx.needs_input_grad[0] else None
        return d_in, d_w_ih, d_w_hh, d_b, d_b, None, None, None


def _row_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return (out - y).square()
    if loss == "huber":
        return F.huber_loss(out, y, reduction="none", delta=1.0)
    return F.binary_cross_entropy_with_logits(out, y, reduction="none")


def dropout_masks(arch: Arch, M, T, B, p, gen, device) -> list[torch.Tensor | None] | None:
    """Per-model inverted-dropout multipliers for each layer's output (None when p = 0)."""
    if p <= 0:
        return None
    masks: list[torch.Tensor | None] = []
    last = len(arch.units) - 1
    for layer, H in enumerate(arch.units):
        shape = (M, H, B) if layer == last else (M, H, T * B)
        u = torch.rand(shape, generator=gen, device=device)
        masks.append(u.ge_(p).div_(1.0 - p))  # keep with probability 1 - p, scaled
    return masks


# ------------------------------------------------------------------ data on the device


def stack_data(
    Xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], arch: Arch, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Preload the data of ``M`` models (``Xs[m]`` (n_m, T, F), ``ys[m]`` (n_m,)) on the
    device, padded to the longest.

    X arrays that are views of one buffer with the same start and strides (the seeds of a
    fold, or expanding folds ``X[:n]`` of one window array) are stored once: a model's rows
    are a prefix of the longest such view.

    Returns X (U·N, T, F), y (M·N,), and each model's first row in X and in y, (M, 1, 1).
    """
    T = Xs[0].shape[1]
    for k, (Xk, yk) in enumerate(zip(Xs, ys, strict=True)):
        if Xk.ndim != 3 or Xk.shape[1:] != (T, arch.n_features):
            raise DataError(
                f"specs[{k}].X has shape {Xk.shape}; expected (n, {T}, {arch.n_features})"
            )
        if yk.shape != (Xk.shape[0],):
            raise DataError(f"specs[{k}].y has shape {yk.shape}; expected ({Xk.shape[0]},)")
    N = max(Xk.shape[0] for Xk in Xs)
    keys = [
        (Xk.__array_interface__["data"][0], Xk.strides, Xk.dtype.str, Xk.shape[1:]) for Xk in Xs
    ]
    unique: dict[tuple, np.ndarray] = {}
    for key, Xk in zip(keys, Xs, strict=True):
        if key not in unique or len(Xk) > len(unique[key]):
            unique[key] = Xk
    slot = {key: u for u, key in enumerate(unique)}
    X = np.zeros((len(unique), N, T, arch.n_features), dtype=np.float32)
    for u, arr in enumerate(unique.values()):
        X[u, : len(arr)] = arr
    y = np.zeros((len(ys), N), dtype=np.float32)
    for m, yk in enumerate(ys):
        y[m, : len(yk)] = yk
    x_first = torch.tensor([slot[key] * N for key in keys], device=device).view(-1, 1, 1)
    y_first = torch.arange(len(ys), device=device).view(-1, 1, 1) * N
    Xt = torch.from_numpy(X).to(device).view(-1, T, arch.n_features)
    return Xt, torch.from_numpy(y).to(device).view(-1), x_first, y_first


def gather(X, y, idx, x_first, y_first) -> tuple[torch.Tensor, torch.Tensor]:
    """idx (M, K, B) row numbers within each model's data → X (K, M, F, T·B)
    feature-major (the layout of :meth:`NetworkStack.forward`) and y (K, M, B)."""
    M, K, B = idx.shape
    T, F_ = X.shape[1], X.shape[2]
    xb = X.index_select(0, (idx + x_first).view(-1)).view(M, K, B, T, F_)
    xb = xb.permute(1, 0, 4, 3, 2).reshape(K, M, F_, T * B)
    yb = y.index_select(0, (idx + y_first).view(-1)).view(M, K, B)
    return xb, yb.transpose(0, 1).contiguous()

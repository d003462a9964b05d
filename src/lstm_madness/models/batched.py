"""Train many independent small recurrent nets as one batched computation.

A walk-forward study trains the same architecture thousands of times (configs × seeds ×
folds). One such net is far too small to keep a CPU or GPU busy: a step of an LSTM(32) on a
batch of 32 is a few hundred tiny kernel launches, and the time goes to dispatch overhead.
``train_many`` stacks ``M`` nets of one architecture into tensors with a leading model axis
and runs a hand-written LSTM/GRU cell with batched matmuls, so one launch serves ``M`` models.

Each model keeps its own training exactly as if it were trained alone (the protocol of
``LSTMForecaster``):

* its own data (``X_m``, ``y_m``; lengths may differ: shorter models are padded and masked),
* its own seed and batch order (a ``torch.Generator`` per model drawing the same
  ``randperm`` per epoch as the solo loop),
* its own per-batch mean loss (sum over its real rows / its batch count), own gradient-norm
  clipping, own Adam moments and step count (models without a batch in this step, or that
  stopped early, are not updated: a masked, vectorised Adam),
* its own validation tail, early stopping and best-weights restore.

With dropout 0 the trained weights equal those of the solo loop to float tolerance. With
dropout > 0 each model draws its own masks, from one generator seeded by all the seeds of the
call: deterministic for a given call, but not bitwise the masks of a solo run.

All parameters of the ``M`` models live in one ``(M, P)`` buffer; the per-tensor parameters
are views into it, so clipping and Adam are a handful of whole-buffer operations per step.
Activations are feature-major, ``(M, G·H, B)``, so every gate is a dense block per model.
The LSTM layer has a hand-written backward (one autograd node per layer, the recurrent
weight gradient as one matmul over all steps, buffers reused between steps); the GRU layer
uses autograd.
Models are ordered by fit-set size, longest first: at each step the models that still have a
batch in the epoch form a prefix of the stack and the rest are left out of the computation
(walk-forward folds differ in length). The trained (best) weights are written back into the
given ``RecurrentNet`` objects, so prediction runs through the ordinary module (cuDNN on GPU).

Measured alternatives (2-core CPU, ``bench/training.py``): ``torch.func.vmap`` over
``functional_call`` of ``nn.LSTM`` has no batching rule (a per-model loop underneath) and is
~4–5× slower than this engine; ``torch.compile`` (``compile=True``) is 1.1–1.5× faster
per epoch but costs 6–15 s of compilation per distinct shape on a cold cache, so it is off
by default. Small steps are sensitive to other processes on the same cores: a 2-thread
OpenMP region waits for a descheduled thread, so under load ``torch.set_num_threads(1)``
can be several times faster.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models.lstm import split_validation

__all__ = ["LOSSES", "TrainResult", "TrainSpec", "train_many"]

LOSSES = ("mse", "huber", "bce")
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam defaults
_GATHER_BYTES = 64 * 2**20  # gather at most this much epoch data at once


@dataclass(frozen=True)
class TrainSpec:
    """One model's training job.

    X : float array of shape (n, T, F) — n windows of T steps of F features.
    y : float array of shape (n,) — targets, already transformed (standardised / 0-1).
    seed : the seed the net was initialised with; also seeds its batch-order generator.
    """

    X: np.ndarray
    y: np.ndarray
    seed: int


@dataclass
class TrainResult:
    """What one model's training did.

    epochs_run : epochs trained (fewer than asked when early stopping fired).
    best_epoch : 1-based epoch whose weights were kept (the last one without validation).
    history : one dict per epoch: ``epoch``, ``loss`` (sample-weighted mean training loss of
        the epoch) and, when validating, ``val_loss``.
    """

    epochs_run: int
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class _Arch:
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


def _arch_of(net: nn.Module) -> _Arch:
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
    return _Arch(
        cell="lstm" if nn.LSTM in kinds else "gru",
        n_features=rnns[0].input_size,
        units=tuple(r.hidden_size for r in rnns),
        dropout=float(drop.p) if isinstance(drop, nn.Dropout) else 0.0,
        names=tuple(names),
        shapes=shapes,
    )


# ------------------------------------------------------------------------ batched network


class _Stack:
    """Parameters of M nets in one (M, P) buffer, and the batched forward pass."""

    def __init__(self, arch: _Arch, nets: Sequence[nn.Module], device: torch.device) -> None:
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


# ---------------------------------------------------------------------------- the trainer


def _stack_data(
    specs: Sequence[TrainSpec], arch: _Arch, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Preload the data on the device, padded to the longest.

    X arrays that are views of one buffer with the same start and strides (the seeds of a
    fold, or expanding folds ``X[:n]`` of one window array) are stored once: a model's rows
    are a prefix of the longest such view.

    Returns X (U·N, T, F), y (M·N,), and each model's first row in X and in y, (M, 1, 1).
    """
    T = specs[0].X.shape[1]
    for k, s in enumerate(specs):
        if s.X.ndim != 3 or s.X.shape[1:] != (T, arch.n_features):
            raise DataError(
                f"specs[{k}].X has shape {s.X.shape}; expected (n, {T}, {arch.n_features})"
            )
        if s.y.shape != (s.X.shape[0],):
            raise DataError(f"specs[{k}].y has shape {s.y.shape}; expected ({s.X.shape[0]},)")
    N = max(s.X.shape[0] for s in specs)
    keys = [
        (s.X.__array_interface__["data"][0], s.X.strides, s.X.dtype.str, s.X.shape[1:])
        for s in specs
    ]
    unique: dict[tuple, np.ndarray] = {}
    for key, s in zip(keys, specs, strict=True):
        if key not in unique or len(s.X) > len(unique[key]):
            unique[key] = s.X
    slot = {key: u for u, key in enumerate(unique)}
    X = np.zeros((len(unique), N, T, arch.n_features), dtype=np.float32)
    for u, arr in enumerate(unique.values()):
        X[u, : len(arr)] = arr
    y = np.zeros((len(specs), N), dtype=np.float32)
    for m, s in enumerate(specs):
        y[m, : len(s.y)] = s.y
    x_first = torch.tensor([slot[key] * N for key in keys], device=device).view(-1, 1, 1)
    y_first = torch.arange(len(specs), device=device).view(-1, 1, 1) * N
    Xt = torch.from_numpy(X).to(device).view(-1, T, arch.n_features)
    return Xt, torch.from_numpy(y).to(device).view(-1), x_first, y_first


def _gather(X, y, idx, x_first, y_first) -> tuple[torch.Tensor, torch.Tensor]:
    """idx (M, K, B) row numbers within each model's data → X (K, M, F, T·B)
    feature-major and y (K, M, B)."""
    M, K, B = idx.shape
    T, F_ = X.shape[1], X.shape[2]
    xb = X.index_select(0, (idx + x_first).view(-1)).view(M, K, B, T, F_)
    xb = xb.permute(1, 0, 4, 3, 2).reshape(K, M, F_, T * B)
    yb = y.index_select(0, (idx + y_first).view(-1)).view(M, K, B)
    return xb, yb.transpose(0, 1).contiguous()


class _Adam:
    """Adam over the (M, P) buffer with per-model step counts and an update mask,
    fused with per-model gradient-norm clipping. Scratch buffers are preallocated."""

    def __init__(self, flat: torch.Tensor, lr: float, clip: float, compile_: bool) -> None:
        self.lr, self.clip = lr, clip
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat)
        self.buf = torch.empty_like(flat)
        self.steps = torch.zeros(flat.shape[0], dtype=torch.float64, device=flat.device)
        self._step = _clip_adam_compiled if compile_ else _clip_adam

    def schedule(self, active: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-step coefficients for an epoch; active (K, M) bool → four (K, M, 1) tensors."""
        act = active.to(torch.float64)
        steps = self.steps + act.cumsum(0)  # (K, M): step number at each update
        self.steps = steps[-1].clone()
        s = steps.clamp(min=1.0)
        bc1 = 1.0 - _BETA1**s
        bc2_sqrt = (1.0 - _BETA2**s).sqrt()
        neg_step = -self.lr / bc1 * act
        out = ((1 - _BETA1) * act, (1 - _BETA2) * act, bc2_sqrt, neg_step)
        return tuple(t.to(torch.float32).unsqueeze(-1) for t in out)

    def select(self, rows: torch.Tensor) -> None:
        """Keep only the models on ``rows``."""
        self.exp_avg = self.exp_avg.index_select(0, rows)
        self.exp_avg_sq = self.exp_avg_sq.index_select(0, rows)
        self.buf = torch.empty_like(self.exp_avg)
        self.steps = self.steps.index_select(0, rows)

    def step(self, flat, grad, c1, c2, bc2_sqrt, neg_step) -> None:
        self._step(
            flat,
            grad,
            self.exp_avg,
            self.exp_avg_sq,
            self.buf,
            c1,
            c2,
            bc2_sqrt,
            neg_step,
            self.clip,
        )


def _clip_adam(flat, grad, exp_avg, exp_avg_sq, buf, c1, c2, bc2_sqrt, neg_step, clip):
    """In place: clip each row of grad (M, P) to norm ``clip`` (0 = off), then one masked
    Adam step per row. Inactive rows have c1 = c2 = neg_step = 0 and stay bitwise equal."""
    if clip > 0:  # as clip_grad_norm_: grad · min(1, clip / (‖grad‖ + 1e-6))
        norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)  # (M, 1)
        grad.mul_(norm.add_(1e-6).reciprocal_().mul_(clip).clamp_(max=1.0))
    exp_avg.lerp_(grad, c1)  # m ← β1·m + (1-β1)·g
    exp_avg_sq.lerp_(grad.mul_(grad), c2)  # v ← β2·v + (1-β2)·g²  (grad is scratch now)
    torch.sqrt(exp_avg_sq, out=buf)
    buf.div_(bc2_sqrt).add_(_EPS)  # denom = √v / √(1-β2^t) + eps
    torch.div(exp_avg, buf, out=buf)
    flat.addcmul_(buf, neg_step)  # p ← p - lr/(1-β1^t) · m / denom


def _clip_adam_compiled(flat, grad, exp_avg, exp_avg_sq, buf, c1, c2, bc2_sqrt, neg_step, clip):
    """``_clip_adam`` with the pointwise part fused by inductor into one loop (the norm
    stays eager: inductor 2.13's CPU codegen fails on the reduction + in-place mix)."""
    scale = torch.ones_like(c1)
    if clip > 0:
        norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)  # (M, 1)
        scale = norm.add_(1e-6).reciprocal_().mul_(clip).clamp_(max=1.0)
    if "adam" not in _COMPILED:  # compiled lazily: importing dynamo costs seconds
        _COMPILED["adam"] = torch.compile(_adam_pointwise, dynamic=False, fullgraph=True)
    _COMPILED["adam"](flat, grad, exp_avg, exp_avg_sq, scale, c1, c2, bc2_sqrt, neg_step)


_COMPILED: dict[str, Callable] = {}


def _adam_pointwise(flat, grad, exp_avg, exp_avg_sq, scale, c1, c2, bc2_sqrt, neg_step):
    grad = grad * scale
    m = exp_avg + c1 * (grad - exp_avg)
    v = exp_avg_sq + c2 * (grad * grad - exp_avg_sq)
    exp_avg.copy_(m)
    exp_avg_sq.copy_(v)
    flat.add_(neg_step * (m / (v.sqrt() / bc2_sqrt + _EPS)))


def _seed_of(seeds: Sequence[int]) -> int:
    return int(np.random.SeedSequence([abs(int(s)) for s in seeds]).generate_state(1)[0])


def _dropout_masks(arch: _Arch, M, T, B, p, gen, device) -> list[torch.Tensor | None] | None:
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


def train_many(
    nets: Sequence[nn.Module],
    specs: Sequence[TrainSpec],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    loss: str,
    clip_norm: float | None = 1.0,
    patience: int = 0,
    validation_fraction: float = 0.0,
    validation_gap: int = 0,
    min_delta: float = 0.0,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    compile: bool = False,
) -> list[TrainResult]:
    """Train ``len(nets)`` independent nets of one architecture as one computation.

    Parameters
    ----------
    nets : RecurrentNet modules of identical architecture, each already initialised
        (constructed right after ``torch.manual_seed(spec.seed)``). Their parameters are
        overwritten in place with the trained (best) weights.
    specs : one ``TrainSpec`` per net: X (n_m, T, F), y (n_m,), seed. T and F must agree;
        n_m may differ.
    epochs, batch_size, learning_rate, loss, clip_norm, patience, validation_fraction,
    validation_gap, min_delta : the solo protocol of ``LSTMForecaster.fit`` (``loss`` one
        of ``LOSSES``; ``clip_norm`` None or 0 disables clipping; early stopping only when
        ``patience > 0`` and ``validation_fraction > 0``).
    device : where the batched computation runs ("cpu", "cuda", ...).
    progress : called after each epoch as ``progress(epoch, n_models_still_training)``.
    compile : run the forward/backward and the optimizer step through ``torch.compile``
        (inductor). Off by default: it costs 6–15 s of compilation per distinct shape on a
        cold cache for a 1.1–1.5× faster epoch (2-core CPU), so it pays back only for long
        trainings. All models then run at every step (one static shape) and stopped
        models stay on the stack, frozen.

    Returns
    -------
    list of TrainResult, in the order of ``nets``.
    """
    if len(nets) != len(specs) or not nets:
        raise ConfigError(f"got {len(nets)} nets and {len(specs)} specs; need equal, >= 1")
    if loss not in LOSSES:
        raise ConfigError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    if epochs < 1 or batch_size < 1:
        raise ConfigError("epochs and batch_size must be >= 1")
    arch = _arch_of(nets[0])
    for k, net in enumerate(nets[1:], 1):
        if _arch_of(net) != arch:
            raise ConfigError(f"nets[{k}] differs in architecture from nets[0]")
    device = torch.device(device)
    M, B = len(nets), batch_size
    sizes = [
        split_validation(len(s.X), validation_fraction, validation_gap, patience) for s in specs
    ]
    # Longest fit set first: at every step the models that still have a batch in this epoch
    # are then a prefix of the stack, and the others are left out of the computation.
    order = sorted(range(M), key=lambda m: -sizes[m][0])
    nets = [nets[m] for m in order]
    specs = [specs[m] for m in order]
    sizes = [sizes[m] for m in order]
    X, y, x_first, y_first = _stack_data(specs, arch, device)
    T = X.shape[1]
    lengths = [len(s.X) for s in specs]
    validating = sizes[0][1] > 0
    stack = _Stack(arch, nets, device)
    adam = _Adam(stack.flat, learning_rate, float(clip_norm) if clip_norm else 0.0, compile)
    batch_loss = stack.compiled_loss(loss) if compile else stack.loss_fn(loss)
    gens = [torch.Generator(device).manual_seed(int(s.seed)) for s in specs]
    drop_gen = torch.Generator(device).manual_seed(_seed_of([s.seed for s in specs]))

    # Per model (in sorted order): the outcome. Per stack row: the live state. Models that
    # stop early leave the stack at the end of the epoch (not when compiling: a new shape
    # would recompile; they then stay in, frozen by the update mask).
    final = torch.empty_like(stack.flat)  # trained weights of each model, filled at its end
    rows = np.arange(M)  # stack row → model
    improved_ever = np.zeros(M, dtype=bool)
    wait, best_epoch, epochs_run = (np.zeros(M, dtype=int) for _ in range(3))
    histories: list[list[dict[str, float]]] = [[] for _ in range(M)]
    running = np.ones(M, dtype=bool)  # per stack row
    best = torch.full((M,), math.inf, device=device)
    best_flat = stack.flat.clone() if validating else stack.flat
    data: _Batches | None = None

    def finish(local: np.ndarray) -> None:
        """Store the kept weights of the models on stack rows ``local``."""
        lt = torch.as_tensor(local, device=device)
        src = stack.flat.index_select(0, lt)
        if validating:  # the best epoch's weights; the last ones if it never improved
            imp = torch.as_tensor(improved_ever[rows[local]], device=device).unsqueeze(1)
            src = torch.where(imp, best_flat.index_select(0, lt), src)
        final[torch.as_tensor(rows[local], device=device)] = src

    for epoch in range(1, epochs + 1):
        if data is None:  # (re)build the batch geometry for the models on the stack
            Mr = len(rows)
            data = _Batches([sizes[m] for m in rows], [lengths[m] for m in rows], B, device)
            grad = torch.empty_like(stack.flat)
            chunk = max(1, min(data.K, _GATHER_BYTES // (Mr * B * T * arch.n_features * 4)))
            if validating:
                Xv, yv = _gather(X, y, data.val_idx.unsqueeze(1), x_first, y_first)
                Xv, yv = Xv[0], yv[0]  # (Mr, F, T·V), (Mr, V)
        flat = stack.flat
        idx = data.epoch_index(gens, running)  # (Mr, K, B)
        run_t = torch.from_numpy(running).to(device)
        c1, c2, bc2s, neg_step = adam.schedule(data.has_batch & run_t)
        loss_sum = torch.zeros(Mr, device=device)
        for k0 in range(0, data.K, chunk):
            xc, yc = _gather(X, y, idx[:, k0 : k0 + chunk], x_first, y_first)
            for j in range(xc.shape[0]):
                k = k0 + j
                a = Mr if compile else data.with_batch[k]  # rows 0..a-1 have a batch
                drop = _dropout_masks(arch, a, T, B, arch.dropout, drop_gen, device)
                per_model = batch_loss(  # (a,)
                    xc[j, :a], yc[j, :a], data.weight[k, :a], T, drop
                )
                grads = torch.autograd.grad(  # W_hh is unused when T = 1 (GRU)
                    per_model.sum(), stack.params, materialize_grads=True
                )
                with torch.no_grad():
                    loss_sum[:a].addcmul_(per_model, data.count[k, :a])
                    torch.cat([g.view(Mr, -1) for g in grads], dim=1, out=grad)  # (Mr, P)
                    adam.step(flat, grad, c1[k], c2[k], bc2s[k], neg_step[k])
        train_loss = (loss_sum / data.n_fit_t).cpu().numpy()
        active = np.flatnonzero(running)
        epochs_run[rows[active]] = epoch
        if validating:
            with torch.no_grad():
                vl = stack.loss_fn(loss)(Xv, yv, data.val_weight, T, None)  # (Mr,)
                improved = (vl < best - min_delta) & run_t
                best = torch.where(improved, vl, best)
                torch.where(improved.unsqueeze(1), flat, best_flat, out=best_flat)
            vl_h, imp_h = vl.cpu().numpy(), improved.cpu().numpy()
            for r in active:
                m = rows[r]
                histories[m].append(
                    {"epoch": epoch, "loss": float(train_loss[r]), "val_loss": float(vl_h[r])}
                )
                if imp_h[r]:
                    best_epoch[m], wait[m], improved_ever[m] = epoch, 0, True
                else:
                    wait[m] += 1
                    running[r] = wait[m] < patience
        else:
            for r in active:
                histories[rows[r]].append({"epoch": epoch, "loss": float(train_loss[r])})
            best_epoch[rows[active]] = epoch
        if progress is not None:
            progress(epoch, int(running.sum()))
        if not running.any():
            break
        stopped = np.flatnonzero(~running)
        if len(stopped) and not compile:  # compact: stopped models leave the stack
            finish(stopped)
            keep = np.flatnonzero(running)
            kt = torch.as_tensor(keep, device=device)
            stack.select(kt)
            adam.select(kt)
            best = best.index_select(0, kt)
            best_flat = best_flat.index_select(0, kt) if validating else stack.flat
            x_first, y_first = x_first.index_select(0, kt), y_first.index_select(0, kt)
            gens = [gens[r] for r in keep]
            rows, running, data = rows[keep], running[keep], None

    finish(np.arange(len(rows)))
    stack.write_back(nets, final)
    results = [TrainResult(int(epochs_run[m]), int(best_epoch[m]), histories[m]) for m in range(M)]
    return [results[order.index(m)] for m in range(M)]


class _Batches:
    """Batch geometry shared by all epochs: per-position weights, counts, index padding."""

    def __init__(self, sizes, lengths, B: int, device: torch.device) -> None:
        M = len(sizes)
        self.n_fit = [f for f, _ in sizes]
        self.n_fit_t = torch.tensor(self.n_fit, dtype=torch.float32, device=device)
        self.validating = sizes[0][1] > 0
        self.B, self.device = B, device
        n_batches = [math.ceil(f / B) for f in self.n_fit]
        self.K = K = max(n_batches)
        # row j of batch k of model m is real iff k·B + j < n_fit[m]
        pos = torch.arange(K * B, device=device).view(1, K, B)
        real = pos < torch.tensor(self.n_fit, device=device).view(M, 1, 1)  # (M, K, B)
        count = real.sum(-1)  # (M, K)
        w = real / count.clamp(min=1).unsqueeze(-1)
        self.weight = w.to(torch.float32).transpose(0, 1).contiguous()  # (K, M, B)
        self.count = count.to(torch.float32).t().contiguous()  # (K, M)
        self.has_batch = (count > 0).t().contiguous()  # (K, M)
        #: models with a batch at step k (a prefix when n_fit is sorted descending)
        self.with_batch = [sum(k < nb for nb in n_batches) for k in range(K)]
        if self.validating:
            n_val = torch.tensor([v for _, v in sizes], device=device).view(M, 1)
            V = int(n_val.max())
            vpos = torch.arange(V, device=device).view(1, V)
            start = torch.tensor(lengths, device=device).view(M, 1) - n_val
            self.val_idx = start + vpos.clamp(max=n_val - 1)  # (M, V)
            self.val_weight = ((vpos < n_val) / n_val).to(torch.float32)  # (M, V)

    def epoch_index(self, gens, running: np.ndarray) -> torch.Tensor:
        """This epoch's shuffled row numbers (M, K, B); each running model draws
        ``randperm(n_fit)`` from its own generator, exactly as the solo loop."""
        M = len(self.n_fit)
        idx = torch.zeros(M, self.K * self.B, dtype=torch.long, device=self.device)
        for m in np.flatnonzero(running):
            n = self.n_fit[m]
            idx[m, :n] = torch.randperm(n, generator=gens[m], device=self.device)
        return idx.view(M, self.K, self.B)

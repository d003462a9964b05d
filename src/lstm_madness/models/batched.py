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
The trained (best) weights are written back into the given ``RecurrentNet`` objects, so
prediction runs through the ordinary module (cuDNN on GPU).
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
        if loss not in self._compiled:
            self._compiled[loss] = torch.compile(
                self.loss_fn(loss), dynamic=False, fullgraph=True
            )
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
        p = self.params
        n_layers = len(self.arch.units)
        seq = h = x
        layer_fn = self._lstm_layer if self.arch.cell == "lstm" else self._gru_layer
        for layer, H in enumerate(self.arch.units):
            w_ih, w_hh, b_ih, b_hh = p[4 * layer : 4 * layer + 4]
            last = layer == n_layers - 1
            h, outs = layer_fn(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, keep=not last)
            if not last:
                seq = torch.cat(outs, dim=2)  # (M, H, T·B)
            d = drop[layer] if drop is not None else None
            if d is not None:
                if last:
                    h = h * d
                else:
                    seq = seq * d
        w_head, b_head = p[-2], p[-1]  # (M, 1, H), (M, 1)
        out = torch.baddbmm(b_head.unsqueeze(2), w_head, h)  # (M, 1, B)
        return out.squeeze(1)

    @staticmethod
    def _lstm_layer(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, keep):
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
        return h, outs

    @staticmethod
    def _gru_layer(seq, w_ih, w_hh, b_ih, b_hh, M, T, B, H, keep):
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
        return h, outs


def _row_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return (out - y).square()
    if loss == "huber":
        return F.huber_loss(out, y, reduction="none", delta=1.0)
    return F.binary_cross_entropy_with_logits(out, y, reduction="none")


# ---------------------------------------------------------------------------- the trainer


def _stack_data(
    specs: Sequence[TrainSpec], arch: _Arch, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Pad every model's (X, y) to the longest: X (M·N, T, F), y (M·N,), N."""
    T = specs[0].X.shape[1]
    for k, s in enumerate(specs):
        if s.X.ndim != 3 or s.X.shape[1:] != (T, arch.n_features):
            raise DataError(
                f"specs[{k}].X has shape {s.X.shape}; expected (n, {T}, {arch.n_features})"
            )
        if s.y.shape != (s.X.shape[0],):
            raise DataError(f"specs[{k}].y has shape {s.y.shape}; expected ({s.X.shape[0]},)")
    N = max(s.X.shape[0] for s in specs)
    X = np.zeros((len(specs), N, T, arch.n_features), dtype=np.float32)
    y = np.zeros((len(specs), N), dtype=np.float32)
    for m, s in enumerate(specs):
        X[m, : len(s.X)] = s.X
        y[m, : len(s.y)] = s.y
    Xt = torch.from_numpy(X).to(device).view(-1, T, arch.n_features)
    return Xt, torch.from_numpy(y).to(device).view(-1), N


def _gather(
    X: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, M: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """idx (M, K, B) flat row numbers → X (K, M, F, T·B) feature-major, y (K, M, B)."""
    _, K, B = idx.shape
    T, F_ = X.shape[1], X.shape[2]
    flat = idx.reshape(-1)
    xb = X.index_select(0, flat).view(M, K, B, T, F_)
    xb = xb.permute(1, 0, 4, 3, 2).reshape(K, M, F_, T * B)
    return xb, y.index_select(0, flat).view(M, K, B).transpose(0, 1).contiguous()


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

    def step(self, flat, grad, c1, c2, bc2_sqrt, neg_step) -> None:
        self._step(
            flat, grad, self.exp_avg, self.exp_avg_sq, self.buf, c1, c2, bc2_sqrt, neg_step,
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
        (inductor). Off by default: it costs tens of seconds of compilation per shape and,
        on the 2-core CPU this was measured on, does not pay back for typical runs
        (see ``bench/training.py``).

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
    sizes = [split_validation(len(s.X), validation_fraction, validation_gap, patience)
             for s in specs]
    X, y, N = _stack_data(specs, arch, device)
    T = X.shape[1]
    data = _Batches(sizes, [len(s.X) for s in specs], N, B, device)
    stack = _Stack(arch, nets, device)
    flat = stack.flat
    adam = _Adam(flat, learning_rate, float(clip_norm) if clip_norm else 0.0, compile)
    grad = torch.empty_like(flat)
    batch_loss = stack.compiled_loss(loss) if compile else stack.loss_fn(loss)
    gens = [torch.Generator(device).manual_seed(int(s.seed)) for s in specs]
    drop_gen = torch.Generator(device).manual_seed(_seed_of([s.seed for s in specs]))
    chunk = max(1, min(data.K, _GATHER_BYTES // (M * B * T * arch.n_features * 4)))
    if data.validating:
        Xv, yv = _gather(X, y, data.val_idx.unsqueeze(1), M)
        Xv, yv = Xv[0], yv[0]  # (M, F, T·V), (M, V)

    running = np.ones(M, dtype=bool)
    best = torch.full((M,), math.inf, device=device)
    best_flat = flat.clone() if data.validating else flat
    improved_ever = np.zeros(M, dtype=bool)
    wait, best_epoch, epochs_run = (np.zeros(M, dtype=int) for _ in range(3))
    histories: list[list[dict[str, float]]] = [[] for _ in range(M)]

    for epoch in range(1, epochs + 1):
        idx = data.epoch_index(gens, running)  # (M, K, B)
        run_t = torch.from_numpy(running).to(device)
        c1, c2, bc2s, neg_step = adam.schedule(data.has_batch & run_t)
        loss_sum = torch.zeros(M, device=device)
        for k0 in range(0, data.K, chunk):
            xc, yc = _gather(X, y, idx[:, k0 : k0 + chunk], M)
            for j in range(xc.shape[0]):
                k = k0 + j
                drop = _dropout_masks(arch, M, T, B, arch.dropout, drop_gen, device)
                per_model = batch_loss(xc[j], yc[j], data.weight[k], T, drop)  # (M,)
                grads = torch.autograd.grad(per_model.sum(), stack.params)
                with torch.no_grad():
                    loss_sum.addcmul_(per_model, data.count[k])
                    torch.cat([g.view(M, -1) for g in grads], dim=1, out=grad)  # (M, P)
                    adam.step(flat, grad, c1[k], c2[k], bc2s[k], neg_step[k])
        train_loss = (loss_sum / data.n_fit_t).cpu().numpy()
        active = np.flatnonzero(running)
        epochs_run[active] = epoch
        if data.validating:
            with torch.no_grad():
                vl = stack.loss_fn(loss)(Xv, yv, data.val_weight, T, None)  # (M,)
                improved = (vl < best - min_delta) & run_t
                best = torch.where(improved, vl, best)
                torch.where(improved.unsqueeze(1), flat, best_flat, out=best_flat)
            vl_h, imp_h = vl.cpu().numpy(), improved.cpu().numpy()
            for m in active:
                histories[m].append(
                    {"epoch": epoch, "loss": float(train_loss[m]), "val_loss": float(vl_h[m])}
                )
                if imp_h[m]:
                    best_epoch[m], wait[m], improved_ever[m] = epoch, 0, True
                else:
                    wait[m] += 1
                    running[m] = wait[m] < patience
        else:
            for m in active:
                histories[m].append({"epoch": epoch, "loss": float(train_loss[m])})
            best_epoch[active] = epoch
        if progress is not None:
            progress(epoch, int(running.sum()))
        if not running.any():
            break

    if data.validating and not improved_ever.all():  # never improved: keep the last weights
        keep = torch.from_numpy(~improved_ever).to(device).unsqueeze(1)
        torch.where(keep, flat, best_flat, out=best_flat)
    stack.write_back(nets, best_flat)
    return [
        TrainResult(int(epochs_run[m]), int(best_epoch[m]), histories[m]) for m in range(M)
    ]


class _Batches:
    """Batch geometry shared by all epochs: per-position weights, counts, index padding."""

    def __init__(self, sizes, lengths, N: int, B: int, device: torch.device) -> None:
        M = len(sizes)
        self.n_fit = [f for f, _ in sizes]
        self.n_fit_t = torch.tensor(self.n_fit, dtype=torch.float32, device=device)
        self.validating = sizes[0][1] > 0
        self.B, self.device = B, device
        self.offsets = torch.arange(M, device=device).unsqueeze(1) * N  # (M, 1)
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
        if self.validating:
            n_val = torch.tensor([v for _, v in sizes], device=device).view(M, 1)
            V = int(n_val.max())
            vpos = torch.arange(V, device=device).view(1, V)
            start = torch.tensor(lengths, device=device).view(M, 1) - n_val
            self.val_idx = start + vpos.clamp(max=n_val - 1) + self.offsets  # (M, V)
            self.val_weight = ((vpos < n_val) / n_val).to(torch.float32)  # (M, V)

    def epoch_index(self, gens, running: np.ndarray) -> torch.Tensor:
        """This epoch's shuffled flat row numbers (M, K, B); each running model draws
        ``randperm(n_fit)`` from its own generator, exactly as the solo loop."""
        M = len(self.n_fit)
        idx = torch.zeros(M, self.K * self.B, dtype=torch.long, device=self.device)
        for m in np.flatnonzero(running):
            n = self.n_fit[m]
            idx[m, :n] = torch.randperm(n, generator=gens[m], device=self.device)
        return (idx + self.offsets).view(M, self.K, self.B)

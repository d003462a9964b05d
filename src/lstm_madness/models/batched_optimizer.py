"""The batched engine's optimizer updates: Adam and RMSprop over the ``(M, P)`` buffer of
``M`` networks, each row with its own clipping, moments and step count, masked per step.

The update of :mod:`lstm_madness.models.optimizer`, vectorised over rows; a row whose
coefficients are 0 at a step (no batch there, or stopped early) stays bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lstm_madness.models.optimizer import BETA1, BETA2, CLIP_EPS, EPS, RMS_EPS, RMS_RHO

__all__ = ["BatchedAdam", "BatchedRMSprop", "batched_optimizer"]


def batched_optimizer(
    name: str, flat: torch.Tensor, lr: float, clip: float, compile_: bool
) -> BatchedAdam:
    """:class:`BatchedRMSprop` for ``name="rmsprop"``, else :class:`BatchedAdam`."""
    cls = BatchedRMSprop if name == "rmsprop" else BatchedAdam
    return cls(flat, lr, clip, compile_)


class BatchedAdam:
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
        bc1 = 1.0 - BETA1**s
        bc2_sqrt = (1.0 - BETA2**s).sqrt()
        neg_step = -self.lr / bc1 * act
        out = ((1 - BETA1) * act, (1 - BETA2) * act, bc2_sqrt, neg_step)
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
        grad.mul_(norm.add_(CLIP_EPS).reciprocal_().mul_(clip).clamp_(max=1.0))
    exp_avg.lerp_(grad, c1)  # m ← β1·m + (1-β1)·g
    exp_avg_sq.lerp_(grad.mul_(grad), c2)  # v ← β2·v + (1-β2)·g²  (grad is scratch now)
    torch.sqrt(exp_avg_sq, out=buf)
    buf.div_(bc2_sqrt).add_(EPS)  # denom = √v / √(1-β2^t) + eps
    torch.div(exp_avg, buf, out=buf)
    flat.addcmul_(buf, neg_step)  # p ← p - lr/(1-β1^t) · m / denom


def _clip_adam_compiled(flat, grad, exp_avg, exp_avg_sq, buf, c1, c2, bc2_sqrt, neg_step, clip):
    """``_clip_adam`` with the pointwise part fused by inductor into one loop (the norm
    stays eager: inductor 2.13's CPU codegen fails on the reduction + in-place mix)."""
    scale = torch.ones_like(c1)
    if clip > 0:
        norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)  # (M, 1)
        scale = norm.add_(CLIP_EPS).reciprocal_().mul_(clip).clamp_(max=1.0)
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
    flat.add_(neg_step * (m / (v.sqrt() / bc2_sqrt + EPS)))


class BatchedRMSprop(BatchedAdam):
    """RMSprop over the (M, P) buffer (the same interface, clipping and update mask as
    :class:`BatchedAdam`; the first moment is not used). With ``compile_`` the update runs
    eagerly all the same: only the masks and the static shape differ there."""

    def __init__(self, flat: torch.Tensor, lr: float, clip: float, compile_: bool) -> None:
        super().__init__(flat, lr, clip, compile_)
        self._step = _clip_rmsprop

    def schedule(self, active: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-step coefficients for an epoch, as :meth:`BatchedAdam.schedule`: ``(0,
        (1-ρ)·a, 1, -lr·a)`` per step and row, ``a`` 1 when the row is active, else 0."""
        act = active.to(torch.float64)
        self.steps = self.steps + act.sum(0)
        out = (0 * act, (1 - RMS_RHO) * act, torch.ones_like(act), -self.lr * act)
        return tuple(t.to(torch.float32).unsqueeze(-1) for t in out)


def _clip_rmsprop(flat, grad, exp_avg, exp_avg_sq, buf, c1, c2, bc2_sqrt, neg_step, clip):
    """In place: clip each row of grad (M, P) as :func:`_clip_adam`, then one masked
    RMSprop step per row (``c1``, ``bc2_sqrt`` unused). Inactive rows have c2 = neg_step = 0
    and stay bitwise equal."""
    del exp_avg, c1, bc2_sqrt
    if clip > 0:  # as clip_grad_norm_: grad · min(1, clip / (‖grad‖ + 1e-6))
        norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)  # (M, 1)
        grad.mul_(norm.add_(CLIP_EPS).reciprocal_().mul_(clip).clamp_(max=1.0))
    exp_avg_sq.lerp_(torch.mul(grad, grad, out=buf), c2)  # v ← ρ·v + (1-ρ)·g²
    torch.sqrt(exp_avg_sq, out=buf)
    buf.add_(RMS_EPS)  # denom = √v + eps
    torch.div(grad, buf, out=buf)
    flat.addcmul_(buf, neg_step)  # p ← p - lr · g / denom

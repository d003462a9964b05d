"""The optimizer update of every trainer: global-norm clipping, then Adam or RMSprop
(``train.optimizer``; Adam by default). One specification.

The update exists three times, once per engine, because each engine keeps its parameters
differently: the ``torch`` trainer calls ``torch.nn.utils.clip_grad_norm_`` and
``torch.optim.Adam`` or ``torch.optim.RMSprop``
(:func:`lstm_madness.models.torch_trainer.clipped_step`), the batched engine updates the
``(M, P)`` buffer of ``M`` networks at once
(:class:`~lstm_madness.models.batched_optimizer.BatchedAdam`,
:class:`~lstm_madness.models.batched_optimizer.BatchedRMSprop`), the compiled trainer runs
one numba loop (``clip_adam``, ``clip_rmsprop`` in :mod:`lstm_madness.models._kernels`).
All three take their constants from here, and ``tests/models/test_optimizer.py`` pins them
to the same steps against a NumPy reference written from this specification.

Specification
-------------
For one network with float32 parameters ``θ``, learning rate ``α`` and clip norm ``c``
(``None`` or 0: no clipping), at its ``t``-th update (``t = 1, 2, …`` counts this network's
own updates; ``m = v = 0`` before the first), given the gradient ``g`` of the batch's mean
loss:

1. clip: if ``c > 0``, ``g ← g · min(1, c / (‖g‖₂ + 1e-6))``, where ``‖g‖₂`` is the L2
   norm over all the network's parameters together (:data:`CLIP_EPS` is the 1e-6);
2. ``m ← β₁·m + (1 − β₁)·g``  with ``β₁ =`` :data:`BETA1` ``= 0.9``;
3. ``v ← β₂·v + (1 − β₂)·g²``  with ``β₂ =`` :data:`BETA2` ``= 0.999``;
4. ``θ ← θ − (α / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)``  with ``ε =`` :data:`EPS`
   ``= 1e-8``.

That is torch's Adam with its default betas and eps: exact bias correction of both moments,
``ε`` added *after* dividing ``√v`` by ``√(1 − β₂ᵗ)`` (to ``√v̂``, not to ``√v``), no weight
decay, no AMSGrad. The bias corrections ``1 − β₁ᵗ`` and ``√(1 − β₂ᵗ)`` and the step size
``α / (1 − β₁ᵗ)`` are computed in float64 and used in float32; moments, parameters and
gradients are float32.

RMSprop (``optimizer = "rmsprop"``)
-----------------------------------
As Keras (the model of Fischer & Krauss 2018: ``RMSprop(rho=0.9, epsilon=1e-7)``) and
``torch.optim.RMSprop(lr=α, alpha=0.9, eps=1e-7)`` apply it: no momentum, not centered,
no weight decay, ``ε`` added to ``√v`` (outside the root), no bias correction. With
``v = 0`` before the first update, the same clipping (step 1 above), then

2. ``v ← ρ·v + (1 − ρ)·g²``  with ``ρ =`` :data:`RMS_RHO` ``= 0.9``;
3. ``θ ← θ − α · g / (√v + ε)``  with ``ε =`` :data:`RMS_EPS` ``= 1e-7``.

Moments, parameters and gradients are float32. The engines evaluate it as they do Adam
(same clipping code): ``torch`` ``v.mul_(ρ).addcmul_(g, g, 1 − ρ)``, ``θ.addcdiv_(g, √v +
ε, −α)``; batched ``v.lerp_(g², 1 − ρ)`` and ``θ + (−α)·(g / (√v + ε))`` with the same
per-row mask (an inactive row's coefficients are 0: ``θ`` and ``v`` stay bit for bit);
compiled ``v = ρ·v + (1 − ρ)·g·g``, ``θ −= α·g / (√v + ε)`` under ``fastmath``.

How each engine evaluates Adam
------------------------------
They differ only in rounding (the order and precision of the operations), never in the
formula above; to float32 rounding they give the same steps.

* ``torch`` (on the CPU torch's single-tensor Adam; on CUDA the foreach one, with the same
  operations): ``‖g‖`` is the float32 norm of the per-tensor float32 norms; the coefficient
  ``c / (‖g‖ + 1e-6)`` is a float32 tensor, clamped at 1 and always multiplied.
  ``m.lerp_(g, 1 − β₁)`` (``m + (1 − β₁)·(g − m)``); ``v.mul_(β₂).addcmul_(g, g, 1 − β₂)``;
  ``denom = √v / √(1 − β₂ᵗ) + ε``; ``θ.addcdiv_(m, denom, −α / (1 − β₁ᵗ))``.
* batched: one row of an ``(M, P)`` buffer per network, each with its own float64 step
  count. ``‖g‖`` is one float32 norm over the row; the coefficient is ``(1 / (‖g‖ + 1e-6))
  · c`` clamped at 1, always multiplied. ``m.lerp_(g, 1 − β₁)``; ``v.lerp_(g², 1 − β₂)``
  (``v + (1 − β₂)·(g² − v)``: the same value as step 3, rounded differently);
  ``θ + (−α / (1 − β₁ᵗ))·(m / (√v / √(1 − β₂ᵗ) + ε))``. A network without a batch at a
  step (a shorter fit set, or stopped early) has its coefficients set to 0: its ``θ``,
  ``m``, ``v`` stay bit for bit and its step count does not advance. With ``compile=True``
  the same pointwise formulas run as one fused loop.
* compiled: ``‖g‖²`` is summed in float64 (``fastmath`` reassociation: no fixed order), the
  coefficient ``c / (√‖g‖² + 1e-6)`` is float64 and multiplied (as float32) only when it
  is below 1. ``m += (1 − β₁)·(g − m)``; ``v = β₂·v + (1 − β₂)·g·g``; ``θ −= (α / (1 −
  β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + ε)``, the product taken before the quotient, under
  ``fastmath`` (``contract`` may fuse a multiply-add, ``arcp`` may turn the division into
  a multiplication by the reciprocal).
"""

from __future__ import annotations

__all__ = ["BETA1", "BETA2", "CLIP_EPS", "EPS", "RMS_EPS", "RMS_RHO"]

#: Decay of the first moment (torch's default).
BETA1 = 0.9
#: Decay of the second moment (torch's default).
BETA2 = 0.999
#: Added to the bias-corrected ``√v`` (torch's default).
EPS = 1e-8
#: Added to the gradient norm in the clipping coefficient (as ``clip_grad_norm_``).
CLIP_EPS = 1e-6
#: Decay of RMSprop's mean square (Keras's ``rho``, torch's ``alpha``).
RMS_RHO = 0.9
#: Added to RMSprop's ``√v`` (Keras's default ``epsilon``).
RMS_EPS = 1e-7

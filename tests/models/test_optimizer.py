"""The optimizer update of the three trainers takes the same steps: the specification of
:mod:`lstm_madness.models.optimizer`, written out here in NumPy (float64), against the
``torch`` trainer's update (``clip_grad_norm_`` + ``torch.optim.Adam``), the batched
engine's ``BatchedAdam`` and the compiled trainer's ``clip_adam`` kernel, fed the same
float32 parameters and gradients for a few steps. They agree to float32 rounding. RMSprop
(``torch.optim.RMSprop``, ``BatchedRMSprop``, ``clip_rmsprop``) is pinned the same way.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lstm_madness.errors import ConfigError
from lstm_madness.models.batched import BatchedAdam, BatchedRMSprop
from lstm_madness.models.compiled import kernels
from lstm_madness.models.lstm import LSTMForecaster
from lstm_madness.models.optimizer import BETA1, BETA2, CLIP_EPS, EPS, RMS_EPS, RMS_RHO
from lstm_madness.models.torch_trainer import clipped_step, optimizer

#: The parameters as tensors of a small network (the clipping norm spans all of them).
SHAPES = [(8, 3), (8, 2), (8,), (8,), (1, 2), (1,)]
P = sum(math.prod(s) for s in SHAPES)
STEPS = 6
LR = 0.01
RTOL, ATOL = 2e-6, 1e-7


def reference(theta: np.ndarray, grads: list[np.ndarray], lr: float, clip: float | None):
    """The specification in float64: the parameters after each step."""
    theta = theta.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = []
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if clip:
            g = g * min(1.0, clip / (np.sqrt(np.sum(g * g)) + CLIP_EPS))
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        step_size = lr / (1 - BETA1**t)
        theta = theta - step_size * m / (np.sqrt(v) / math.sqrt(1 - BETA2**t) + EPS)
        out.append(theta.copy())
    return out


def torch_steps(theta: np.ndarray, grads: list[np.ndarray], lr: float, clip: float | None):
    params, start = [], 0
    for shape in SHAPES:
        size = math.prod(shape)
        chunk = torch.from_numpy(theta[start : start + size].reshape(shape).copy())
        params.append(torch.nn.Parameter(chunk))
        start += size
    opt = optimizer(params, lr)
    out = []
    for g in grads:
        flat = torch.from_numpy(g.copy())
        start = 0
        for p in params:
            p.grad = flat[start : start + p.numel()].view_as(p).clone()
            start += p.numel()
        clipped_step(opt, params, clip)
        out.append(torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy())
    return out


def compiled_steps(theta: np.ndarray, grads: list[np.ndarray], lr: float, clip: float | None):
    k = kernels()
    params = theta.copy()
    m, v = np.zeros_like(params), np.zeros_like(params)
    out = []
    for step, g in enumerate(grads, start=1):
        k.clip_adam(params, g.copy(), m, v, step, lr, float(clip) if clip else 0.0)
        out.append(params.copy())
    return out


def batched_steps(thetas: np.ndarray, grads: np.ndarray, active: np.ndarray, lr, clip):
    """``thetas`` (M, P), ``grads`` (K, M, P), ``active`` (K, M): two epochs of steps
    (the step counts carry over), a row without a batch at a step masked."""
    flat = torch.from_numpy(thetas.copy())
    adam = BatchedAdam(flat, lr, float(clip) if clip else 0.0, False)
    out = []
    half = len(grads) // 2
    for epoch in (range(half), range(half, len(grads))):
        c1, c2, bc2s, neg_step = adam.schedule(torch.from_numpy(active[list(epoch)]))
        for j, k in enumerate(epoch):
            adam.step(flat, torch.from_numpy(grads[k].copy()), c1[j], c2[j], bc2s[j], neg_step[j])
            out.append(flat.numpy().copy())
    return out


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    theta = rng.normal(size=P).astype(np.float32)
    # gradients of varying size: the norm of some steps exceeds the clip norm, not of others
    grads = [
        (rng.normal(size=P) * scale).astype(np.float32)
        for scale in (0.3, 0.05, 1.0, 0.2, 0.02, 0.5)[:STEPS]
    ]
    for g in grads:  # gradients near eps: where its placement shows
        g[:6] = (rng.normal(size=6) * 1e-8).astype(np.float32)
    return theta, grads


@pytest.mark.parametrize("clip", [None, 0.5, 100.0])
def test_three_implementations_take_the_specified_steps(problem, clip):
    theta, grads = problem
    expected = reference(theta, grads, LR, clip)
    for name, steps in (
        ("torch", torch_steps(theta, grads, LR, clip)),
        ("compiled", compiled_steps(theta, grads, LR, clip)),
    ):
        for t, (got, want) in enumerate(zip(steps, expected, strict=True), start=1):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} {t}")
    # batched: row 0 the same problem; row 1 other gradients, without a batch at step 3
    rng = np.random.default_rng(8)
    other = [(rng.normal(size=P) * 0.4).astype(np.float32) for _ in range(STEPS)]
    active = np.ones((STEPS, 2), dtype=bool)
    active[2, 1] = False
    thetas = np.stack([theta, theta[::-1].copy()])
    got = batched_steps(
        thetas, np.stack([np.stack(grads), np.stack(other)], axis=1), active, LR, clip
    )
    for t, (row, want) in enumerate(zip(got, expected, strict=True), start=1):
        np.testing.assert_allclose(row[0], want, rtol=RTOL, atol=ATOL, err_msg=f"batched {t}")
    kept = [g for g, a in zip(other, active[:, 1], strict=True) if a]
    expected_other = reference(thetas[1], kept, LR, clip)
    rows = [row[1] for row in got]
    np.testing.assert_array_equal(rows[2], rows[1])  # the masked step leaves the row alone
    del rows[2]
    for t, (row, want) in enumerate(zip(rows, expected_other, strict=True), start=1):
        np.testing.assert_allclose(row, want, rtol=RTOL, atol=ATOL, err_msg=f"batched row 1 {t}")


def test_the_torch_trainer_uses_torchs_defaults():
    """The constants of the specification are torch.optim.Adam's and clip_grad_norm_'s."""
    opt = optimizer([torch.nn.Parameter(torch.zeros(2))], 0.1)
    assert (
        opt.defaults["betas"]
        == (BETA1, BETA2)
        == torch.optim.Adam([torch.zeros(1)]).defaults["betas"]
    )
    assert opt.defaults["eps"] == EPS == 1e-8
    assert opt.defaults["weight_decay"] == 0 and not opt.defaults["amsgrad"]
    # clip_grad_norm_'s coefficient: max_norm / (norm + 1e-6)
    p = torch.nn.Parameter(torch.zeros(1))
    p.grad = torch.tensor([2.0])
    torch.nn.utils.clip_grad_norm_([p], 1.0)
    assert p.grad.item() == pytest.approx(1.0 / (2.0 + CLIP_EPS) * 2.0, rel=1e-7)


# ------------------------------------------------------------------ RMSprop


def rmsprop_reference(theta: np.ndarray, grads: list[np.ndarray], lr: float, clip):
    """The RMSprop specification in float64: the parameters after each step."""
    theta = theta.astype(np.float64)
    v = np.zeros_like(theta)
    out = []
    for g in grads:
        g = g.astype(np.float64)
        if clip:
            g = g * min(1.0, clip / (np.sqrt(np.sum(g * g)) + CLIP_EPS))
        v = RMS_RHO * v + (1 - RMS_RHO) * g * g
        theta = theta - lr * g / (np.sqrt(v) + RMS_EPS)
        out.append(theta.copy())
    return out


def torch_rmsprop_steps(theta, grads, lr, clip):
    params, start = [], 0
    for shape in SHAPES:
        size = math.prod(shape)
        chunk = torch.from_numpy(theta[start : start + size].reshape(shape).copy())
        params.append(torch.nn.Parameter(chunk))
        start += size
    opt = optimizer(params, lr, "rmsprop")
    out = []
    for g in grads:
        flat = torch.from_numpy(g.copy())
        start = 0
        for p in params:
            p.grad = flat[start : start + p.numel()].view_as(p).clone()
            start += p.numel()
        clipped_step(opt, params, clip)
        out.append(torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy())
    return out


def compiled_rmsprop_steps(theta, grads, lr, clip):
    k = kernels()
    params = theta.copy()
    v = np.zeros_like(params)
    out = []
    for g in grads:
        k.clip_rmsprop(params, g.copy(), v, lr, float(clip) if clip else 0.0)
        out.append(params.copy())
    return out


def batched_rmsprop_steps(thetas, grads, active, lr, clip, compile_=False):
    flat = torch.from_numpy(thetas.copy())
    opt = BatchedRMSprop(flat, lr, float(clip) if clip else 0.0, compile_)
    out = []
    half = len(grads) // 2
    for epoch in (range(half), range(half, len(grads))):
        c1, c2, bc2s, neg_step = opt.schedule(torch.from_numpy(active[list(epoch)]))
        for j, k in enumerate(epoch):
            opt.step(flat, torch.from_numpy(grads[k].copy()), c1[j], c2[j], bc2s[j], neg_step[j])
            out.append(flat.numpy().copy())
    return out


@pytest.mark.parametrize("clip", [None, 0.5, 100.0])
def test_three_implementations_take_the_specified_rmsprop_steps(problem, clip):
    theta, grads = problem
    expected = rmsprop_reference(theta, grads, LR, clip)
    assert not np.allclose(expected[-1], reference(theta, grads, LR, clip)[-1])
    for name, steps in (
        ("torch", torch_rmsprop_steps(theta, grads, LR, clip)),
        ("compiled", compiled_rmsprop_steps(theta, grads, LR, clip)),
    ):
        for t, (got, want) in enumerate(zip(steps, expected, strict=True), start=1):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} {t}")
    # batched: row 0 the same problem; row 1 other gradients, without a batch at step 3
    rng = np.random.default_rng(8)
    other = [(rng.normal(size=P) * 0.4).astype(np.float32) for _ in range(STEPS)]
    active = np.ones((STEPS, 2), dtype=bool)
    active[2, 1] = False
    thetas = np.stack([theta, theta[::-1].copy()])
    stacked = np.stack([np.stack(grads), np.stack(other)], axis=1)
    for compile_ in (False, True):  # compile_ runs the same eager update
        got = batched_rmsprop_steps(thetas, stacked, active, LR, clip, compile_)
        for t, (row, want) in enumerate(zip(got, expected, strict=True), start=1):
            np.testing.assert_allclose(row[0], want, rtol=RTOL, atol=ATOL, err_msg=f"row 0 {t}")
        kept = [g for g, a in zip(other, active[:, 1], strict=True) if a]
        expected_other = rmsprop_reference(thetas[1], kept, LR, clip)
        rows = [row[1] for row in got]
        np.testing.assert_array_equal(rows[2], rows[1])  # the masked step leaves the row alone
        del rows[2]
        for t, (row, want) in enumerate(zip(rows, expected_other, strict=True), start=1):
            np.testing.assert_allclose(row, want, rtol=RTOL, atol=ATOL, err_msg=f"row 1 {t}")


def test_the_torch_trainers_rmsprop_is_keras_rmsprop():
    """ρ = 0.9 and ε = 1e-7 (Keras's RMSprop defaults), no momentum, not centered."""
    opt = optimizer([torch.nn.Parameter(torch.zeros(2))], 0.1, "rmsprop")
    assert isinstance(opt, torch.optim.RMSprop)
    assert opt.defaults["alpha"] == RMS_RHO == 0.9
    assert opt.defaults["eps"] == RMS_EPS == 1e-7
    assert opt.defaults["momentum"] == 0 and not opt.defaults["centered"]
    assert opt.defaults["weight_decay"] == 0
    assert isinstance(optimizer([torch.nn.Parameter(torch.zeros(2))], 0.1), torch.optim.Adam)


@pytest.mark.parametrize("trainer", ["torch", "batched", "compiled"])
def test_rmsprop_trains_on_each_trainer(trainer):
    """``optimizer="rmsprop"`` end to end: fits, predicts finite values, and is not Adam."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 5, 2))
    y = 0.5 * X[:, -1, 0] + 0.1 * rng.normal(size=120)
    kw = dict(units=(4,), epochs=3, batch_size=16, patience=2, trainer=trainer, device="cpu")
    rms = LSTMForecaster(**kw, optimizer="rmsprop").fit(X, y)
    adam = LSTMForecaster(**kw).fit(X, y)
    assert rms.trainer_ == adam.trainer_ == trainer
    pred = rms.predict(X)
    assert pred.shape == (120,) and np.isfinite(pred).all()
    assert not np.allclose(pred, adam.predict(X))
    # the same steps as the reference loop, to float32 rounding over a few epochs
    reference_fit = LSTMForecaster(**{**kw, "trainer": "torch"}, optimizer="rmsprop").fit(X, y)
    np.testing.assert_allclose(pred, reference_fit.predict(X), rtol=1e-3, atol=1e-4)


def test_an_unknown_optimizer_is_refused():
    with pytest.raises(ConfigError, match="optimizer 'sgd' is not one of adam, rmsprop"):
        LSTMForecaster(units=(4,), optimizer="sgd").fit(np.zeros((20, 3, 1)), np.zeros(20))

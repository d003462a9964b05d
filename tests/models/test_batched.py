"""Batched multi-model training equals training each model alone.

The reference is the solo protocol written out here from its specification (plain
``nn.LSTM``/``nn.GRU`` stack + ``torch.optim.Adam``), so the engine is checked against the
protocol itself; a second test checks against ``LSTMForecaster``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models import batched_net
from lstm_madness.models.batched import TrainSpec, train_many
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.network import RecurrentNet
from lstm_madness.models.protocol import split_validation, target_scaling


class RefNet(nn.Module):
    """The RecurrentNet contract: a stack of 1-layer nn.LSTM/nn.GRU, dropout, linear head."""

    def __init__(
        self, n_features: int, units: Sequence[int], cell: str = "lstm", dropout: float = 0.0
    ) -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        sizes = [n_features, *units]
        self.rnns = nn.ModuleList(
            [rnn(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))]
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(units[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, F) → (B,)
        h = x
        for rnn in self.rnns:
            h, _ = rnn(h)
            h = self.dropout(h)
        return self.head(h[:, -1, :]).squeeze(-1)


LOSS_FNS = {
    "mse": F.mse_loss,
    "huber": lambda p, y: F.huber_loss(p, y, delta=1.0),
    "bce": F.binary_cross_entropy_with_logits,
}


def solo_train(
    net,
    X,
    y,
    seed,
    *,
    epochs,
    batch_size,
    learning_rate,
    loss,
    clip_norm=1.0,
    patience=0,
    validation_fraction=0.0,
    validation_gap=0,
    min_delta=0.0,
    device="cpu",
):
    """The reference protocol for one model (``net`` already on ``device``); returns the
    number of epochs run."""
    X, y = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    n = len(X)
    validating = patience > 0 and validation_fraction > 0
    if validating:
        n_val = max(1, math.ceil(validation_fraction * n))
        Xv, yv = X[n - n_val :], y[n - n_val :]
        n_fit = n - n_val - validation_gap
    else:
        n_fit = n
    Xf, yf = X[:n_fit], y[:n_fit]
    fn = LOSS_FNS[loss]
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    gen = torch.Generator(device).manual_seed(seed)
    best, wait, best_state, epoch = math.inf, 0, None, 0
    for epoch in range(1, epochs + 1):  # noqa: B007
        net.train()
        perm = torch.randperm(n_fit, generator=gen, device=device)
        for i in range(0, n_fit, batch_size):
            b = perm[i : i + batch_size]
            out = fn(net(Xf[b]), yf[b])
            opt.zero_grad()
            out.backward()
            if clip_norm:
                nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
            opt.step()
        if validating:
            net.eval()
            with torch.no_grad():
                val = fn(net(Xv), yv).item()
            if val < best - min_delta:
                best, wait = val, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                wait += 1
                if wait >= patience:
                    break
    if validating:
        net.load_state_dict(best_state)
    return epoch


def make_data(n: int, T: int, F_: int, seed: int, loss: str):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F_)).astype(np.float32)
    y = X[:, -1, 0] * 0.5 + X[:, 0, -1] * 0.25 + rng.normal(scale=0.5, size=n)
    if loss == "bce":
        y = (y > 0).astype(np.float32)
    return X, y.astype(np.float32)


def build(seed: int, n_features: int, units, cell, dropout=0.0):
    torch.manual_seed(seed)
    return RefNet(n_features, units, cell, dropout)


def flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


KW = dict(
    epochs=6,
    batch_size=8,
    learning_rate=0.01,
    clip_norm=0.5,
    patience=2,
    validation_fraction=0.2,
    validation_gap=2,
)
SEEDS, LENGTHS, T, NF = [3, 11, 7], [61, 40, 53], 4, 2


def run_both(cell, units, loss, **overrides):
    """Train the three models batched and alone; return [(batched net, solo net, result,
    solo epochs, X)]."""
    kw = {**KW, "loss": loss, **overrides}
    data = [make_data(n, T, NF, s + 100, loss) for n, s in zip(LENGTHS, SEEDS, strict=True)]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, SEEDS, strict=True)]
    nets = [build(s, NF, units, cell) for s in SEEDS]
    results = train_many(nets, specs, **kw)
    out = []
    for net, (X, y), s, res in zip(nets, data, SEEDS, results, strict=True):
        ref = build(s, NF, units, cell)
        out.append((net, ref, res, solo_train(ref, X, y, s, **kw), X))
    return out


def assert_same(net, ref, X):
    torch.testing.assert_close(flat(net), flat(ref), atol=1e-5, rtol=1e-4)
    net.eval(), ref.eval()
    with torch.no_grad():
        xt = torch.from_numpy(X)
        torch.testing.assert_close(net(xt), ref(xt), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("cell", "units", "loss"),
    [
        ("lstm", (8,), "mse"),
        ("gru", (8,), "huber"),
        ("lstm", (8, 6), "bce"),
        ("gru", (6, 5), "mse"),
    ],
)
def test_batched_equals_solo(cell, units, loss):
    runs = run_both(cell, units, loss)
    for net, ref, res, epochs_run, X in runs:
        assert res.epochs_run == epochs_run
        assert len(res.history) == epochs_run
        assert 1 <= res.best_epoch <= res.epochs_run
        assert all("val_loss" in h for h in res.history)
        assert_same(net, ref, X)
    # the fixture exercises what it should: early stops and restores of earlier weights
    if (cell, units) == ("lstm", (8,)):
        assert any(r.epochs_run < KW["epochs"] for _, _, r, _, _ in runs)
        assert any(r.best_epoch < r.epochs_run for _, _, r, _, _ in runs)


def test_batched_equals_solo_without_validation_or_clipping():
    for net, ref, res, epochs_run, X in run_both(
        "lstm", (8,), "mse", patience=0, clip_norm=None, epochs=3
    ):
        assert res.epochs_run == epochs_run == 3
        assert res.best_epoch == 3
        assert all("val_loss" not in h for h in res.history)
        assert_same(net, ref, X)


def test_models_leaving_at_different_epochs_equal_solo():
    """Early-stopped models leave the stack one epoch at a time; the rest are unaffected."""
    seeds, lengths = [0, 1, 2, 3, 4, 5], [30, 64, 41, 52, 30, 47]
    kw = {**KW, "loss": "mse", "patience": 1, "epochs": 8, "learning_rate": 0.05}
    data = [make_data(n, T, NF, s, "mse") for n, s in zip(lengths, seeds, strict=True)]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, seeds, strict=True)]
    nets = [build(s, NF, (5,), "lstm") for s in seeds]
    results = train_many(nets, specs, **kw)
    assert len({r.epochs_run for r in results}) >= 3  # several distinct stopping epochs
    for net, (X, y), s, res in zip(nets, data, seeds, results, strict=True):
        ref = build(s, NF, (5,), "lstm")
        assert res.epochs_run == solo_train(ref, X, y, s, **kw)
        assert_same(net, ref, X)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_single_time_step_equals_solo(cell):
    kw = {**KW, "loss": "mse", "epochs": 3}
    data = [make_data(n, 1, NF, s, "mse") for n, s in ((30, 1), (22, 2))]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, (1, 2), strict=True)]
    nets = [build(s, NF, (4, 3), cell) for s in (1, 2)]
    train_many(nets, specs, **kw)
    for net, (X, y), s in zip(nets, data, (1, 2), strict=True):
        ref = build(s, NF, (4, 3), cell)
        solo_train(ref, X, y, s, **kw)
        assert_same(net, ref, X)


def test_shared_and_prefix_data_equals_solo():
    """Expanding folds X[:n] of one array and seeds sharing one array are stored once."""
    X, y = make_data(70, T, NF, 5, "mse")
    jobs = [(X[:50], y[:50], 1), (X, y, 2), (X[:70], y[:70], 4), (X[:35], y[:35], 1)]
    specs = [TrainSpec(Xj, yj, s) for Xj, yj, s in jobs]
    nets = [build(s, NF, (6,), "gru") for _, _, s in jobs]
    kw = {**KW, "loss": "mse"}
    results = train_many(nets, specs, **kw)
    for net, res, (Xj, yj, s) in zip(nets, results, jobs, strict=True):
        ref = build(s, NF, (6,), "gru")
        assert res.epochs_run == solo_train(ref, Xj, yj, s, **kw)
        assert_same(net, ref, Xj)


def test_matches_lstm_forecaster():
    kw = dict(
        epochs=5,
        batch_size=8,
        learning_rate=0.01,
        patience=2,
        validation_fraction=0.2,
        validation_gap=1,
        clip_norm=1.0,
    )
    ests, nets, specs, data = [], [], [], []
    for n, s in zip(LENGTHS, SEEDS, strict=True):
        X, y = make_data(n, T, NF, s, "mse")
        y = y * 0.01 + 0.002  # return-like scale: exercises the target standardization
        est = LSTMForecaster(units=(8,), cell="gru", seed=s, device="cpu", **kw)
        ests.append(est.fit(X, y))
        n_fit, _ = split_validation(n, 0.2, 1, 2)
        mean, scale = target_scaling(y[:n_fit], "regression")
        torch.manual_seed(s)
        nets.append(RecurrentNet(NF, (8,), "gru"))
        specs.append(TrainSpec(X, (y - mean) / scale, s))
        data.append((X, mean, scale))
    results = train_many(nets, specs, loss="mse", **kw)
    for est, net, res, (X, mean, scale) in zip(ests, nets, results, data, strict=True):
        assert (res.epochs_run, res.best_epoch) == (est.epochs_run_, est.best_epoch_)
        np.testing.assert_allclose(
            [h["loss"] for h in res.history], est.history_["train_loss"], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            [h["val_loss"] for h in res.history], est.history_["val_loss"], rtol=1e-5, atol=1e-6
        )
        torch.testing.assert_close(flat(net), flat(est.net_), atol=1e-5, rtol=1e-4)
        net.eval()
        with torch.no_grad():
            ours = net(torch.from_numpy(X)).double().numpy() * scale + mean
        np.testing.assert_allclose(ours, est.predict(X), atol=1e-6)


def test_dropout_trains_and_is_deterministic():
    data = [make_data(n, T, NF, s, "mse") for n, s in zip(LENGTHS, SEEDS, strict=True)]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, SEEDS, strict=True)]
    kw = dict(epochs=4, batch_size=8, learning_rate=0.02, loss="mse")
    weights, calls = [], []
    for _ in range(2):
        nets = [build(s, NF, (8, 6), "lstm", dropout=0.3) for s in SEEDS]
        start = [flat(n).clone() for n in nets]
        results = train_many(nets, specs, **kw, progress=lambda e, r: calls.append((e, r)))
        weights.append([flat(n) for n in nets])
        for res, w0, net in zip(results, start, nets, strict=True):
            assert res.epochs_run == 4
            assert res.history[-1]["loss"] < res.history[0]["loss"]
            assert not torch.equal(w0, flat(net))
    for a, b in zip(*weights, strict=True):
        assert torch.equal(a, b)
    assert calls[:4] == [(1, 3), (2, 3), (3, 3), (4, 3)]
    # the masks are really drawn: without dropout the same seeds train differently
    nets = [build(s, NF, (8, 6), "lstm") for s in SEEDS]
    train_many(nets, specs, **kw)
    assert not torch.equal(flat(nets[0]), weights[0][0])


def test_invalid_input_is_rejected():
    X, y = make_data(20, T, NF, 0, "mse")
    kw = dict(epochs=1, batch_size=4, learning_rate=0.01, loss="mse")
    with pytest.raises(ConfigError, match="architecture"):
        train_many(
            [build(0, NF, (4,), "lstm"), build(1, NF, (5,), "lstm")],
            [TrainSpec(X, y, 0), TrainSpec(X, y, 1)],
            **kw,
        )
    with pytest.raises(ConfigError, match="loss"):
        train_many([build(0, NF, (4,), "lstm")], [TrainSpec(X, y, 0)], **{**kw, "loss": "l1"})
    with pytest.raises(ConfigError, match="specs"):
        train_many([build(0, NF, (4,), "lstm")], [], **kw)
    with pytest.raises(DataError, match="shape"):
        train_many([build(0, NF, (4,), "lstm")], [TrainSpec(X[:, :, :1], y, 0)], **kw)
    with pytest.raises(DataError):
        train_many(
            [build(0, NF, (4,), "lstm")],
            [TrainSpec(X[:2], y[:2], 0)],
            **kw,
            patience=1,
            validation_fraction=0.5,
            validation_gap=1,
        )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile (inductor) needs a C++ compiler",
)
def test_compiled_step_equals_solo():
    kw = {**KW, "loss": "mse", "epochs": 3}
    data = [make_data(n, T, NF, s + 100, "mse") for n, s in zip(LENGTHS, SEEDS, strict=True)]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, SEEDS, strict=True)]
    nets = [build(s, NF, (8,), "lstm") for s in SEEDS]
    train_many(nets, specs, **kw, compile=True)
    for net, (X, y), s in zip(nets, data, SEEDS, strict=True):
        ref = build(s, NF, (8,), "lstm")
        solo_train(ref, X, y, s, **kw)
        assert_same(net, ref, X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cuda_matches_cpu(cell, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    kw = {**KW, "loss": "mse"}
    data = [make_data(n, T, NF, s + 100, "mse") for n, s in zip(LENGTHS, SEEDS, strict=True)]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, SEEDS, strict=True)]
    # 1. one batched loss and gradient: CUDA equals CPU for the same weights and batch
    nets = [build(s, NF, (8, 6), cell) for s in SEEDS]
    arch = batched_net.arch_of(nets[0])
    xb = torch.randn(3, NF, T * 8)  # (M, F, T·B)
    yb, wb = torch.randn(3, 8), torch.full((3, 8), 1 / 8)
    grads = {}
    for dev in ("cpu", "cuda"):
        st = batched_net.NetworkStack(arch, nets, torch.device(dev))
        per_model = st.loss_fn("mse")(xb.to(dev), yb.to(dev), wb.to(dev), T, None)
        grads[dev] = [g.cpu() for g in torch.autograd.grad(per_model.sum(), st.params)]
        grads[dev].append(per_model.detach().cpu())
    for a, b in zip(grads["cpu"], grads["cuda"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # 2. whole trainings: the batch order comes from per-device generators (as in the solo
    # loop on that device), so CUDA is checked against the solo protocol on CUDA
    gpu = [build(s, NF, (8, 6), cell).cuda() for s in SEEDS]
    results = train_many(gpu, specs, **kw, device="cuda")
    for net, (X, y), s, res in zip(gpu, data, SEEDS, results, strict=True):
        ref = build(s, NF, (8, 6), cell).cuda()
        assert res.epochs_run == solo_train(ref, X, y, s, **kw, device="cuda")
        torch.testing.assert_close(flat(net).cpu(), flat(ref).cpu(), atol=1e-4, rtol=1e-3)


def test_fit_forecasters_equals_fit_alone_and_checks_inputs():
    rng = np.random.default_rng(3)
    data = [
        (rng.normal(size=(n, 4, 2)).astype(np.float32), rng.normal(size=n) * 0.01)
        for n in (90, 130)
    ]
    kw = dict(
        units=(6,),
        time_steps=4,
        epochs=4,
        batch_size=16,
        patience=2,
        validation_fraction=0.2,
        device="cpu",
    )
    together = fit_forecasters([LSTMForecaster(seed=s, **kw) for s in (0, 1)], data)
    for seed, est, (X, y) in zip((0, 1), together, data, strict=True):
        alone = LSTMForecaster(seed=seed, **kw).fit(X, y)
        assert est.epochs_run_ == alone.epochs_run_
        np.testing.assert_allclose(est.predict(X), alone.predict(X), rtol=1e-4, atol=1e-7)
    bad = [(X, np.full(len(X), 0.5)) for X, _ in data]
    with pytest.raises(DataError, match="0 or 1"):
        fit_forecasters([LSTMForecaster(task="classification", **kw) for _ in bad], bad)

"""RecurrentNet and LSTMForecaster: shapes, the training protocol, determinism, learning."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from lstm_madness.errors import ConfigError, DataError, MadnessError
from lstm_madness.evaluation.metrics import r2_oos
from lstm_madness.features import make_windows
from lstm_madness.models.lstm import LSTMForecaster
from lstm_madness.models.network import RecurrentNet
from lstm_madness.models.protocol import make_loss, resolve_loss, split_validation, target_scaling

FAST = dict(units=(8,), epochs=4, batch_size=16, device="cpu")


def _data(n: int = 120, T: int = 5, F: int = 2, seed: int = 0, task: str = "regression"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F)).astype(np.float32)
    y = 0.01 * (0.5 * X[:, -1, 0] + rng.normal(scale=0.5, size=n))
    if task == "classification":
        y = (y > 0).astype(np.float64)
    return X, y


# ------------------------------------------------------------------ network


@pytest.mark.parametrize(("cell", "rnn"), [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_recurrent_net_structure_and_shapes(cell, rnn):
    net = RecurrentNet(3, (8, 4), cell=cell, dropout=0.1)
    assert [type(m) for m in net.rnns] == [rnn, rnn]
    assert [(m.input_size, m.hidden_size, m.num_layers, m.batch_first) for m in net.rnns] == [
        (3, 8, 1, True),
        (8, 4, 1, True),
    ]
    assert net.head.in_features == 4 and net.head.out_features == 1
    assert net(torch.zeros(6, 5, 3)).shape == (6,)  # (B, T, F) -> (B,)


def test_dropout_follows_every_layer_including_the_last():
    torch.manual_seed(0)
    net = RecurrentNet(2, (8,), dropout=0.5)  # one layer: only the post-layer dropout
    x = torch.randn(4, 3, 2)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)


def test_recurrent_net_uses_the_last_time_step_only():
    torch.manual_seed(0)
    net = RecurrentNet(1, (4,)).eval()
    x = torch.randn(2, 6, 1)
    y = x.clone()
    y[:, :, 0] = torch.randn(2, 6)
    y[:, -1] = x[:, -1]
    # different histories give different outputs (the state carries them) ...
    assert not torch.allclose(net(x), net(y))
    # ... and the output is the head applied to the last step's hidden state
    h, _ = net.rnns[0](x)
    torch.testing.assert_close(net(x), net.head(h[:, -1]).squeeze(-1))


# ------------------------------------------------------------------ pieces


def test_split_validation():
    assert split_validation(100, 0.1, 0, 10) == (90, 10)
    assert split_validation(100, 0.1, 4, 10) == (86, 10)
    assert split_validation(101, 0.1, 0, 10) == (90, 11)  # ceil
    assert split_validation(5, 0.01, 0, 3) == (4, 1)  # at least one
    assert split_validation(100, 0.1, 4, 0) == (100, 0)  # no patience: no validation
    assert split_validation(100, 0.0, 4, 10) == (100, 0)
    with pytest.raises(DataError, match="too few"):
        split_validation(3, 0.4, 1, 5)


def test_losses_and_target_scaling():
    p, y = torch.tensor([0.0, 3.0]), torch.tensor([1.0, 0.0])
    assert make_loss("mse")(p, y).item() == pytest.approx(5.0)
    assert make_loss("huber")(p, y).item() == pytest.approx((0.5 + 2.5) / 2)  # delta 1
    bce = -(math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-3.0)))) / 2
    assert make_loss("bce")(p, y).item() == pytest.approx(bce, rel=1e-6)
    assert resolve_loss("auto", "regression") == "mse"
    assert resolve_loss("auto", "classification") == "bce"
    with pytest.raises(ConfigError, match="does not fit"):
        resolve_loss("bce", "regression")
    with pytest.raises(ConfigError):
        make_loss("hinge")
    assert target_scaling(np.array([1.0, 3.0]), "regression") == (2.0, 1.0)
    assert target_scaling(np.array([2.0, 2.0]), "regression") == (2.0, 1.0)
    assert target_scaling(np.array([0.0, 1.0]), "classification") == (0.0, 1.0)


# ------------------------------------------------------------------ protocol


def _reference_fit(
    X, y, *, units, cell, epochs, batch_size, lr, patience, vf, gap, seed, clip, task="regression"
):
    """The documented protocol, written out independently of LSTMForecaster."""
    torch.manual_seed(seed)
    net = RecurrentNet(X.shape[2], units, cell)
    n = len(X)
    n_val = max(1, math.ceil(vf * n)) if patience > 0 and vf > 0 else 0
    n_fit = n - n_val - gap if n_val else n
    mean, scale = (0.0, 1.0) if task == "classification" else (y[:n_fit].mean(), y[:n_fit].std())
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor((y - mean) / scale, dtype=torch.float32)
    fn = nn.BCEWithLogitsLoss() if task == "classification" else nn.MSELoss()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    best, wait, state = math.inf, 0, None
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n_fit, generator=gen)
        for i in range(0, n_fit, batch_size):
            b = perm[i : i + batch_size]
            loss = fn(net(Xt[:n_fit][b]), yt[:n_fit][b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
        if n_val:
            net.eval()
            with torch.no_grad():
                val = fn(net(Xt[n - n_val :]), yt[n - n_val :]).item()
            if val < best:
                best, wait, state = val, 0, copy.deepcopy(net.state_dict())
            else:
                wait += 1
                if wait >= patience:
                    break
    if state is not None:
        net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        out = net(Xt)
    if task == "classification":
        return torch.sigmoid(out).double().numpy()
    return out.double().numpy() * scale + mean


@pytest.mark.parametrize(("cell", "task"), [("lstm", "regression"), ("gru", "classification")])
def test_fit_follows_the_documented_protocol(cell, task):
    X, y = _data(90, task=task, seed=1)
    kw = dict(units=(6,), cell=cell, epochs=6, batch_size=16, seed=3)
    est = LSTMForecaster(
        **kw,
        task=task,
        learning_rate=0.01,
        patience=2,
        validation_fraction=0.2,
        validation_gap=2,
        clip_norm=0.5,
        device="cpu",
    ).fit(X, y)
    ref = _reference_fit(
        X,
        y,
        units=(6,),
        cell=cell,
        epochs=6,
        batch_size=16,
        lr=0.01,
        patience=2,
        vf=0.2,
        gap=2,
        seed=3,
        clip=0.5,
        task=task,
    )
    np.testing.assert_allclose(est.predict(X), ref, rtol=1e-5, atol=1e-7)
    assert (est.n_train_, est.n_val_) == (70, 18)


def test_early_stopping_restores_the_best_weights():
    X, y = _data(150, seed=2)
    y = np.random.default_rng(9).normal(scale=0.01, size=len(y))  # pure noise: overfits
    est = LSTMForecaster(
        units=(16,),
        epochs=60,
        batch_size=16,
        learning_rate=0.02,
        patience=3,
        validation_fraction=0.2,
        device="cpu",
    ).fit(X, y)
    val = est.history_["val_loss"]
    assert est.epochs_run_ < 60 and len(val) == len(est.history_["train_loss"]) == est.epochs_run_
    assert est.best_epoch_ == int(np.argmin(val)) + 1
    assert est.epochs_run_ == est.best_epoch_ + 3  # stopped after `patience` bad epochs
    assert est.best_val_loss_ == min(val)
    # the kept weights are the best epoch's: recompute their validation loss
    n_val = est.n_val_
    yv = (y[-n_val:] - est.y_mean_) / est.y_scale_
    pred = (est.predict(X[-n_val:]) - est.y_mean_) / est.y_scale_
    assert np.mean((pred - yv) ** 2) == pytest.approx(est.best_val_loss_, rel=1e-4)
    assert not est.net_.training


def test_without_validation_all_epochs_run():
    X, y = _data(60)
    calls = []
    est = LSTMForecaster(
        **FAST, patience=0, clip_norm=None, progress=lambda e, tr, va: calls.append((e, tr, va))
    ).fit(X, y)
    assert est.epochs_run_ == est.best_epoch_ == 4 and est.n_val_ == 0
    assert est.best_val_loss_ is None and est.history_["val_loss"] == []
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert all(isinstance(c[1], float) and c[2] is None for c in calls)
    calls.clear()
    LSTMForecaster(**FAST, patience=5, progress=lambda *a: calls.append(a)).fit(X, y)
    assert all(isinstance(c[2], float) for c in calls)


# ------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_deterministic_on_cpu(cell):
    X, y = _data(100, seed=4)
    kw = dict(FAST, cell=cell, dropout=0.2, seed=7)
    a = LSTMForecaster(**kw).fit(X, y).predict(X)
    b = LSTMForecaster(**kw).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    c = LSTMForecaster(**dict(kw, seed=8)).fit(X, y).predict(X)
    assert not np.array_equal(a, c)


def test_regression_targets_are_standardized():
    X, y = _data(100, seed=5)
    a = LSTMForecaster(**FAST).fit(X, y)
    b = LSTMForecaster(**FAST).fit(X, 100 * y + 3)
    assert a.y_mean_ == pytest.approx(np.mean(y[: a.n_train_]))
    assert a.y_scale_ == pytest.approx(np.std(y[: a.n_train_]))
    # the network sees the same standardized targets: forecasts are an affine copy
    np.testing.assert_allclose(b.predict(X), 100 * a.predict(X) + 3, rtol=1e-4)
    assert a.predict(X).dtype == np.float64


def test_classification_outputs_probabilities():
    X, y = _data(100, task="classification", seed=6)
    est = LSTMForecaster(**FAST, task="classification").fit(X, y)
    p = est.predict(X)
    assert p.shape == (100,) and ((p > 0) & (p < 1)).all() and est.loss_ == "bce"
    assert (est.y_mean_, est.y_scale_) == (0.0, 1.0)
    with pytest.raises(DataError, match="0 or 1"):
        LSTMForecaster(**FAST, task="classification").fit(X, y * 2)


def test_learns_an_ar1_series():
    """phi = 0.5: the best forecast explains phi² = 25% of the variance out of sample."""
    rng = np.random.default_rng(0)
    n, phi = 610, 0.5
    x = np.zeros(n)
    eps = rng.normal(0, 0.01, n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + eps[t]
    X = make_windows((x / 0.01)[:, None], 5)[:-1]  # window ending at t
    y = x[5:]  # the next value
    cut = 450
    est = LSTMForecaster(units=(16,), epochs=30, patience=5, seed=0, device="cpu")
    pred = est.fit(X[:cut], y[:cut]).predict(X[cut:])
    assert r2_oos(y[cut:], pred, np.mean(y[:cut])) > 0.1


# ------------------------------------------------------------------ errors


def test_errors():
    X, y = _data(40)
    with pytest.raises(MadnessError, match="not fitted"):
        LSTMForecaster().predict(X)
    for bad in (
        dict(units=()),
        dict(units=(0,)),
        dict(cell="rnn"),
        dict(dropout=1.0),
        dict(task="ranking"),
        dict(loss="bce"),
        dict(epochs=0),
        dict(batch_size=0),
        dict(learning_rate=0.0),
        dict(validation_fraction=1.0),
        dict(device="tpu"),
        dict(clip_norm=-1.0),
        dict(patience=-1),
    ):
        with pytest.raises(ConfigError):
            LSTMForecaster(**{**FAST, **bad}).fit(X, y)
    with pytest.raises(DataError, match="time steps"):
        LSTMForecaster(**FAST, time_steps=7).fit(X, y)
    with pytest.raises(DataError, match="samples"):
        LSTMForecaster(**FAST).fit(X, y[:-1])
    with pytest.raises(DataError, match="NaN"):
        LSTMForecaster(**FAST).fit(X, np.where(np.arange(40) == 3, np.nan, y))
    est = LSTMForecaster(**FAST).fit(X, y)
    with pytest.raises(DataError, match="shape"):
        est.predict(X[:, :3])
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda"):
            LSTMForecaster(**{**FAST, "device": "cuda"}).fit(X, y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_closely():
    X, y = _data(100, seed=7)
    cpu = LSTMForecaster(**FAST).fit(X, y).predict(X)
    gpu = LSTMForecaster(**{**FAST, "device": "cuda"}).fit(X, y).predict(X)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-5)

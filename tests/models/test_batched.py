"""Batched multi-model training equals training each model alone.

The reference is the solo protocol written out here from its specification (plain
``nn.LSTM``/``nn.GRU`` stack + ``torch.optim.Adam``), so the engine is checked against the
protocol itself; a second test checks against ``LSTMForecaster`` when it exists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models.batched import TrainSpec, split_sizes, train_many


class RefNet(nn.Module):
    """The RecurrentNet contract: a stack of 1-layer nn.LSTM/nn.GRU, dropout, linear head."""

    def __init__(self, n_features: int, units: Sequence[int], cell: str = "lstm",
                 dropout: float = 0.0) -> None:
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


def solo_train(net, X, y, seed, *, epochs, batch_size, learning_rate, loss, clip_norm=1.0,
               patience=0, validation_fraction=0.0, validation_gap=0, min_delta=0.0):
    """The reference protocol for one model; returns (epochs_run, best_epoch)."""
    X, y = torch.from_numpy(X), torch.from_numpy(y)
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
    gen = torch.Generator("cpu").manual_seed(seed)
    best, wait, best_state, best_epoch, epoch = math.inf, 0, None, 0, 0
    for epoch in range(1, epochs + 1):  # noqa: B007
        net.train()
        perm = torch.randperm(n_fit, generator=gen)
        for i in range(0, n_fit, batch_size):
            b = perm[i : i + batch_size]
            out = fn(net(Xf[b]), yf[b])
            opt.zero_grad()
            out.backward()
            if clip_norm:
                nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
            opt.step()
        best_epoch = epoch
        if validating:
            net.eval()
            with torch.no_grad():
                val = fn(net(Xv), yv).item()
            if val < best - min_delta:
                best, wait, best_epoch = val, 0, epoch
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                wait += 1
                best_epoch = None
                if wait >= patience:
                    break
    if validating:
        net.load_state_dict(best_state)
    return epoch


def make_data(n: int, T: int, F_: int, seed: int, loss: str):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F_)).astype(np.float32)
    y = (X[:, -1, 0] * 0.5 + X[:, -2, 0] * 0.25 + rng.normal(scale=0.5, size=n))
    if loss == "bce":
        y = (y > 0).astype(np.float32)
    return X, y.astype(np.float32)


def build(seed: int, n_features: int, units, cell, dropout=0.0):
    torch.manual_seed(seed)
    return RefNet(n_features, units, cell, dropout)


def flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


@pytest.mark.parametrize(
    ("cell", "units", "loss"),
    [("lstm", (8,), "mse"), ("gru", (8,), "huber"), ("lstm", (8, 6), "bce"),
     ("gru", (6, 5), "mse")],
)
def test_batched_equals_solo(cell, units, loss):
    T, F_ = 4, 2
    seeds, lengths = [3, 11, 7], [61, 40, 53]
    kw = dict(epochs=6, batch_size=8, learning_rate=0.01, loss=loss, clip_norm=0.5,
              patience=2, validation_fraction=0.2, validation_gap=2)
    data = [make_data(n, T, F_, s + 100, loss) for n, s in zip(lengths, seeds, strict=True)]
    specs = [TrainSpec(X, y, s) for (X, y), s in zip(data, seeds, strict=True)]
    nets = [build(s, F_, units, cell) for s in seeds]
    results = train_many(nets, specs, **kw)
    for net, (X, y), s, res in zip(nets, data, seeds, results, strict=True):
        ref = build(s, F_, units, cell)
        epochs_run = solo_train(ref, X, y, s, **kw)
        assert res.epochs_run == epochs_run
        assert len(res.history) == epochs_run
        torch.testing.assert_close(flat(net), flat(ref), atol=1e-5, rtol=1e-4)
        net.eval(), ref.eval()
        with torch.no_grad():
            xt = torch.from_numpy(X)
            torch.testing.assert_close(net(xt), ref(xt), atol=1e-5, rtol=1e-4)

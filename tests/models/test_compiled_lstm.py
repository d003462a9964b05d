"""The compiled trainer's one-layer LSTM path by parts (``models/compiled_lstm.py``).

It follows the reference protocol like the rest of the compiled trainer (dropout 0:
losses and predictions equal the ``torch`` trainer's to float32 rounding), its gradients
equal autograd's, and its result does not depend on how many threads ran the parts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_madness import jit
from lstm_madness.models.compiled import fit_compiled
from lstm_madness.models.compiled_lstm import MIN_BATCH_STEPS, PART_ROWS, uses_parts
from lstm_madness.models.lstm import LSTMForecaster
from lstm_madness.models.network import RecurrentNet, flat_parameters
from lstm_madness.models.protocol import TrainingJob, check_data, make_loss

RTOL = 2e-4
STEPS = 48
BATCH = 200  # a full part and a narrower one; 200 x 48 window-steps take the parts path


def _data(n: int = 700, steps: int = STEPS, features: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, steps, features)).astype(np.float32)
    y = 0.5 * X[:, -1, 0] - 0.3 * X[:, -3, 1] + 0.2 * rng.standard_normal(n)
    return X, y


def _kw(loss: str, optimizer: str, **extra):
    kw = dict(
        units=(12,), batch_size=BATCH, epochs=3, loss=loss, patience=5, seed=3,
        device="cpu", optimizer=optimizer, learning_rate=5e-3,
        task="classification" if loss == "bce" else "regression",
    )  # fmt: skip
    return {**kw, **extra}


def test_the_path_is_taken_for_one_layer_lstms_with_enough_work():
    assert uses_parts("lstm", (12,), BATCH, STEPS)
    assert uses_parts("lstm", (25,), 512, 240)
    assert not uses_parts("lstm", (12, 4), BATCH, STEPS)  # stacked
    assert not uses_parts("gru", (12,), BATCH, STEPS)
    assert not uses_parts("lstm", (12,), 32, 5)  # the thread hand-off would cost more
    assert BATCH % PART_ROWS and BATCH * STEPS >= MIN_BATCH_STEPS


@pytest.mark.parametrize(
    ("loss", "optimizer", "clip"),
    [("mse", "adam", 1.0), ("huber", "rmsprop", 0.0), ("bce", "rmsprop", 1.0)],
)
def test_parts_equal_reference(loss, optimizer, clip):
    X, y = _data()
    target = (y > 0).astype(float) if loss == "bce" else (3.0 * y if loss == "huber" else y)
    kw = _kw(loss, optimizer, clip_norm=clip)
    ref = LSTMForecaster(trainer="torch", **kw).fit(X, target)
    got = LSTMForecaster(trainer="compiled", **kw).fit(X, target)
    for key in ("train_loss", "val_loss"):
        assert len(got.history_[key]) == 3
        np.testing.assert_allclose(got.history_[key], ref.history_[key], rtol=RTOL)
    np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=RTOL, atol=1e-5)
    assert (got.n_train_, got.n_val_) == (ref.n_train_, ref.n_val_)


@pytest.mark.parametrize("nb", [PART_ROWS, 37])
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_part_gradients_equal_autograd(nb, loss):
    k = jit.load("lstm_madness.models._lstm_kernels")
    X, y = _data(n=nb, steps=30, features=3, seed=1)
    target = ((y > 0) if loss == "bce" else y).astype(np.float32)
    T, F, H = 30, 3, 7
    torch.manual_seed(0)
    net = RecurrentNet(F, (H,), "lstm")
    params = flat_parameters(net)
    xb = np.zeros((T, F, nb), np.float32)
    k.gather(X, np.arange(nb), xb)
    mask = np.ones((H, nb), np.float32)
    mask[:, ::3] = 0.0  # dropout on the head's input: the reference multiplies the same way
    A = np.zeros((T, 4 * H, nb), np.float32)
    C, TC, HS = (np.zeros((T, H, nb), np.float32) for _ in range(3))
    out, dout = np.zeros(nb, np.float32), np.zeros(nb, np.float32)
    k.forward(params, F, H, xb, mask, A, C, TC, HS, np.zeros((4 * H, nb), np.float32), out)
    code = {"mse": 0, "bce": 2}[loss]
    total = jit.load("lstm_madness.models._kernels").loss_sum_grad(code, out, target, nb, nb, dout)
    grads = np.zeros_like(params)
    scratch = [np.zeros(s, np.float32) for s in ((4 * H, nb), (H, nb), (H, nb), (4 * H, nb))]
    GX, dW = np.zeros((4 * H, F, nb), np.float32), np.zeros((4 * H, H), np.float32)
    k.backward(params, F, H, xb, mask, A, C, TC, HS, dout, *scratch, GX, dW, grads)

    seq, _ = net.rnns[0](torch.from_numpy(X))
    h = seq[:, -1] * torch.from_numpy(mask.T.copy())
    ref = make_loss(loss)(net.head(h).squeeze(-1), torch.from_numpy(target))
    ref.backward()
    expected = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy()
    assert total / nb == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grads, expected, rtol=1e-4, atol=2e-6)


def _job(dropout: float = 0.2) -> TrainingJob:
    X, y = _data(n=600)
    est = LSTMForecaster(**_kw("mse", "rmsprop", dropout=dropout))
    est._validate_params()
    X, y = check_data(X, y, "regression", None)
    return TrainingJob(est.settings(), X, y, 5)


def test_the_result_does_not_depend_on_the_threads():
    one = fit_compiled(_job(), threads=1)
    two = fit_compiled(_job(), threads=2)
    again = fit_compiled(_job(), threads=2)
    assert one.history == two.history == again.history
    for a, b in ((one, two), (two, again)):
        np.testing.assert_array_equal(flat_parameters(a.net), flat_parameters(b.net))
    no_drop = fit_compiled(_job(dropout=0.0), threads=2)
    assert no_drop.history != one.history  # the masks are drawn and used


def test_subnormals_are_flushed_only_in_the_workers():
    fit_compiled(_job(), threads=2)
    tiny = np.float32(1e-38) / np.float32(100.0)  # subnormal in this (the caller's) thread
    assert tiny > 0.0

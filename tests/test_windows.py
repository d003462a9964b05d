"""Windows read from a panel on demand (``lstm_madness/windows.py``): the same windows as
a dense gather, and the same network when the compiled trainer gathers them per batch."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_madness.errors import DataError
from lstm_madness.models.lstm import LSTMForecaster
from lstm_madness.models.network import flat_parameters
from lstm_madness.models.protocol import check_windows
from lstm_madness.windows import PanelWindows

T = 64


def _panel(seed: int = 0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((300, 7, 2)).astype(np.float32)
    values[:40, 3] = np.nan  # a member without history yet
    ends = np.repeat(np.arange(T - 1, 300), 7)
    cols = np.tile(np.arange(7), 300 - T + 1)
    ok = ~((cols == 3) & (ends < 40 + T - 1))
    return values, ends[ok], cols[ok]


def test_the_windows_are_the_panels():
    values, ends, cols = _panel()
    w = PanelWindows(values, ends, cols, T)
    dense = np.asarray(w)
    assert w.shape == dense.shape == (len(ends), T, 2) and dense.dtype == np.float32
    for i in (0, 17, len(ends) - 1):
        np.testing.assert_array_equal(dense[i], values[ends[i] - T + 1 : ends[i] + 1, cols[i]])
    part = w[10:20]
    assert isinstance(part, PanelWindows) and part.values is w.values
    np.testing.assert_array_equal(np.asarray(part), dense[10:20])
    np.testing.assert_array_equal(w[np.array([5, 2])], dense[[5, 2]])
    assert check_windows(w) is w
    with pytest.raises(ValueError, match="outside"):
        PanelWindows(values, np.array([T - 2]), np.array([0]), T)


def test_a_non_finite_value_inside_a_window_is_refused_and_outside_ignored():
    values, ends, cols = _panel()
    check_windows(PanelWindows(values, ends, cols, T))  # the NaNs lie outside every window
    values = values.copy()
    values[200, 5, 1] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        check_windows(PanelWindows(values, ends, cols, T))


def test_the_compiled_trainer_gives_the_same_network_from_the_panel():
    values, ends, cols = _panel()
    w = PanelWindows(values, ends, cols, T)
    y = (values[ends, cols, 0] > 0).astype(float)  # a label known from the window itself
    kw = dict(
        units=(10,), time_steps=T, batch_size=256, epochs=2, task="classification",
        dropout=0.1, optimizer="rmsprop", trainer="compiled", seed=1,
    )  # fmt: skip
    from_panel = LSTMForecaster(**kw).fit(w, y)
    dense = LSTMForecaster(**kw).fit(np.asarray(w), y)
    assert from_panel.history_ == dense.history_
    np.testing.assert_array_equal(flat_parameters(from_panel.net_), flat_parameters(dense.net_))
    np.testing.assert_array_equal(from_panel.predict(w[:50]), dense.predict(np.asarray(w)[:50]))
    np.testing.assert_array_equal(from_panel.predict(w), dense.predict(np.asarray(w)))

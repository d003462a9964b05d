"""Decile calibration table: bins by rank, means and bands match a direct computation."""

import numpy as np
import pytest
from scipy import stats

from lstm_madness.errors import DataError
from lstm_madness.evaluation.calibration import decile_table, hits
from lstm_madness.evaluation.metrics import hit_rate


def test_deciles_match_a_direct_computation():
    rng = np.random.default_rng(0)
    n = 1003
    pred = rng.normal(0, 0.001, n)
    realized = 5 * pred + rng.normal(0, 0.01, n)
    table = decile_table(pred, realized)
    assert list(table.index) == list(range(1, 11))
    assert table["n"].sum() == n and table["n"].max() - table["n"].min() <= 1
    # bins are ranked: every prediction of bin k is below every prediction of bin k + 1
    assert (table["pred_high"].to_numpy()[:-1] <= table["pred_low"].to_numpy()[1:]).all()
    lo, hi = table.loc[3, ["pred_low", "pred_high"]]
    inside = (pred >= lo) & (pred <= hi)
    r = realized[inside]
    assert table.loc[3, "n"] == inside.sum()
    assert table.loc[3, "mean"] == pytest.approx(r.mean())
    half = stats.t.ppf(0.975, r.size - 1) * r.std(ddof=1) / np.sqrt(r.size)
    assert table.loc[3, "high"] - table.loc[3, "mean"] == pytest.approx(half)
    assert table.loc[3, "hit_rate"] == pytest.approx(hit_rate(r, pred[inside], "regression"))
    # a signal shows: the top decile earns more than the bottom one
    assert table.loc[10, "mean"] > table.loc[1, "mean"]


def test_noise_has_flat_deciles_whose_bands_mostly_cover_zero():
    rng = np.random.default_rng(2)
    table = decile_table(rng.normal(0, 0.001, 2500), rng.normal(0, 0.01, 2500))
    covered = ((table["low"] <= 0) & (table["high"] >= 0)).sum()
    assert covered >= 8


def test_ties_and_short_series():
    table = decile_table(np.zeros(25), np.arange(25) / 1000 - 0.0105)
    assert table["n"].sum() == 25 and len(table) == 10
    assert table["hit_rate"].isna().all()  # a zero forecast calls no direction: no rate
    small = decile_table(np.array([0.1, -0.1, 0.2]), np.array([0.01, 0.02, -0.01]))
    assert len(small) == 3 and small["low"].isna().all()
    with pytest.raises(DataError):
        decile_table(np.zeros(3), np.zeros(4))


def test_classification_hits_use_the_labels():
    p = np.array([0.2, 0.4, 0.6, 0.8])
    r = np.array([-0.01, 0.02, 0.01, -0.03])
    labels = (r > 0).astype(float)
    table = decile_table(p, r, labels=labels, task="classification", bins=2)
    assert list(table["hit_rate"]) == [0.5, 0.5]
    assert hits(labels, p, "classification").tolist() == [1.0, 0.0, 1.0, 0.0]
    assert np.isnan(hits(labels, np.full(4, 0.5), "classification")).all()

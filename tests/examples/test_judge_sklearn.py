"""examples/judge_sklearn.py: its forecasts are dated by the project's convention, refit
walk-forward without look-ahead, and pass the judge's file and calendar checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_madness.data.alignment import align_forecasts
from lstm_madness.data.forecasts import read_forecasts

pytest.importorskip("sklearn")

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "judge_sklearn.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("judge_sklearn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["judge_sklearn"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["judge_sklearn"]


@pytest.fixture(scope="module")
def returns(example) -> pd.Series:
    return example.load_sample_returns()


def test_csv_only_run_writes_forecasts_the_judge_accepts(example, returns, tmp_path) -> None:
    out = tmp_path / "preds.csv"
    args = ["--csv-only", "--start-year", "2017", "--n-estimators", "5", "--out", str(out)]
    assert example.main(args) == 0
    f = read_forecasts(out)
    assert f.layout == "single" and f.models == ("forecast",)
    dates = pd.DatetimeIndex(f.frame["date"])
    assert dates.min() == returns.loc["2017"].index[0]
    # every trading day of 2017-2018 but the last, whose outcome is not in the data
    assert dates.equals(returns.loc["2017":].index[:-1])
    calendar = pd.DatetimeIndex([returns.index[0] - pd.offsets.BDay(1), *returns.index])
    aligned = align_forecasts(f.frame, calendar, target="^GSPC")  # raises on any problem
    assert aligned.n_gaps == 0 and len(aligned.frame) == len(dates)
    assert np.isfinite(f.frame["prediction"]).all() and f.frame["prediction"].std() > 0


def test_features_at_t_use_returns_up_to_t(example, returns) -> None:
    X = example.lagged_features(returns, lags=3)
    t = returns.index[100]
    assert X.loc[t, "lag_0"] == returns.iloc[100]
    assert X.loc[t, "lag_2"] == returns.iloc[98]
    assert X.loc[t, "mean_5"] == pytest.approx(returns.iloc[96:101].mean())
    assert X.loc[t, "vol_20"] == pytest.approx(returns.iloc[81:101].std())


def test_no_look_ahead_canary(example, returns) -> None:
    """Perturbing returns after t never changes a forecast dated t or earlier."""
    r = returns.loc["2010":"2015"]
    kw = dict(start_year=2014, n_estimators=10, min_train_days=250)
    base = example.walk_forward_forecasts(r, **kw)
    t = pd.Timestamp("2014-07-15")
    changed = r.copy()
    after = changed.index > t
    changed[after] = changed[after] * -3 + 0.01
    moved = example.walk_forward_forecasts(changed, **kw)
    assert moved.index.equals(base.index)
    upto = base.index <= t
    np.testing.assert_array_equal(base[upto].to_numpy(), moved[upto].to_numpy())
    assert not np.allclose(base[~upto], moved[~upto])  # the canary can fail


def test_the_label_of_a_training_sample_is_known_before_the_refit(example, returns) -> None:
    """The 2015 model must not see the label dated on 2014's last day (it is 2015's first
    return): changing only that return leaves every 2015 forecast before it unchanged."""
    r = returns.loc["2011":"2015"]
    kw = dict(start_year=2015, n_estimators=10, min_train_days=250)
    base = example.walk_forward_forecasts(r, **kw)
    changed = r.copy()
    first_2015 = r.loc["2015"].index[0]
    changed[first_2015] += 0.05
    moved = example.walk_forward_forecasts(changed, **kw)
    # the forecast dated on 2015's first day uses that return as a feature, so it may move;
    # the model itself must not: take a day whose features no longer see that return
    late = base.index > r.index[r.index.get_loc(first_2015) + 25]
    np.testing.assert_array_equal(base[late].to_numpy(), moved[late].to_numpy())


def test_the_script_judges_end_to_end_offline(example, tmp_path, capsys) -> None:
    """Forecast, load the bundled sample, judge, report: one stored imported run; running
    it again stores nothing and names the run that holds the forecasts."""
    from lstm_madness import load_run
    from lstm_madness.errors import AlreadyJudgedError

    db = f"sqlite:///{tmp_path / 'ex.db'}"
    args = ["--start-year", "2017", "--n-estimators", "5", "--db", db]
    args += ["--out", str(tmp_path / "p.csv"), "--report", str(tmp_path / "report")]
    assert example.main(args) == 0
    out = capsys.readouterr().out
    assert "run 1 succeeded  target ^GSPC" in out and "verdict: " in out
    assert (tmp_path / "report" / "report.html").is_file()
    result = load_run(1, db=db)
    assert result.run.kind == "imported" and result.run.name == "sklearn-hgb"
    assert result.to_json()["n_test"] == len(pd.read_csv(tmp_path / "p.csv"))
    with pytest.raises(AlreadyJudgedError, match="run 1"):
        example.main(args)

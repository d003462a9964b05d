"""Judge a scikit-learn forecast with lstm-madness: any model, the same honest verdict.

A gradient-boosting model (``HistGradientBoostingRegressor``) forecasts tomorrow's return of
the S&P 500 from lagged returns of the sample that ships with ``arch`` (1999-2018, symbol
``^GSPC``), trained walk-forward here in the script, then handed to ``lstm_madness.judge``.
Runs offline. Needs scikit-learn: ``pip install lstm-madness[examples]``.

No look-ahead: the features dated t use returns up to the close of t (the return ending at
t included); the label dated t is the return from close t to close t+1, so a prediction
dated t follows the project's ``next_day`` convention. Refits are yearly on an expanding
window: the model that forecasts year Y is fitted on the samples whose label is known by the
last close before Y (their label date is on or before it).

Usage::

    python examples/judge_sklearn.py --csv-only --out preds.csv   # the forecasts only
    python examples/judge_sklearn.py --db sqlite:///madness.db    # forecast, then judge

The judging part loads the S&P 500 sample into the store (as ``madness ingest --sample
sp500`` does; loading it again changes nothing) and prints the verdict.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SYMBOL = "^GSPC"
#: Rolling windows (trading days) of the trailing mean and volatility features.
WINDOWS = (5, 20)


def load_sample_returns() -> pd.Series:
    """Daily simple returns of the bundled S&P 500 sample on its adjusted close.

    ``returns[t]`` is the return from close t-1 to close t (fraction), indexed by date; the
    first day (no previous close) is dropped. The store computes the same returns.
    """
    from arch.data import sp500

    close = sp500.load()["Adj Close"].astype(np.float64)
    close.index = pd.DatetimeIndex(close.index).normalize()
    return close.pct_change().iloc[1:].rename("ret")


def lagged_features(returns: pd.Series, lags: int = 5) -> pd.DataFrame:
    """Features dated t from returns up to t only.

    Columns ``lag_0`` (the return ending at t) … ``lag_{lags-1}``, and for each window w in
    :data:`WINDOWS` the trailing mean ``mean_w`` and standard deviation ``vol_w`` of the w
    returns ending at t. NaN where the history is too short.
    """
    out = {f"lag_{j}": returns.shift(j) for j in range(lags)}
    for w in WINDOWS:
        out[f"mean_{w}"] = returns.rolling(w).mean()
        out[f"vol_{w}"] = returns.rolling(w).std()
    return pd.DataFrame(out, index=returns.index)


def walk_forward_forecasts(
    returns: pd.Series,
    *,
    start_year: int = 2005,
    end_year: int | None = None,
    lags: int = 5,
    n_estimators: int = 200,
    learning_rate: float = 0.05,
    max_depth: int = 3,
    min_train_days: int = 500,
    seed: int = 0,
) -> pd.Series:
    """Walk-forward forecasts of the next day's return, refitted every year.

    Parameters
    ----------
    returns : pandas.Series
        Daily simple returns (close t-1 → close t) indexed by ascending dates.
    start_year, end_year : int
        First and last forecast year (default: to the end of the data).
    lags, n_estimators, learning_rate, max_depth, seed
        Features and ``HistGradientBoostingRegressor`` settings (``n_estimators`` is its
        ``max_iter``; no early stopping, so a fit is deterministic for a seed).
    min_train_days : int
        Fewest training samples for a year's fit.

    Returns
    -------
    pandas.Series
        ``prediction`` dated t: the forecast of the return from close t to close t+1, in
        return units, for every date of the forecast years whose next close is in the data
        (the last date's outcome is unknown, so it gets no forecast).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    returns = returns.astype(np.float64)
    X = lagged_features(returns, lags)
    y = returns.shift(-1)  # label dated t: the return from close t to close t+1
    complete = X.notna().all(axis=1).to_numpy()
    dates = returns.index
    years = dates.year.to_numpy()
    last_year = int(years.max()) if end_year is None else end_year
    pieces = []
    for year in range(start_year, last_year + 1):
        first = int(np.searchsorted(years, year))  # position of the year's first date
        if first >= len(dates) or years[first] != year:
            continue
        # samples s whose label date (s + 1) is on or before the last close before the year
        train = complete.copy()
        train[first - 1 :] = False
        if train.sum() < min_train_days:
            raise ValueError(
                f"{year}: only {int(train.sum())} training days (need {min_train_days}); "
                "start later"
            )
        test = complete & (years == year) & y.notna().to_numpy()
        if not test.any():
            continue
        model = HistGradientBoostingRegressor(
            max_iter=n_estimators,
            learning_rate=learning_rate,
            max_depth=max_depth,
            early_stopping=False,
            random_state=seed,
        )
        model.fit(X.to_numpy()[train], y.to_numpy()[train])
        pieces.append(pd.Series(model.predict(X.to_numpy()[test]), index=dates[test]))
    if not pieces:
        raise ValueError(f"no forecast years from {start_year} to {last_year} in the data")
    out = pd.concat(pieces).rename("prediction")
    out.index.name = "date"
    return out


def write_csv(predictions: pd.Series, path: Path) -> Path:
    """``date,prediction`` CSV (ISO dates, floats with round-trip precision)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = predictions.rename("prediction").to_frame()
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d")
    frame.to_csv(path, index_label="date", lineterminator="\n")
    return path


def judge_forecasts(predictions: pd.Series, args: argparse.Namespace) -> int:
    """Load the sample into the store, judge the forecasts, print the verdict."""
    from lstm_madness import judge
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.ingest import ingest_sample
    from lstm_madness.data.store import init_db

    engine = make_engine(args.db)
    init_db(engine)
    ingest_sample(engine, "sp500")
    overrides = {} if args.cost_bps is None else {"backtest.cost_bps": args.cost_bps}
    result = judge(
        predictions,
        target=SYMBOL,
        db=args.db,
        name=args.name,
        task="return",
        alignment="next_day",
        overrides=overrides or None,
        trials=args.trials,
    )
    print(result.summary())
    if args.report is not None:
        print(f"report: {result.report(args.report)}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--start-year", type=int, default=2005, help="first forecast year")
    ap.add_argument("--end-year", type=int, default=None, help="last forecast year")
    ap.add_argument("--lags", type=int, default=5, help="lagged returns as features")
    ap.add_argument("--n-estimators", type=int, default=200, help="boosting iterations")
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--max-depth", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=Path("sklearn_predictions.csv"), help="forecasts CSV"
    )
    ap.add_argument("--csv-only", action="store_true", help="write the forecasts, do not judge")
    ap.add_argument(
        "--db", default=None, help="store URL (default: $MADNESS_DB_URL or ./madness.db)"
    )
    ap.add_argument("--name", default="sklearn-hgb", help="name of the judged run")
    ap.add_argument(
        "--trials", type=int, default=None, help="forecasts tried outside the tool to get this one"
    )
    ap.add_argument("--cost-bps", type=float, default=None, help="trading cost per unit turnover")
    ap.add_argument("--report", type=Path, default=None, help="write the HTML report here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    predictions = walk_forward_forecasts(
        load_sample_returns(),
        start_year=args.start_year,
        end_year=args.end_year,
        lags=args.lags,
        n_estimators=args.n_estimators,
        learning_rate=args.learning_rate,
        max_depth=args.max_depth,
        seed=args.seed,
    )
    path = write_csv(predictions, args.out)
    first, last = predictions.index[0].date(), predictions.index[-1].date()
    print(f"{len(predictions)} forecasts from {first} to {last} written to {path}")
    if args.csv_only:
        return 0
    return judge_forecasts(predictions, args)


if __name__ == "__main__":
    sys.exit(main())

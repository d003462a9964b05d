"""Report figures: one function per plot, each returning a :class:`matplotlib.figure.Figure`.

Figures are built with the object-oriented API (``Figure`` + Agg canvas), never through
``pyplot``: no display, no global state, safe in worker processes. Returns are daily
simple returns; axes show percent; dates on the x axis use a concise date formatter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

__all__ = [
    "plot_calibration",
    "plot_cumulative_returns",
    "plot_drawdown",
    "plot_legs",
    "plot_members",
    "plot_pnl",
    "plot_predicted_vs_actual",
    "plot_quintiles",
    "plot_rolling_hit_rate",
    "plot_rolling_ic",
    "plot_rolling_sharpe",
    "plot_seed_pnl",
    "save_figure",
]

WINDOW = 252  #: one trading year
COLORS = {
    "strategy": "#1f77b4",
    "gross": "#9ecae1",
    "buy_hold": "#ff7f0e",
    "pred": "#2ca02c",
    "train": "#9e9e9e",
}
TRAIN_LABEL = "training period (in-sample)"


def _figure(title: str, size: tuple[float, float] = (9.0, 4.5)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=12)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("date")


def _dates(d: Sequence | np.ndarray | pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(d)))


def _shade_training(ax: Axes, train_dates: pd.DatetimeIndex | None) -> None:
    if train_dates is not None and len(train_dates):
        ax.axvspan(
            train_dates[0], train_dates[-1], color=COLORS["train"], alpha=0.15, label=TRAIN_LABEL
        )


def save_figure(fig: Figure, path) -> None:
    """Write ``fig`` as PNG to ``path``."""
    fig.savefig(path, format="png")


def plot_predicted_vs_actual(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    task: str = "regression",
    model: str = "lstm",
    train_true: np.ndarray | None = None,
    train_pred: np.ndarray | None = None,
) -> Figure:
    """Scatter of predicted against realised values on the test period.

    Regression: predicted vs actual next-day return (%), with the 45° line and an OLS
    fit. Classification: predicted probability of an up day vs the realised next-day
    return (%). Training points, if given, are grey and labelled as in-sample.
    """
    clf = task == "classification"
    fig, ax = _figure(f"Predicted vs actual ({model}, test period)", (6.5, 5.5))
    scale_x = 1.0 if clf else 100.0
    if train_true is not None and train_pred is not None:
        ax.scatter(
            np.asarray(train_pred) * scale_x,
            np.asarray(train_true) * 100,
            s=6,
            color=COLORS["train"],
            alpha=0.3,
            label=TRAIN_LABEL,
        )
    x, y = np.asarray(y_pred, dtype=float) * scale_x, np.asarray(y_true, dtype=float) * 100
    ax.scatter(x, y, s=8, alpha=0.4, color=COLORS["strategy"], label=f"test ({x.size} days)")
    ax.axhline(0, color="black", lw=0.7)
    ax.axvline(0.5 if clf else 0.0, color="black", lw=0.7)
    if x.size and np.ptp(x) > 0:  # the x axis spans the predictions, not the outcomes
        pad = 0.05 * np.ptp(x)
        ax.set_xlim(x.min() - pad, x.max() + pad)
    if not clf:
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1, label="perfect forecast (y = x)")
        if x.size > 2 and np.ptp(x) > 0:
            slope, icpt = np.polyfit(x, y, 1)
            xs = np.linspace(x.min(), x.max(), 2)
            ax.plot(
                xs,
                slope * xs + icpt,
                color="red",
                lw=1.2,
                label=f"OLS fit (slope {slope:.2f}, corr {np.corrcoef(x, y)[0, 1]:.2f})",
            )
        ax.set_xlabel("predicted next-day return (%) — note the scale")
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=2))
    else:
        ax.set_xlabel("predicted probability of an up day")
    ax.set_ylabel("actual next-day return (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_calibration(
    table: pd.DataFrame, *, task: str = "regression", model: str = "lstm"
) -> Figure:
    """Binned calibration: per decile of the prediction, the mean realised next-day return
    with its band (top) and the hit rate (bottom).

    ``table`` is :func:`lstm_madness.evaluation.calibration.decile_table` (returns as
    fractions); nothing is recomputed here. A useful forecast has both rising from the
    lowest decile to the highest.
    """
    fig = Figure(figsize=(6.5, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    k = len(table)
    what = "probability of an up day" if task == "classification" else "predicted return"
    name = "decile" if k == 10 else f"bin (of {k})"
    top.set_title(f"Calibration: next-day return by {name} of the {what} ({model})", fontsize=11)
    bins = table.index.to_numpy()
    mean = table["mean"].to_numpy() * 100
    low, high = table["low"].to_numpy() * 100, table["high"].to_numpy() * 100
    top.fill_between(bins, low, high, color=COLORS["strategy"], alpha=0.2, label="95% band")
    top.plot(bins, mean, "o-", color=COLORS["strategy"], lw=1.3, label="mean next-day return")
    top.axhline(0, color="black", lw=0.7)
    top.set_ylabel("next-day return (%)")
    top.yaxis.set_major_formatter(PercentFormatter(decimals=2))
    top.grid(True, alpha=0.3)
    top.legend(loc="best", fontsize=8)
    hit = table["hit_rate"].to_numpy() * 100
    bottom.bar(bins, hit, color=COLORS["strategy"], alpha=0.6, width=0.7, label="hit rate")
    bottom.axhline(50, color="black", ls="--", lw=1, label="50% (coin flip)")
    bottom.set_ylim(min(30.0, float(np.nanmin(hit)) - 5), max(70.0, float(np.nanmax(hit)) + 5))
    bottom.set_ylabel("hit rate (%)")
    bottom.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    bottom.set_xticks(bins)
    bottom.set_xlabel(f"{name} of the {what} (1 = lowest; {int(table['n'].iloc[0])} days each)")
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    return fig


def plot_cumulative_returns(
    dates: Sequence | np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    task: str = "regression",
    model: str = "lstm",
    train_dates: Sequence | np.ndarray | None = None,
    train_true: np.ndarray | None = None,
    train_pred: np.ndarray | None = None,
) -> Figure:
    """The original study's chart: running sums of actual and predicted daily returns.

    Labelled as what it is, a running sum of predictions, not a P&L: a forecast that is
    right on average about the drift climbs steadily whatever it is worth for trading.
    For classification the curves count directions instead: running (up days − down days),
    actual vs predicted. With a training period it is drawn first on a grey band.
    """
    clf = task == "classification"
    fig, ax = _figure(
        f"Running sum of predicted returns — not a P&L ({model}; the original study's chart)"
    )

    def curve(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if clf:
            return np.cumsum(np.where(v > 0.5, 1.0, -1.0))
        return np.cumsum(v) * 100

    if train_dates is not None and train_true is not None and train_pred is not None:
        td = _dates(train_dates)
        _shade_training(ax, td)
        ax.plot(td, curve(train_true), color="black", lw=1, alpha=0.5)
        ax.plot(td, curve(train_pred), color=COLORS["pred"], lw=1, alpha=0.5)
    d = _dates(dates)
    ax.plot(d, curve(y_true), color="black", lw=1.3, label="running sum of actual returns (test)")
    ax.plot(
        d,
        curve(y_pred),
        color=COLORS["pred"],
        lw=1.3,
        label=f"running sum of {model}'s predicted returns (test) — not a P&L",
    )
    if clf:
        ax.set_ylabel("running sum of up − down days")
    else:
        ax.set_ylabel("running sum of daily returns (%)")
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    _date_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return fig


def _growth_axis(ax: Axes, curves: list[np.ndarray]) -> None:
    lo = min(float(np.min(c)) for c in curves)
    hi = max(float(np.max(c)) for c in curves)
    if lo > 0 and hi / lo > 20:
        ax.set_yscale("log")
        ax.set_ylabel("growth of 1 (log scale)")
    else:
        ax.set_ylabel("growth of 1")


def plot_pnl(
    dates: Sequence | np.ndarray,
    net_returns: np.ndarray,
    gross_returns: np.ndarray,
    buy_hold_returns: np.ndarray,
    *,
    label: str = "strategy",
    cost_bps: float | None = None,
) -> Figure:
    """Cumulative P&L (growth of 1) of the strategy, net and gross of costs, vs buy-and-hold."""
    cost = f", {cost_bps:g} bps per unit turnover" if cost_bps is not None else ""
    fig, ax = _figure(f"Cumulative P&L vs buy-and-hold (test period{cost})")
    d = _dates(dates)
    curves = [
        np.cumprod(1.0 + np.asarray(r, dtype=float))
        for r in (net_returns, gross_returns, buy_hold_returns)
    ]
    ax.plot(d, curves[1], color=COLORS["gross"], lw=1, label=f"{label}, gross of costs")
    ax.plot(d, curves[0], color=COLORS["strategy"], lw=1.5, label=f"{label}, net of costs")
    ax.plot(d, curves[2], color=COLORS["buy_hold"], lw=1.5, label="buy-and-hold (net)")
    ax.axhline(1.0, color="black", lw=0.7)
    _growth_axis(ax, curves)
    _date_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_drawdown(
    dates: Sequence | np.ndarray,
    drawdown: np.ndarray,
    buy_hold_drawdown: np.ndarray,
    *,
    max_drawdown: float,
    buy_hold_max_drawdown: float,
    label: str = "strategy",
) -> Figure:
    """Drawdown from the running peak (%), strategy net of costs vs buy-and-hold.

    The series are :func:`lstm_madness.evaluation.backtest.drawdowns` of the net returns and
    the maxima those of the backtest's :class:`~lstm_madness.evaluation.backtest.Performance`
    (fractions, <= 0); nothing is recomputed here.
    """
    fig, ax = _figure("Drawdown from running peak (test period)")
    d = _dates(dates)
    dd_s, dd_b = np.asarray(drawdown) * 100, np.asarray(buy_hold_drawdown) * 100
    ax.fill_between(
        d,
        dd_s,
        0,
        color=COLORS["strategy"],
        alpha=0.35,
        label=f"{label}, net (max {max_drawdown:.1%})",
    )
    ax.plot(
        d,
        dd_b,
        color=COLORS["buy_hold"],
        lw=1.2,
        label=f"buy-and-hold (max {buy_hold_max_drawdown:.1%})",
    )
    ax.set_ylabel("drawdown (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    _date_axis(ax)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def _window(n: int, window: int) -> int:
    return max(min(window, n // 2), 2)


def plot_rolling_hit_rate(
    dates: Sequence | np.ndarray,
    hits: np.ndarray,
    *,
    hit_rate: float,
    window: int = WINDOW,
    model: str = "lstm",
) -> Figure:
    """Rolling share of correctly called directions over ``window`` days (one year).

    ``hits`` are the daily hits of :func:`lstm_madness.evaluation.calibration.hits` (NaN on
    a day whose prediction calls no direction) and ``hit_rate`` the whole test period's
    (the evaluation's test); the plot only averages the daily hits over the
    window, over the days with a call (at least half the window).
    """
    h = np.asarray(hits, dtype=float)
    w = _window(h.size, window)
    roll = pd.Series(h, index=_dates(dates)).rolling(w, min_periods=max(1, w // 2)).mean() * 100
    fig, ax = _figure(f"Rolling {w}-day hit rate ({model}, test period)")
    ax.plot(roll.index, roll.to_numpy(), color=COLORS["strategy"], lw=1.3, label="hit rate")
    ax.axhline(50, color="black", ls="--", lw=1, label="50% (coin flip)")
    if np.isfinite(hit_rate):
        ax.axhline(
            hit_rate * 100, color="red", ls=":", lw=1, label=f"whole test period {hit_rate:.1%}"
        )
    ax.set_ylabel("hit rate (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    _date_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_rolling_sharpe(
    dates: Sequence | np.ndarray,
    net_returns: np.ndarray,
    buy_hold_returns: np.ndarray,
    *,
    window: int = WINDOW,
    label: str = "strategy",
) -> Figure:
    """Rolling annualized Sharpe ratio over ``window`` days, net strategy vs buy-and-hold."""
    idx = _dates(dates)
    w = _window(len(idx), window)

    def roll(r: np.ndarray) -> pd.Series:
        s = pd.Series(np.asarray(r, dtype=float), index=idx).rolling(w)
        sd = s.std()
        return (s.mean() / sd.where(sd > 0)) * np.sqrt(252)

    fig, ax = _figure(f"Rolling {w}-day Sharpe ratio, annualized (test period)")
    a, b = roll(net_returns), roll(buy_hold_returns)
    ax.plot(a.index, a.to_numpy(), color=COLORS["strategy"], lw=1.3, label=f"{label}, net")
    ax.plot(b.index, b.to_numpy(), color=COLORS["buy_hold"], lw=1.3, label="buy-and-hold")
    ax.axhline(0, color="black", lw=0.7)
    ax.set_ylabel("Sharpe ratio (annualized)")
    _date_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return fig


#: Seed curves: matplotlib's tab10 without its orange, which is buy-and-hold's.
_SEED_COLORS = (
    "#1f77b4",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_SEED_LEGEND_MAX = 12  #: more seeds than this: one legend entry for the others


def plot_seed_pnl(
    curves: Sequence[tuple[str, Sequence | np.ndarray, np.ndarray]],
    buy_hold: tuple[Sequence | np.ndarray, np.ndarray],
    *,
    highlight: int | None = None,
    benchmark: str = "buy-and-hold",
    cost_bps: float | None = None,
) -> Figure:
    """Cumulative net P&L (growth of 1) of every seed of one configuration, and
    buy-and-hold (``benchmark`` names it: a universe study's equal-weight book).

    ``curves``: (label, dates, daily net returns) per seed, each from its run's evaluation;
    ``buy_hold``: (dates, daily net returns); ``highlight``: the index in ``curves`` of the
    seed the rest of the report details (drawn thicker). Only the compounding is done here.
    """
    cost = f", {cost_bps:g} bps per unit turnover" if cost_bps is not None else ""
    fig, ax = _figure(f"Cumulative net P&L of every seed vs {benchmark} (test period{cost})")
    grown = []
    many = len(curves) > _SEED_LEGEND_MAX
    for k, (label, dates, returns) in enumerate(curves):
        curve = np.cumprod(1.0 + np.asarray(returns, dtype=float))
        grown.append(curve)
        chosen = k == highlight
        first_other = k == (1 if highlight == 0 else 0)
        shown = label if chosen or not many else ("other seeds" if first_other else None)
        ax.plot(
            _dates(dates),
            curve,
            color=_SEED_COLORS[k % len(_SEED_COLORS)] if not many or chosen else "#9ecae1",
            lw=2.0 if chosen else 1.0,
            alpha=1.0 if chosen else 0.8,
            label=shown,
            zorder=3 if chosen else 2,
        )
    bh = np.cumprod(1.0 + np.asarray(buy_hold[1], dtype=float))
    grown.append(bh)
    ax.plot(
        _dates(buy_hold[0]),
        bh,
        color=COLORS["buy_hold"],
        lw=1.8,
        ls="--",
        label=f"{benchmark} (net)",
        zorder=4,  # on top: a seed that is always long draws the same curve
    )
    ax.axhline(1.0, color="black", lw=0.7)
    _growth_axis(ax, grown)
    _date_axis(ax)
    ax.legend(loc="best", fontsize=8)
    return fig


# ---------------------------------------------------------------------- universe


def plot_legs(
    dates: Sequence | np.ndarray, legs: Mapping[str, np.ndarray], *, title: str
) -> Figure:
    """Cumulative compounded net return of each daily return series in ``legs``."""
    fig, ax = _figure(title)
    d = _dates(dates)
    for label, r in legs.items():
        ax.plot(d, (np.cumprod(1.0 + np.asarray(r, dtype=float)) - 1.0) * 100, lw=1.2, label=label)
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_ylabel("cumulative net return")
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return fig


def plot_rolling_ic(
    dates: Sequence | np.ndarray, rolling: np.ndarray, mean: float, *, window: int
) -> Figure:
    """The rolling mean of the daily rank IC, with the whole period's mean."""
    fig, ax = _figure(f"Rank IC, {window}-day rolling mean (whole period {mean:.3f})")
    ax.plot(_dates(dates), rolling, color=COLORS["strategy"], lw=1.2)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axhline(mean, color=COLORS["buy_hold"], lw=1, ls="--", label="mean")
    ax.set_ylabel("Spearman IC")
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return fig


def plot_quintiles(quintiles: np.ndarray, *, model: str) -> Figure:
    """Mean next-day return of each prediction quintile (lowest predictions first)."""
    fig, ax = _figure(f"Mean next-day return by prediction quintile ({model})")
    q = np.asarray(quintiles, dtype=float) * 1e4
    ax.bar([f"Q{i + 1}" for i in range(len(q))], q, color=COLORS["strategy"])
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_ylabel("bps a day")
    ax.set_xlabel("quintile of the day's predictions (Q1 lowest)")
    return fig


def plot_members(dates: Sequence | np.ndarray, members: np.ndarray, top_k: int) -> Figure:
    """Members scored (ranked) per day, and the 2·top_k needed to trade."""
    fig, ax = _figure("Members scored per day")
    ax.plot(_dates(dates), members, color=COLORS["strategy"], lw=1.2)
    ax.axhline(2 * top_k, color=COLORS["buy_hold"], ls="--", lw=1, label="2 × top_k")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("members")
    ax.legend(loc="lower right", fontsize=8)
    _date_axis(ax)
    return fig

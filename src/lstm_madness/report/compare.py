"""The side-by-side table of several runs (``madness compare``) and why their figures may
not be comparable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from lstm_madness.jsonable import dig
from lstm_madness.report import formats as fmt

__all__ = ["COMPARE_FORMATS", "comparability", "compare_table"]

# ---------------------------------------------------------------------- compare

_COMPARE_ROWS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("target", "target", str),
    ("status", "status", str),
    ("test start", "test_start", fmt.date),
    ("test end", "test_end", fmt.date),
    ("test days", "backtest.n_days", fmt.count),
    ("net Sharpe", "backtest.sharpe_net", fmt.ratio),
    ("gross Sharpe", "backtest.sharpe_gross", fmt.ratio),
    ("buy-and-hold Sharpe", "backtest.buy_hold_sharpe", fmt.ratio),
    ("net total return", "backtest.total_return_net", fmt.percent),
    ("max drawdown", "backtest.max_drawdown", fmt.percent),
    ("turnover / day", "backtest.turnover", lambda v: fmt.fixed(v, 2)),
    ("cost (bps)", "backtest.cost_bps", lambda v: fmt.fixed(v, 1)),
    ("slippage (bps)", "backtest.slippage_bps", lambda v: fmt.fixed(v, 1)),
    (
        "break-even cost (bps, mean net 0)",
        "backtest.break_even_cost_bps",
        lambda v: fmt.fixed(v, 1),
    ),
    (
        "break-even vs buy-and-hold (bps)",
        "backtest.break_even_vs_buy_hold_bps",
        lambda v: fmt.fixed(v, 1),
    ),
    ("DM p vs zero", "tests.dm_p_vs_zero", fmt.pvalue),
    ("PT p", "tests.pt_p", fmt.pvalue),
    ("hit rate (calls)", "tests.hit_rate", fmt.percent),
    ("hit rate p", "tests.hit_rate_p", fmt.pvalue),
    ("R²_oos", "tests.r2_oos", lambda v: fmt.fixed(v, 4)),
    # the judged model's training ("primary." reads its entry of models)
    ("epochs per fold", "primary.epochs_run", lambda v: fmt.fixed(v, 1)),
    ("epochs in all", "primary.epochs_run_total", fmt.count),
    ("training samples per fold", "primary.n_train", fmt.count),
    ("PSR", "significance.psr", fmt.probability),
    ("DSR", "significance.dsr", fmt.probability),
    ("trials", "significance.trials", fmt.count),
    ("trials at finish", "at_finish.trials", fmt.count),
    ("identical forecasts merged", "significance.duplicates", fmt.count),
    ("StepM selects this run", "significance.stepm_selected", fmt.yes_no),
    ("SPA p (trial set)", "significance.spa_p", fmt.pvalue),
    ("PBO (trial set)", "significance.pbo", fmt.probability),
    ("tradeable", "verdict.tradeable", fmt.yes_no),
]

#: How each row of :func:`compare_table` reads (label -> formatter).
COMPARE_FORMATS: dict[str, Callable[[Any], str]] = {label: f for label, _, f in _COMPARE_ROWS}


def compare_table(summaries: list[dict]) -> pd.DataFrame:
    """Side-by-side table of runs for ``madness compare``: one column per run.

    Parameters
    ----------
    summaries : list of dict
        Run summaries as in ``madness runs show --json``: ``id``, ``name`` and the
        sections ``backtest``, ``tests``, ``significance`` and ``verdict`` (missing
        values show as ``None``).

    Returns
    -------
    DataFrame
        Index: metric labels; columns: ``"<id> <name>"`` per run, in the given order.
    """
    cols: dict[str, list[Any]] = {}
    for i, s in enumerate(summaries):
        label = " ".join(str(x) for x in (s.get("id", i + 1), s.get("name")) if x)
        while label in cols:
            label += "'"
        primary = (s.get("models") or {}).get(s.get("primary_model")) or {}
        cols[label] = [
            primary.get(path.removeprefix("primary."))
            if path.startswith("primary.")
            else dig(s, path)
            for _, path, _ in _COMPARE_ROWS
        ]
    index = pd.Index([lbl for lbl, _, _ in _COMPARE_ROWS], name="metric")
    return pd.DataFrame(cols, index=index, dtype=object)


def comparability(summaries: list[dict]) -> list[str]:
    """Why figures of these runs cannot be set side by side, one sentence per difference.

    Checks the test periods, the targets and the trading costs (cost + slippage); each
    sentence names the runs' values and which figures are therefore not comparable.
    Empty when the runs agree on all three.
    """

    def ident(s: Mapping[str, Any]) -> str:
        return str(s.get("id", "?"))

    def differ(key: Callable[[Mapping[str, Any]], Any]) -> dict[Any, list[str]] | None:
        groups: dict[Any, list[str]] = {}
        for s in summaries:
            groups.setdefault(key(s), []).append(ident(s))
        return groups if len(groups) > 1 else None

    def listing(groups: dict[Any, list[str]], show: Callable[[Any], str]) -> str:
        return "; ".join(f"{show(k)} (run {', '.join(v)})" for k, v in groups.items())

    out = []
    periods = differ(lambda s: (fmt.date(s.get("test_start")), fmt.date(s.get("test_end"))))
    if periods:
        out.append(
            "test periods differ: "
            + listing(periods, lambda k: f"{k[0]} → {k[1]}")
            + ". Sharpe ratios, returns, drawdowns, hit rates and p-values are measured on "
            "different days and are not comparable; DSR, SPA and PBO count different trials."
        )
    targets = differ(lambda s: s.get("target"))
    if targets:
        out.append(
            "targets differ: "
            + listing(targets, str)
            + ". Every forecast and backtest figure is about a different asset."
        )
    costs = differ(
        lambda s: (dig(s, "backtest.cost_bps") or 0) + (dig(s, "backtest.slippage_bps") or 0)
    )
    if costs:
        out.append(
            "costs differ: "
            + listing(costs, lambda k: f"{fmt.fixed(k, 1)} bps per unit turnover")
            + ". Net Sharpe, net return, drawdown, DSR, SPA and the verdict are not comparable;"
            " gross Sharpe and the forecast tests are."
        )
    return out

"""A study of several seeds of one configuration, as the terminal and the report show it.

Seeds of one configuration are runs with the same config but the training seed
(``runs.family_hash``). A study of several seeds is shown through all of them first (each
seed's net Sharpe and verdict, their median and range, buy-and-hold's Sharpe), and only
then through one seed's details, saying which seed and why.

Every figure is read from a run's summary (:mod:`lstm_madness.experiment.summary` owns
them), the median and range come from :func:`~lstm_madness.evaluation.significance.seed_spread`
of those figures, and the daily net returns a plot draws from each run's
:class:`~lstm_madness.evaluation.study.Evaluation`; nothing is recomputed here. No
numpy-heavy or plotting import, so that the CLI can print a seed set cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lstm_madness.jsonable import dig
from lstm_madness.report import formats as fmt

if TYPE_CHECKING:
    from lstm_madness.evaluation.significance import SeedSpread
    from lstm_madness.evaluation.study import Evaluation

__all__ = ["SEED_COLUMNS", "SeedRun", "SeedSet"]


def _number(x: Any) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return value


#: The seed table: (header, summary path, format), in the order shown.
SEED_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("net Sharpe", "backtest.sharpe_net", fmt.ratio),
    ("gross Sharpe", "backtest.sharpe_gross", fmt.ratio),
    ("net total return", "backtest.total_return_net", fmt.percent),
    ("hit rate (forecast)", "tests.hit_rate", fmt.percent),
    ("DSR", "significance.dsr", fmt.probability),
)


@dataclass(frozen=True, eq=False)
class SeedRun:
    """One seed of a study: its run, its summary (``madness runs show --json``) and, for
    plots, its evaluation (daily series)."""

    run_id: int
    seed: int | None
    summary: Mapping[str, Any]
    evaluation: Evaluation | None = None

    def figure(self, path: str) -> Any:
        """A figure of the summary by dotted path (``backtest.sharpe_net``); None if absent."""
        return dig(self.summary, path)

    @property
    def sharpe_net(self) -> float:
        return _number(self.figure("backtest.sharpe_net"))

    @property
    def verdict(self) -> str:
        label = self.figure("verdict.label")
        if label:
            return str(label)
        tradeable = self.figure("verdict.tradeable")
        return fmt.MISSING if tradeable is None else ("TRADEABLE" if tradeable else "NOT TRADEABLE")

    @property
    def name(self) -> str:
        """``seed 1 (run 2)``."""
        seed = "seed ?" if self.seed is None else f"seed {self.seed}"
        return f"{seed} (run {self.run_id})"


@dataclass(frozen=True, eq=False)
class SeedSet:
    """The seeds of one configuration on one test period, in seed order (then run id)."""

    runs: tuple[SeedRun, ...]

    @classmethod
    def of(cls, runs: Iterable[SeedRun]) -> SeedSet:
        ordered = sorted(
            runs, key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0, r.run_id)
        )
        if not ordered:
            raise ValueError("a seed set needs at least one run")
        return cls(tuple(ordered))

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def run_ids(self) -> list[int]:
        return [r.run_id for r in self.runs]

    def get(self, run_id: int) -> SeedRun:
        for run in self.runs:
            if run.run_id == int(run_id):
                return run
        raise KeyError(run_id)

    @property
    def spread(self) -> SeedSpread:
        """Min, median, max (mean, sd) of the seeds' net Sharpe ratios."""
        from lstm_madness.evaluation.significance import seed_spread

        return seed_spread([r.sharpe_net for r in self.runs])

    @property
    def buy_hold_sharpe(self) -> Any:
        """Buy-and-hold's net Sharpe on the seeds' test period (the same for every seed:
        one config, one period); the first seed's summary says it."""
        return self.runs[0].figure("backtest.buy_hold_sharpe")

    @property
    def benchmark(self) -> str:
        """What buy-and-hold is: the equal-weight book of a universe study's members."""
        long_short = self.runs[0].figure("backtest.rule") == "long_short"
        return "equal-weight book" if long_short else "buy-and-hold"

    def _by_sharpe(self) -> list[SeedRun]:
        finite = [r for r in self.runs if math.isfinite(r.sharpe_net)]
        return sorted(finite, key=lambda r: (r.sharpe_net, r.run_id))

    def median_run(self) -> SeedRun:
        """The seed whose net Sharpe is the median (the lower of the two middle ones for an
        even count); the first seed when no Sharpe ratio is known."""
        ranked = self._by_sharpe()
        return ranked[(len(ranked) - 1) // 2] if ranked else self.runs[0]

    def why(self, run_id: int) -> str:
        """Where ``run_id`` stands among the seeds by net Sharpe, in words."""
        ranked = self._by_sharpe()
        run = self.get(run_id)
        if run not in ranked:
            return "its net Sharpe is not known"
        n = len(ranked)
        if run is self.median_run():
            return "the median seed by net Sharpe" + (
                " (the lower of the two middle ones)" if n % 2 == 0 else ""
            )
        rank = ranked.index(run) + 1
        if rank == n:
            return f"the highest net Sharpe of the {n} seeds"
        if rank == 1:
            return f"the lowest net Sharpe of the {n} seeds"
        return f"rank {rank} of {n} seeds by net Sharpe (1 = lowest)"

    def spread_text(self) -> str:
        """``median 0.08, range 0.04 to 0.18``."""
        s = self.spread
        return f"median {fmt.ratio(s.median)}, range {fmt.ratio(s.min)} to {fmt.ratio(s.max)}"

    def verdicts_text(self) -> str:
        """``all NOT TRADEABLE``, or each verdict with its seeds."""
        groups: dict[str, list[SeedRun]] = {}
        for run in self.runs:
            groups.setdefault(run.verdict, []).append(run)
        if len(groups) == 1:
            return f"all {next(iter(groups))}"

        def which(runs: list[SeedRun]) -> str:
            seeds = [str(r.seed) if r.seed is not None else f"run {r.run_id}" for r in runs]
            return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(seeds)

        return "; ".join(f"{label}: {which(runs)}" for label, runs in groups.items())

    def line(self, point: str) -> str:
        """The seed set on one line, for a sweep of several configurations: each seed's
        net Sharpe in seed order, the median and range, the verdicts, buy-and-hold."""
        seeds = [r.seed for r in self.runs]
        consecutive = None not in seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        which = f"seeds {seeds[0]}–{seeds[-1]}" if consecutive else "seeds"
        sharpes = " ".join(fmt.ratio(r.figure("backtest.sharpe_net")) for r in self.runs)
        return (
            f"{point}: {len(self)} {which}, net Sharpe {sharpes}; {self.spread_text()}; "
            f"{self.verdicts_text()} ({self.benchmark} {fmt.ratio(self.buy_hold_sharpe)})"
        )

    def compare_command(self) -> str:
        return "madness compare " + " ".join(str(i) for i in self.run_ids)

    def lines(self, shown: int | None = None) -> list[str]:
        """The seed set in plain text, for the terminal: a header, one line per seed (net
        Sharpe, verdict), the median and range, then (with ``shown``) which seed's details
        follow and why."""
        width = max(len(r.name) for r in self.runs)
        out = [
            f"{len(self)} seeds of one config, net Sharpe each ({self.benchmark} "
            f"{fmt.ratio(self.buy_hold_sharpe)}):"
        ]
        out += [
            f"  {r.name:<{width}}  {fmt.ratio(r.figure('backtest.sharpe_net')):>6}  {r.verdict}"
            for r in self.runs
        ]
        out.append(f"  {self.spread_text()}")
        if shown is not None:
            run = self.get(shown)
            out.append(
                f"details of {run.name}, {self.why(shown)}; every seed: {self.compare_command()}"
            )
        return out

    def rows(self) -> list[list[str]]:
        """The seed table's cells as text: seed, run, :data:`SEED_COLUMNS`, verdict."""
        return [
            [
                fmt.MISSING if r.seed is None else str(r.seed),
                str(r.run_id),
                *(show(r.figure(path)) for _, path, show in SEED_COLUMNS),
                r.verdict,
            ]
            for r in self.runs
        ]

    @staticmethod
    def headers() -> list[str]:
        return ["seed", "run", *(h for h, _, _ in SEED_COLUMNS), "verdict"]

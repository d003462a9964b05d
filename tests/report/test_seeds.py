"""A study of several seeds is shown through all its seeds; reports are titled by config
and target, never by a sweep point's ``seed=0`` label."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_madness.evaluation.study import EvaluationSettings, evaluate
from lstm_madness.report import PLOT_FILES, write_report
from lstm_madness.report.html import SEED_PLOT_FILE, report_title
from lstm_madness.report.seeds import SeedRun, SeedSet


def _summary(sharpe: float, *, tradeable: bool = False, bh: float = 0.38) -> dict:
    return {
        "backtest": {
            "sharpe_net": sharpe,
            "sharpe_gross": sharpe + 0.1,
            "total_return_net": sharpe / 2,
            "buy_hold_sharpe": bh,
        },
        "tests": {"hit_rate": 0.51},
        "significance": {"dsr": 0.4},
        "verdict": {
            "tradeable": tradeable,
            "label": "TRADEABLE" if tradeable else "NOT TRADEABLE",
        },
    }


def test_every_seed_median_and_range_come_before_one_seeds_details() -> None:
    # the numbers: seed 0 the worst (0.04), median 0.08, maximum 0.18
    seeds = SeedSet.of(
        [
            SeedRun(7, 1, _summary(0.18, tradeable=True)),
            SeedRun(6, 0, _summary(0.04)),
            SeedRun(8, 2, _summary(0.08)),
        ]
    )
    assert seeds.run_ids == [6, 7, 8]  # seed order
    assert seeds.median_run().run_id == 8
    lines = seeds.lines(shown=seeds.median_run().run_id)
    assert "buy-and-hold 0.38" in lines[0]
    assert [line.split() for line in lines[1:4]] == [
        ["seed", "0", "(run", "6)", "0.04", "NOT", "TRADEABLE"],
        ["seed", "1", "(run", "7)", "0.18", "TRADEABLE"],
        ["seed", "2", "(run", "8)", "0.08", "NOT", "TRADEABLE"],
    ]
    assert lines[4].strip() == "median 0.08, range 0.04 to 0.18"
    assert lines[5] == (
        "details of seed 2 (run 8), the median seed by net Sharpe; "
        "every seed: madness compare 6 7 8"
    )
    assert seeds.why(6) == "the lowest net Sharpe of the 3 seeds"
    assert seeds.why(7) == "the highest net Sharpe of the 3 seeds"
    line = seeds.line("units=[32]")
    assert line.startswith("units=[32]: 3 seeds 0–2, net Sharpe 0.04 0.18 0.08; median 0.08")
    assert "NOT TRADEABLE: seeds 0, 2; TRADEABLE: seed 1" in line


def test_median_of_an_even_count_is_the_lower_middle_seed() -> None:
    seeds = SeedSet.of(SeedRun(i, i, _summary(s)) for i, s in enumerate([0.3, 0.1, 0.2, 0.4]))
    assert seeds.median_run().run_id == 2
    assert seeds.why(2) == "the median seed by net Sharpe (the lower of the two middle ones)"
    assert seeds.spread_text() == "median 0.25, range 0.10 to 0.40"


def test_title_names_the_config_and_the_target_not_the_seed() -> None:
    run = {
        "id": 2,
        "name": "seed=1",
        "sweep_id": 1,
        "target": "^GSPC",
        "config": {"name": "demo-sp500-walk-forward", "data": {"target": "^GSPC"}},
    }
    assert report_title(run) == "demo-sp500-walk-forward — ^GSPC, run 2"
    unnamed = {**run, "config": {"split": {"scheme": "walk_forward"}, "model": {"kind": "lstm"}}}
    assert report_title(unnamed) == "walk-forward LSTM — ^GSPC, run 2"
    assert "seed=" not in report_title(unnamed)
    alone = {**unnamed, "name": "my try", "sweep_id": None}  # a run's own --name
    assert report_title(alone) == "my try — ^GSPC, run 2"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cells: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs).get("alt", ""))
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self._cells = []

    def handle_endtag(self, tag):
        if tag == "tr" and self._cells is not None:
            self.tables[-1].append(self._cells)
            self._cells = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cells is not None:
            self._cells.append(data)


def _evaluation(seed: int, n: int = 400):
    rng = np.random.default_rng(0)
    r = rng.normal(0.0003, 0.012, n)
    noise = np.random.default_rng(100 + seed).normal(0, 0.012, n)
    dates = pd.bdate_range("2016-01-04", periods=n)
    preds = {"lstm": 0.5 * (r + noise), "baseline:zero": np.zeros(n)}
    ev = evaluate(
        dates=dates.to_numpy(),
        asset_returns=r,
        y_true=r,
        predictions=preds,
        task="regression",
        settings=EvaluationSettings(bootstrap_reps=100),
    )
    frame = pd.DataFrame({"y_true": r, **preds}, index=pd.Index(dates, name="date"))
    return ev, frame


def test_report_of_a_seed_set_has_the_seed_table_and_every_seeds_pnl(tmp_path: Path) -> None:
    evaluations = {run_id: _evaluation(seed) for seed, run_id in enumerate([11, 12, 13])}
    seeds = SeedSet.of(
        SeedRun(run_id, seed, ev.to_json(), ev)
        for seed, (run_id, (ev, _)) in enumerate(evaluations.items())
    )
    shown = seeds.median_run().run_id
    ev, frame = evaluations[shown]
    run = {
        "id": shown,
        "name": f"seed={seeds.get(shown).seed}",
        "sweep_id": 3,
        "target": "SYN",
        "config": {"name": "tiny", "data": {"target": "SYN"}},
    }
    path = write_report(
        tmp_path,
        run=run,
        evaluation=ev,
        test_frame=frame,
        fold_table=pd.DataFrame(),
        model_table=pd.DataFrame(),
        seeds=seeds,
    )
    png = tmp_path / SEED_PLOT_FILE
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = _Page()
    doc = path.read_text(encoding="utf-8")
    page.feed(doc)
    assert "Cumulative net P&L of every seed" in page.images
    assert len(page.images) == len(PLOT_FILES) + 1
    header, *rows = next(t for t in page.tables if t[0][:2] == ["seed", "run"])
    assert header == [
        "seed",
        "run",
        "net Sharpe",
        "gross Sharpe",
        "net total return",
        "hit rate (forecast)",
        "DSR",
        "verdict",
    ]
    table = {r[1]: r for r in rows}
    assert list(table) == ["11", "12", "13"]
    for seed_run in seeds.runs:
        row = table[str(seed_run.run_id)]
        net = seed_run.evaluation.strategy.net  # each seed's own numbers, as its summary says
        assert row[0] == str(seed_run.seed)
        assert row[2] == f"{net.sharpe:.2f}" and row[4] == f"{net.total_return:.1%}"
        assert row[-1] == seed_run.evaluation.verdict.label
    text = " ".join(page.text)
    h1 = doc.split("<h1>")[1].split("</h1>")[0]
    title = doc.split("<title>")[1].split("</title>")[0]
    assert h1 == f"tiny — SYN, run {shown}" and title.startswith(h1)
    assert doc.index("All 3 seeds of this configuration") < doc.index("class='verdict")
    assert f"details seed {seeds.get(shown).seed} (run {shown})" in text
    assert seeds.spread_text() in text


@pytest.mark.parametrize("count", [0, 1])
def test_no_seed_section_without_other_seeds(tmp_path: Path, count: int) -> None:
    ev, frame = _evaluation(0)
    seeds = SeedSet.of([SeedRun(1, 0, ev.to_json(), ev)]) if count else None
    path = write_report(
        tmp_path,
        run={"id": 1, "config": {"name": "tiny"}, "target": "SYN"},
        evaluation=ev,
        test_frame=frame,
        fold_table=pd.DataFrame(),
        model_table=pd.DataFrame(),
        seeds=seeds,
    )
    assert "seeds of this configuration" not in path.read_text(encoding="utf-8")
    assert not (tmp_path / SEED_PLOT_FILE).exists()

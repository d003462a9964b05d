"""The HTML report renders: every plot present, valid HTML, verdict and escaping."""

from __future__ import annotations

import dataclasses
import html
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_madness.evaluation.study import EvaluationSettings, evaluate
from lstm_madness.report import PLOT_FILES, compare_table, write_report
from lstm_madness.report import formats as fmt
from lstm_madness.report.html import answer_sentence, decile_frame

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


class _Checker(HTMLParser):
    """Fails on mismatched tags; collects images and visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _inputs(task: str, n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.012, n)
    dates = pd.bdate_range("2016-01-04", periods=n)
    if task == "regression":
        y = r
        preds = {"lstm": 0.5 * (r + rng.normal(0, 0.012, n)), "baseline:zero": np.zeros(n)}
    else:
        y = (r > 0).astype(float)
        preds = {
            "lstm": np.clip(0.5 + 20 * (r + rng.normal(0, 0.02, n)), 0, 1),
            "baseline:always_up": np.full(n, 0.55),
        }
    ev = evaluate(
        dates=dates.to_numpy(),
        asset_returns=r,
        y_true=y,
        predictions=preds,
        task=task,
        settings=EvaluationSettings(bootstrap_reps=200),
    )
    test_frame = pd.DataFrame({"y_true": y, **preds}, index=pd.Index(dates, name="date"))
    train_idx = pd.bdate_range("2014-01-01", periods=300, name="date")
    ty = rng.normal(0, 0.012, 300)
    train = pd.DataFrame(
        {
            "y_true": ty if task == "regression" else (ty > 0) * 1.0,
            "lstm": 0.3 * ty + (0.5 if task == "classification" else 0),
        },
        index=train_idx,
    )
    return ev, test_frame, train


RUN = {
    "id": 42,
    "name": "xlf <script>alert(1)</script>",
    "status": "succeeded",
    "started": "2024-05-01T10:00:00",
    "config": {"data": {"target": "XLF & co"}},
    "timings": {"train": 12.5, "evaluate": 0.8},
}


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_report_renders(tmp_path: Path, task: str) -> None:
    ev, test_frame, train = _inputs(task)
    folds = pd.DataFrame(
        {"fold": [0, 1], "test_start": ["2016-01-04", "2017-01-02"], "mse": [1.1e-4, 0.9e-4]}
    )
    models = pd.DataFrame({"model": ["lstm", "zero <b>"], "mse": [1e-4, 1.2e-4]})
    path = write_report(
        tmp_path / "out",
        run=RUN,
        evaluation=ev,
        test_frame=test_frame,
        fold_table=folds,
        model_table=models,
        train_frame=train,
    )
    assert path.exists() and path.parent == tmp_path / "out"
    for name in PLOT_FILES:
        png = tmp_path / "out" / name
        assert png.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(doc)
    checker.close()
    assert checker.stack == []
    assert len(checker.images) == len(PLOT_FILES)
    assert all(
        src.startswith("data:image/png;base64,") and len(src) > 2000 for src in checker.images
    )
    text = " ".join(checker.text)
    assert ev.verdict.label in text
    for reason in ev.verdict.reasons + ev.verdict.passed:
        assert reason in text
    assert "script" not in checker.tags  # the run name is escaped, not executed
    assert "<script>" in text and "zero <b>" in text and "XLF & co" in text
    assert "Per-fold results" in text and "Model comparison" in text


def test_report_without_training_frame(tmp_path: Path) -> None:
    ev, test_frame, _ = _inputs("regression", n=200, seed=1)  # shorter than a year
    path = write_report(
        tmp_path,
        run={"id": 1},
        evaluation=ev,
        test_frame=test_frame,
        fold_table=pd.DataFrame(),
        model_table=pd.DataFrame(),
    )
    doc = path.read_text(encoding="utf-8")
    assert "NOT TRADEABLE" in doc
    assert "test period of 200 days is too short to decide (need ≥ 250)" in doc
    assert all((tmp_path / n).stat().st_size > 0 for n in PLOT_FILES)


def test_compare_table() -> None:
    ev, _, _ = _inputs("regression", n=300)
    a = {"id": 1, "name": "small", **ev.to_json()}
    b = {"id": 2, "backtest": {"sharpe_net": 0.5}}
    table = compare_table([a, b])
    assert list(table.columns) == ["1 small", "2"]
    assert table.loc["net Sharpe", "1 small"] == pytest.approx(ev.strategy.net.sharpe)
    assert table.loc["net Sharpe", "2"] == 0.5
    assert table.loc["DSR", "2"] is None
    assert table.loc["tradeable", "1 small"] == ev.verdict.tradeable


def test_report_has_calibration_plot_and_one_sentence_answer(tmp_path: Path) -> None:
    ev, test_frame, _ = _inputs("regression", n=400, seed=3)
    run = {"id": 7, "name": "xlf", "config": {"data": {"target": "XLF"}}}
    path = write_report(
        tmp_path,
        run=run,
        evaluation=ev,
        test_frame=test_frame,
        fold_table=pd.DataFrame(),
        model_table=pd.DataFrame(),
    )
    doc = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(doc)
    text = " ".join(checker.text)
    # the question and its answer, in one sentence, before everything else
    sentence = answer_sentence(ev, "XLF")
    assert sentence.startswith("Does an LSTM on past returns predict XLF's next-day return")
    assert "after 5 bps of costs?" in sentence
    imported = answer_sentence(dataclasses.replace(ev, primary="gbm"), "XLF")
    assert imported.startswith("Does the forecast “gbm” predict XLF's next-day return")
    assert sentence.split("? ")[1].startswith("Yes" if ev.verdict.tradeable else "No: ")
    assert doc.index(html.escape(sentence, quote=True)) < doc.index("Verdict:")
    # the calibration plot, beside the raw scatter, and its table from the decile table
    assert (tmp_path / "calibration.png").stat().st_size > 1000
    assert PLOT_FILES.index("calibration.png") == PLOT_FILES.index("predicted_vs_actual.png") + 1
    assert "Calibration: next-day return and hit rate by decile" in text
    deciles = decile_frame(ev)
    assert len(deciles) == 10 and deciles["n"].sum() == ev.n_days
    assert fmt.percent(deciles.loc[10, "mean"], 3) in text
    # the original study's chart comes after the P&L, labelled as not a P&L
    assert PLOT_FILES.index("cumulative_predicted.png") > PLOT_FILES.index("pnl_vs_buy_hold.png")
    assert "not a P&L" in text
    # number formats are the CLI's: Sharpe to two decimals, p-values to two digits
    assert f"p = {fmt.pvalue(ev.pt.pvalue)}" in text


def test_the_universe_report_is_the_same_page_with_its_own_sections(tmp_path: Path) -> None:
    from lstm_madness.evaluation.universe_study import evaluate_universe, universe_panels
    from lstm_madness.report.universe import UNIVERSE_PLOT_FILES, write_universe_report

    rng = np.random.default_rng(2)
    dates = pd.bdate_range("2018-01-01", periods=300)
    symbols = [f"S{j:02d}" for j in range(12)]
    realized = rng.normal(0.0003, 0.01, (300, 12))
    rows = pd.DataFrame(
        [
            (d, s, model, pred, realized[t, j] - realized[t].mean(), realized[t, j])
            for t, d in enumerate(dates)
            for j, s in enumerate(symbols)
            for model, pred in (
                ("lstm", realized[t, j] + rng.normal(0, 0.02)),
                ("baseline:zero", 0.0),
            )
        ],
        columns=["date", "symbol", "model", "y_pred", "y_true", "realized"],
    )
    ev = evaluate_universe(
        panels=universe_panels(rows),
        task="regression",
        primary="lstm",
        settings=EvaluationSettings(rule="long_short", top_k=3, bootstrap_reps=100),
        warnings=("Survivorship bias: a fixed list",),
    )
    run = {**RUN, "target": "universe:synth"}
    path = write_universe_report(
        tmp_path, run=run, evaluation=ev, fold_table=pd.DataFrame(), model_table=pd.DataFrame()
    )
    doc = path.read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(doc)
    checker.close()
    assert checker.stack == [] and len(checker.images) == len(UNIVERSE_PLOT_FILES)
    text = " ".join(checker.text)
    # the shared page: title, the answer first, verdict, model and fold tables, run, config
    assert "Does an LSTM on past returns rank the members of universe:synth" in text
    assert "vs the equal-weight book" in text
    assert doc.index("class='answer'") < doc.index("Verdict:") < doc.index("Long-short book")
    for heading in ("Ranking skill", "Significance, counting the tries", "Model comparison",
                    "Folds", "Run", "Configuration"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in doc
    assert "Survivorship bias: a fixed list" in text
    assert "script" not in checker.tags

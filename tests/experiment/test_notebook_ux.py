"""The Python API in a notebook (issue 21): ``run(progress=...)`` shows a progress bar
where a person watches, and a result's HTML stands on its own styles."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from lstm_madness import api, judge, run
from lstm_madness.data.db import make_engine
from lstm_madness.errors import ConfigError

CONFIG = {
    "data": {"target": "SYN"},
    "model": {"units": [4]},
    "train": {"epochs": 2},
    "split": {"scheme": "walk_forward", "initial_train_days": 250, "retrain_every_days": 80},
    "evaluation": {"bootstrap_reps": 50},
}


@pytest.fixture
def stored(sqlite_url: str, write_returns) -> str:
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 420), "2002-01-01")
    engine.dispose()
    return sqlite_url


def test_run_shows_progress_when_asked_and_stays_quiet_in_a_pipe(stored, capsys):
    run(CONFIG, db=stored, progress=True)
    shown = capsys.readouterr().err
    assert "folds" in shown and "3/3" in shown and "done" in shown
    run(CONFIG, db=stored)  # "auto": not a notebook, not a terminal
    run(CONFIG, db=stored, progress=False)
    assert capsys.readouterr().err == ""
    events = []
    run(CONFIG, db=stored, progress=lambda event, **info: events.append(event))
    assert events[0] == "fold" and "epoch" in events
    with pytest.raises(ConfigError, match="progress must be"):
        run(CONFIG, db=stored, progress="yes")


def test_auto_progress_in_a_notebook(monkeypatch, capsys):
    """In Jupyter "auto" shows progress: Rich's bar in the cell with ipywidgets, else a
    line per fold on stderr (which the cell shows too)."""
    import rich.console

    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: True)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with api._progress("auto") as reporter:
        assert reporter is not None and not reporter.live
        reporter("fold", fold=0, n_folds=3)
        reporter("epoch", epoch=1, epochs=2, active=4, models=4)
        reporter("fold", fold=3, n_folds=3)
    assert capsys.readouterr().err.splitlines() == ["folds 0/3", "folds 3/3"]
    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: False)
    with api._progress("auto") as reporter:
        assert reporter is None  # not a terminal either


class _Cells(HTMLParser):
    """The model table's header and data cells with their inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self.table_style = ""
        self._open: tuple[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        style = dict(attrs).get("style") or ""
        if tag == "table":
            self.table_style = style
        if tag in ("th", "td"):
            self._open = (tag, style)
            self.cells.append((tag, style, ""))

    def handle_data(self, data):
        if self._open is not None:
            tag, style, text = self.cells[-1]
            self.cells[-1] = (tag, style, text + data)

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._open = None


def test_notebook_view_styles_its_own_table(stored):
    from lstm_madness.data.store import read_returns

    days = read_returns(make_engine(stored), "SYN").iloc[-300:-1]
    signal = pd.Series(0.1 * days["ret"].to_numpy(), index=days["date"], name="signal")
    html = judge(signal, target="SYN", db=stored, overrides={"evaluation.bootstrap_reps": 50})
    parser = _Cells()
    parser.feed(html._repr_html_())
    headers = [(text, style) for tag, style, text in parser.cells if tag == "th"]
    assert [h for h, _ in headers] == ["model", "MSE", "MAE", "R²_oos", "hit rate", "test days"]
    # each header a cell of its own with padding and a rule under it: no "hit ratetest days"
    assert all("padding:" in style and "border-bottom:" in style for _, style in headers)
    cells = [style for tag, style, _ in parser.cells if tag == "td"]
    assert cells and all("padding:" in style for style in cells)
    assert "border-collapse:collapse" in parser.table_style

"""Integration: ingest every real price file in ../shared/data/prices on both backends."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.fetch import load_universe
from lstm_madness.data.ingest import ingest_file
from lstm_madness.data.store import list_symbols, read_panel, read_returns

pytestmark = pytest.mark.shared_data


def _data_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()[1:] if line.strip())


def test_ingest_all_shared_files(engine: sa.Engine, shared_prices: Path) -> None:
    files = sorted(shared_prices.glob("*.csv"))
    assert len(files) == 40
    expected = {f.stem: _data_lines(f) for f in files}
    results = [ingest_file(engine, f) for f in files]
    assert all(r.rejected == 0 and r.updated == 0 for r in results)
    assert {r.symbols[0]: r.inserted for r in results} == expected
    listed = list_symbols(engine).set_index("symbol")["rows"].to_dict()
    assert listed == expected
    # no-change re-ingest of one file
    again = ingest_file(engine, shared_prices / "XLF.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, expected["XLF"])

    xlf = pd.read_csv(shared_prices / "XLF.csv")
    got = read_returns(engine, "XLF")
    np.testing.assert_allclose(
        got["ret"].to_numpy()[1:], xlf["adj_close"].pct_change().to_numpy()[1:], rtol=0, atol=1e-12
    )

    universe = load_universe("xlf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel = read_panel(engine, universe, "ret", start="1999-01-01")
    # (a ResourceWarning of a connection collected meanwhile may be caught too)
    dropped = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert "GS (1999-05-04)" in dropped[0]
    assert panel.columns[0] == "XLF" and len(panel.columns) == 24  # 7 late starters dropped
    common = read_panel(engine, universe, "ret", missing="start_later", end="2020-12-11")
    assert common.index[0] == pd.Timestamp("2005-11-17")  # ICE's first return
    assert not common.isna().any().any()

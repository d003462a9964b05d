"""Forecast files: the three layouts, CSV/Parquet/pandas, and every validation rule."""

from __future__ import annotations

import hashlib
import importlib.util
import io

import numpy as np
import pandas as pd
import pytest

from lstm_madness.data import forecasts as fc
from lstm_madness.data.forecasts import (
    DEFAULT_MODEL,
    forecasts_from_pandas,
    parse_forecasts,
    read_forecasts,
)
from lstm_madness.errors import ConfigError, DataError, ValidationError

DATES = ["2020-01-02", "2020-01-03", "2020-01-06"]


def _problems(data: bytes, **kw) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_forecasts(data, "f.csv", **kw)
    assert "nothing was stored" in str(info.value)
    return [str(p) for p in info.value.problems]


def test_single_layout_is_one_model_with_the_given_name() -> None:
    data = b"date,prediction\n2020-01-02,0.001\n2020-01-03,-0.002\n"
    f = parse_forecasts(data, "f.csv")
    assert f.layout == "single" and f.source == "csv" and f.models == (DEFAULT_MODEL,)
    assert f.frame["prediction"].tolist() == [0.001, -0.002]
    assert f.frame["line"].tolist() == [2, 3]
    assert f.checksum == hashlib.sha256(data).hexdigest()
    assert parse_forecasts(data, "f.csv", model="gbm").models == ("gbm",)


def test_long_and_wide_layouts_give_the_same_tidy_frame() -> None:
    long = (
        b"Date,Model,Prediction\n2020-01-02,a,0.1\n2020-01-02,b,0.2\n"
        b"2020-01-03,b,0.4\n2020-01-03,a,0.3\n"
    )
    wide = b"date,a,b\n2020-01-02,0.1,0.2\n2020-01-03,0.3,0.4\n"
    fl, fw = parse_forecasts(long, "l.csv"), parse_forecasts(wide, "w.csv")
    assert (fl.layout, fw.layout) == ("long", "wide")
    cols = ["date", "model", "prediction"]
    pd.testing.assert_frame_equal(fl.frame[cols], fw.frame[cols])
    assert fl.models == ("a", "b")
    assert fl.frame["line"].tolist() == [2, 5, 3, 4]  # each value keeps its own line


def test_quoted_model_names_blank_lines_bom_and_midnight_times() -> None:
    data = b'\xef\xbb\xbfdate,"gbm, v2"\n\n2020-01-02 00:00:00,0.5\n\n2020-01-03,0.25\n'
    f = parse_forecasts(data, "f.csv")
    assert f.models == ("gbm, v2",)
    assert f.frame["line"].tolist() == [3, 5]
    assert f.frame["date"].dt.strftime("%Y-%m-%d").tolist() == ["2020-01-02", "2020-01-03"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"2020-13-01,0.1", "line 3, column date, value '2020-13-01': unparseable date"),
        (b"03/01/2020,0.1", "line 3, column date, value '03/01/2020': unparseable date"),
        (b",0.1", "line 3, column date, value '': empty value: no date"),
        (b"2020-01-03,abc", "line 3, column prediction, value 'abc': not a number"),
        (b"2020-01-03,1.5.2", "line 3, column prediction, value '1.5.2': not a number"),
        (b"2020-01-03,NaN", "line 3, column prediction, value 'NaN': prediction is NaN"),
        (b"2020-01-03,inf", "line 3, column prediction, value 'inf': prediction is infinite"),
        (b"2020-01-03,-1e999", "value '-1e999': prediction is infinite"),
        (b"2020-01-03,", "line 3, column prediction, value '': empty value: no prediction"),
        (b"2020-01-03,0.1,7", "line 3, value '2020-01-03,0.1,7': expected 2 fields, found 3"),
        (b"2020-01-02,0.2", "line 3, column date, value '2020-01-02': duplicate date (lines 2, 3)"),
    ],
)
def test_each_bad_value_is_named_with_file_line_column_and_reason(
    line: bytes, expected: str
) -> None:
    problems = _problems(b"date,prediction\n2020-01-02,0.1\n" + line + b"\n")
    assert any(p.startswith("f.csv, ") and expected in p for p in problems), problems


def test_every_problem_is_collected_not_only_the_first() -> None:
    data = (
        b"date,a,b\n2020-01-02,0.1,x\n2020-01-03,nan,0.2\n2020-01-06,0.1,0.1\n2020-01-06,0.3,0.1\n"
    )
    problems = _problems(data)
    assert len(problems) == 4
    assert "line 2, column b, value 'x'" in problems[0]
    assert "line 3, column a, value 'nan'" in problems[1]
    assert all("duplicate date (lines 4, 5)" in p for p in problems[2:])


def test_duplicate_date_and_model_in_a_long_file_names_the_model() -> None:
    data = b"date,model,prediction\n2020-01-02,a,0.1\n2020-01-02,b,0.1\n2020-01-02,a,0.2\n"
    problems = _problems(data)
    assert len(problems) == 2
    assert all("duplicate date for model 'a' (lines 2, 4)" in p for p in problems)


def test_direction_probabilities_must_lie_in_the_unit_interval() -> None:
    data = b"date,prediction\n2020-01-02,0\n2020-01-03,1\n2020-01-06,1.01\n2020-01-07,-0.2\n"
    problems = _problems(data, task="direction")
    assert len(problems) == 2
    assert all("a probability of an up move must be in [0, 1]" in p for p in problems)
    assert parse_forecasts(data, "f.csv", task="return").frame.shape[0] == 4


def test_model_names_of_the_tool_and_empty_ones_are_refused() -> None:
    problems = _problems(b"date,model,prediction\n2020-01-02,baseline:zero,0.1\n2020-01-03,,0.1\n")
    assert "column model, value 'baseline:zero': model names starting with" in problems[0]
    assert "line 3, column model, value '': empty model name" in problems[1]
    with pytest.raises(DataError, match="tool's own baselines"):
        parse_forecasts(b"date,Baseline:mean\n2020-01-02,0.1\n", "w.csv")
    with pytest.raises(DataError, match="longer than 64"):
        parse_forecasts(b"date," + b"m" * 65 + b"\n2020-01-02,0.1\n", "w.csv")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"day,prediction\n2020-01-02,0.1\n", "no date column"),
        (b"date\n2020-01-02\n", "no prediction column"),
        (b"date,model\n2020-01-02,a\n", "exactly the columns date,model,prediction"),
        (b"date,model,prediction,extra\n2020-01-02,a,0.1,1\n", "exactly the columns"),
        (b"date,a,A\n2020-01-02,0.1,0.2\n", "appears twice"),
        (b"date,prediction\n", "no forecasts"),
        (b"date,prediction\n2020-01-02,\xff\n", "not a UTF-8 text file"),
    ],
)
def test_unreadable_files_say_why(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_forecasts(data, "f.csv")


def test_a_model_name_is_only_for_one_model_files() -> None:
    with pytest.raises(DataError, match="one-model file"):
        parse_forecasts(b"date,a,b\n2020-01-02,0.1,0.2\n", "w.csv", model="x")
    one = parse_forecasts(b"date,a\n2020-01-02,0.1\n", "w.csv", model="x")
    assert one.models == ("x",)


def test_unknown_task_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="return, direction"):
        parse_forecasts(b"date,prediction\n2020-01-02,0.1\n", "f.csv", task="regression")


def test_read_forecasts_reads_files_and_reports_missing_ones(tmp_path) -> None:
    path = tmp_path / "preds.csv"
    path.write_bytes(b"date,prediction\n2020-01-02,0.1\n")
    f = read_forecasts(path)
    assert f.name == str(path) and f.frame.shape[0] == 1
    with pytest.raises(DataError, match="cannot read"):
        read_forecasts(tmp_path / "missing.csv")
    fake = tmp_path / "preds.parquet"
    fake.write_bytes(b"date,prediction\n")
    with pytest.raises(DataError, match="not a Parquet file"):
        read_forecasts(fake)


def test_parquet_without_pyarrow_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        fc.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyarrow" else real(name, *a),
    )
    with pytest.raises(DataError, match="pip install pyarrow"):
        parse_forecasts(b"PAR1 rest of a parquet file", "f.parquet")


def test_parquet_files_are_read_like_csv(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    idx = pd.DatetimeIndex(DATES, name="date")
    wide = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.4, 0.5, 0.6]}, index=idx)
    path = tmp_path / "wide.parquet"
    wide.to_parquet(path)
    f = read_forecasts(path)
    assert f.source == "parquet" and f.layout == "wide" and f.models == ("a", "b")
    assert f.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    csv = parse_forecasts(
        b"date,a,b\n2020-01-02,0.1,0.4\n2020-01-03,0.2,0.5\n2020-01-06,0.3,0.6\n", "w.csv"
    )
    cols = ["date", "model", "prediction"]
    pd.testing.assert_frame_equal(f.frame[cols], csv.frame[cols])
    long = wide.stack().rename("prediction").rename_axis(["date", "model"]).reset_index()
    buf = io.BytesIO()
    long.to_parquet(buf, index=False)
    assert parse_forecasts(buf.getvalue(), "l.parquet").layout == "long"
    bad = wide.copy()
    bad.iloc[1, 0] = np.inf
    buf = io.BytesIO()
    bad.to_parquet(buf)
    with pytest.raises(ValidationError) as info:
        parse_forecasts(buf.getvalue(), "bad.parquet")
    (problem,) = info.value.problems
    assert (problem.line, problem.column, problem.reason) == (2, "a", "prediction is infinite")


def test_pandas_series_and_frames() -> None:
    idx = pd.DatetimeIndex(DATES)
    s = pd.Series([0.1, 0.2, 0.3], index=idx, name="gbm")
    f = forecasts_from_pandas(s)
    assert f.source == "pandas" and f.layout == "single" and f.models == ("gbm",)
    assert forecasts_from_pandas(s.rename(None)).models == (DEFAULT_MODEL,)
    assert forecasts_from_pandas(s, model="x").models == ("x",)
    again = forecasts_from_pandas(s.copy())
    assert again.checksum == f.checksum  # same forecasts, same checksum
    assert forecasts_from_pandas(s + 1e-9).checksum != f.checksum
    frame = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.0, 0.1, 0.2]}, index=idx)
    assert forecasts_from_pandas(frame).models == ("a", "b")
    with pytest.raises(ValidationError) as info:
        forecasts_from_pandas(frame.assign(b=[0.0, np.nan, 0.2]))
    (problem,) = info.value.problems
    assert (problem.line, problem.column, problem.reason) == (2, "b", "prediction is NaN")
    with pytest.raises(DataError, match="DatetimeIndex"):
        forecasts_from_pandas(pd.Series([0.1, 0.2]))
    with pytest.raises(DataError, match="Series or DataFrame"):
        forecasts_from_pandas([0.1, 0.2])  # type: ignore[arg-type]
    intraday = pd.Series([0.1], index=pd.DatetimeIndex(["2020-01-02 15:30"]))
    with pytest.raises(ValidationError, match="unparseable date"):
        forecasts_from_pandas(intraday)


def test_a_frame_written_by_pandas_without_an_index_name_is_read() -> None:
    idx = pd.DatetimeIndex(DATES)
    frame = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.0, 0.1, 0.2]}, index=idx)
    data = frame.to_csv().encode()
    assert data.startswith(b",a,b")
    f = parse_forecasts(data, "w.csv")
    assert f.layout == "wide" and f.models == ("a", "b")
    assert f.frame["date"].dt.strftime("%Y-%m-%d").tolist()[:3] == DATES

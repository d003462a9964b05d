"""Forecast files made elsewhere: read, validate, and turn into one tidy long frame.

A forecast file holds predictions made by another tool, to be judged against a target whose
prices are in the store (alignment against the target's calendar is
:mod:`lstm_madness.data.alignment`). Three layouts, detected from the header (names matched
case-insensitively, surrounding blanks ignored):

``single``
    ``date,prediction``: one model, named by the caller (default :data:`DEFAULT_MODEL`).
``long``
    ``date,model,prediction``: one row per (date, model).
``wide``
    ``date,<model>,<model>,...``: one column per model, named by its header.

Without a ``date`` column an empty first header names the dates (pandas writes an unnamed
index that way).

A prediction is a next-period return (``task="return"``, a fraction: 0.01 = 1 %) or the
probability of an up move (``task="direction"``, in [0, 1]). Dates are ISO ``YYYY-MM-DD``
(a midnight time part, as pandas writes it, is accepted). CSV is read as UTF-8 (optional
BOM); Parquet needs ``pyarrow``.

Validation collects every problem and raises one
:class:`~lstm_madness.errors.ValidationError` naming file, line, column, value and reason:
a line with the wrong number of fields, an empty cell, an unparseable date or number, a NaN
or infinite prediction, a duplicate (date, model), and for ``direction`` a probability
outside [0, 1]. ``line`` is the physical line for CSV and the 1-based row for Parquet files
and pandas objects.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_madness.data.validation import Problem
from lstm_madness.errors import ConfigError, DataError, ValidationError

#: What a prediction is: a next-period return, or the probability of an up move.
FORECAST_TASKS: tuple[str, ...] = ("return", "direction")
LAYOUTS: tuple[str, ...] = ("single", "long", "wide")
#: Model name of a ``date,prediction`` file when the caller gives none.
DEFAULT_MODEL = "forecast"
#: Prefix of the tool's own models; an imported model may not use it.
RESERVED_PREFIX = "baseline:"
#: Longest model name the store keeps (``predictions.model``).
MAX_MODEL_NAME = 64
#: Columns of :attr:`ForecastFile.frame`, in order.
FRAME_COLUMNS: tuple[str, ...] = ("line", "date", "model", "prediction")
_SHOWN_PROBLEMS = 20
#: The reason of a date that is not ``YYYY-MM-DD``: a rejection names the format once and
#: shows the first :data:`_SHOWN_DATES` of them.
BAD_DATE = "unparseable date"
_SHOWN_DATES = 3
_PARQUET_MAGIC = b"PAR1"
_NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_DATE_RE = r"(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_NAN_WORDS = frozenset({"nan", "+nan", "-nan", "na", "n/a", "null", "none", "-"})
_INF_WORDS = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


@dataclass(frozen=True)
class ForecastFile:
    """A validated forecast file.

    Attributes
    ----------
    name : str
        Display name (the path, or ``<Series>``/``<DataFrame>`` for pandas input).
    source : str
        ``csv``, ``parquet`` or ``pandas``.
    layout : str
        ``single``, ``long`` or ``wide``.
    task : str
        ``return`` or ``direction``.
    frame : pandas.DataFrame
        Columns :data:`FRAME_COLUMNS`: ``line`` (int64, see the module docstring), ``date``
        (datetime64[ns], the date the file gives), ``model`` (str), ``prediction``
        (float64, finite). Models in order of first appearance, dates ascending within a
        model; one row per (date, model).
    checksum : str
        sha256 (hex) of the file's bytes (pandas input: of :func:`canonical_csv` of
        ``frame``), as ``ingest_log`` keeps for price files.
    """

    name: str
    source: str
    layout: str
    task: str
    frame: pd.DataFrame
    checksum: str

    @property
    def models(self) -> tuple[str, ...]:
        """Model names in order of first appearance."""
        return tuple(pd.unique(self.frame["model"]).tolist())


def checksum(data: bytes) -> str:
    """sha256 (hex) of bytes, as :mod:`lstm_madness.data.ingest` records for price files."""
    return hashlib.sha256(data).hexdigest()


def rejection(name: str, problems: Sequence[Problem], what: str = "forecasts") -> ValidationError:
    """One :class:`ValidationError` listing the first problems (all in ``.problems``)."""
    problems = sorted(dict.fromkeys(problems), key=lambda p: (p.line or 0, p.column or ""))
    dates = [p for p in problems if p.reason == BAD_DATE]
    if dates:  # one format mistake, often on every line: say the format once
        others = [p for p in problems if p.reason != BAD_DATE]
        shown = [_where(p) for p in dates[:_SHOWN_DATES]]
        if len(dates) > _SHOWN_DATES:
            shown.append(f"... and {len(dates) - _SHOWN_DATES} more {BAD_DATE}s")
        shown += [str(p) for p in others[:_SHOWN_PROBLEMS]]
        head = f"dates must be YYYY-MM-DD, e.g. 2010-01-04 ({len(dates)} {BAD_DATE}(s))"
    else:
        shown = [str(p) for p in problems[:_SHOWN_PROBLEMS]]
        head = f"{len(problems)} problem(s)"
        others = problems
    if len(others) > _SHOWN_PROBLEMS:
        shown.append(f"... and {len(others) - _SHOWN_PROBLEMS} more")
    listed = "\n".join(f"  {line}" for line in shown)
    return ValidationError(
        f"{name}: {head}; the {what} were rejected and nothing was stored:\n{listed}",
        list(problems),
    )


def _where(problem: Problem) -> str:
    """Where a problem is and its value (file, line, column, value), without the reason."""
    p = problem
    where = p.file if p.line is None else f"{p.file}, line {p.line}"
    return f"{where}, column {p.column}, value {p.value!r}"


def _check_task(task: str) -> None:
    if task not in FORECAST_TASKS:
        raise ConfigError(f"task must be one of {', '.join(FORECAST_TASKS)}, got {task!r}")


# ------------------------------------------------------------------------------ cells


@dataclass(frozen=True)
class _Cells:
    """A table as text: header names, the line of each row, and each column's strings."""

    header: list[str]
    lines: np.ndarray  # (n_rows,) int64
    columns: list[np.ndarray]  # one (n_rows,) object array of str per header name
    problems: list[Problem]  # rows that could not be split into cells


def _csv_cells(data: bytes, name: str) -> _Cells:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise DataError(f"{name}: not a UTF-8 text file ({where})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    start = 1  # physical line where the next record starts
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [h.strip() for h in record]
                continue
            if len(record) != len(header):
                shown = ",".join(record)
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                problems.append(
                    Problem(
                        name,
                        line,
                        None,
                        shown,
                        f"expected {len(header)} fields, found {len(record)}",
                    )
                )
                continue
            rows.append(record)
            lines.append(line)
    except csv.Error as exc:
        raise DataError(f"{name}, line {reader.line_num}: malformed CSV ({exc})") from exc
    if header is None:
        raise DataError(f"{name}: the file is empty")
    table = np.array(rows, dtype=object).reshape(len(rows), len(header))
    columns = [np.array([c.strip() for c in table[:, j]], dtype=object) for j in range(len(header))]
    return _Cells(header, np.asarray(lines, dtype=np.int64), columns, problems)


def _text_column(values: pd.Series | pd.Index, is_date: bool) -> np.ndarray:
    """Cells as text: dates as ISO days (a time of day is kept so it fails to parse),
    numbers with the shortest round-trip repr, NaN as ``nan``, None as empty."""
    if is_date and pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.DatetimeIndex(values)
        if stamps.tz is not None:
            stamps = stamps.tz_localize(None)
        midnight = stamps.normalize() == stamps
        text = np.where(midnight, stamps.strftime("%Y-%m-%d"), stamps.strftime("%Y-%m-%d %H:%M:%S"))
        return np.where(stamps.isna(), "", text).astype(object)
    out = []
    for v in np.asarray(values, dtype=object):
        if v is None or v is pd.NaT:
            out.append("")
        elif isinstance(v, float | np.floating):
            out.append(repr(float(v)))
        else:
            out.append(str(v).strip())
    return np.array(out, dtype=object)


def _frame_cells(frame: pd.DataFrame) -> _Cells:
    """Cells of a DataFrame with the dates in a ``date`` column or in its index."""
    has_date = any(str(c).strip().lower() == "date" for c in frame.columns)
    if not has_date:
        named_date = str(frame.index.name).strip().lower() == "date"
        if not (isinstance(frame.index, pd.DatetimeIndex) or named_date):
            raise DataError("the forecasts need their dates: a DatetimeIndex or a 'date' column")
        frame = frame.rename_axis("date").reset_index()
    header = [str(c).strip() for c in frame.columns]
    columns = [
        _text_column(frame.iloc[:, j], header[j].lower() == "date") for j in range(len(header))
    ]
    lines = np.arange(1, len(frame) + 1, dtype=np.int64)
    return _Cells(header, lines, columns, [])


def _parquet_cells(data: bytes, name: str) -> _Cells:
    if importlib.util.find_spec("pyarrow") is None:
        raise DataError(
            f"{name}: reading Parquet needs pyarrow, which is not installed: "
            "`pip install pyarrow` (or save the forecasts as CSV)"
        )
    try:
        frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{name}: unreadable Parquet file ({exc})") from exc
    if isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index(drop=True)
    return _frame_cells(frame)


# ----------------------------------------------------------------------------- layout


def _canonical(raw: str) -> str:
    return raw.strip().strip('"').strip().lower()


def _layout(header: list[str], name: str) -> tuple[str, int, list[int]]:
    """Layout, position of the date column, positions of the value columns."""
    canon = [_canonical(h) for h in header]
    seen: set[str] = set()
    for h, c in zip(header, canon, strict=True):
        if c in seen:
            raise DataError(f"{name}: column {h!r} appears twice in the header")
        seen.add(c)
    expected = "date,prediction or date,model,prediction or date,<model>,<model>,..."
    if "date" not in canon and canon and canon[0] == "":
        canon[0] = "date"  # pandas writes an unnamed index with an empty header
    if "date" not in canon:
        raise DataError(
            f"{name}: no date column in header {','.join(header)!r}: expected {expected}"
        )
    d = canon.index("date")
    rest = [j for j in range(len(canon)) if j != d]
    names = {canon[j] for j in rest}
    if not rest:
        raise DataError(
            f"{name}: no prediction column in header {','.join(header)!r}: expected {expected}"
        )
    if names == {"model", "prediction"}:
        return "long", d, [canon.index("model"), canon.index("prediction")]
    if "model" in names:
        raise DataError(
            f"{name}: a long file has exactly the columns date,model,prediction; "
            f"got {','.join(header)!r}"
        )
    if names == {"prediction"}:
        return "single", d, rest
    return "wide", d, rest


def _model_problem(model: str) -> str | None:
    if not model:
        return "empty model name"
    if model.lower().startswith(RESERVED_PREFIX):
        return f"model names starting with {RESERVED_PREFIX!r} are the tool's own baselines"
    if len(model) > MAX_MODEL_NAME:
        return f"model name longer than {MAX_MODEL_NAME} characters"
    return None


def parse_dates(text: np.ndarray) -> np.ndarray:
    """ISO dates (``YYYY-MM-DD``, optional midnight time part) as datetime64[ns]; NaT where
    unparseable."""
    raw = pd.Series(text, dtype=object).astype(str)
    dates = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
    failed = dates.isna().to_numpy()
    if failed.any():
        day = raw[failed].str.extract(f"^{_DATE_RE}$", expand=False)
        dates[failed] = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
    return dates.to_numpy(dtype="datetime64[ns]")


def _parse_numbers(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float values (NaN where not a finite number) and the reason per cell ('' if fine)."""
    raw = pd.Series(text, dtype=object).astype(str)
    lower = raw.str.lower()
    number = raw.str.fullmatch(_NUMBER_RE).to_numpy(dtype=bool)
    values = np.full(len(raw), np.nan)
    values[number] = raw.to_numpy(dtype=object)[number].astype(np.float64)
    reasons = np.full(len(raw), "", dtype=object)
    reasons[~number] = "not a number"
    reasons[lower.isin(_NAN_WORDS).to_numpy()] = "prediction is NaN"
    reasons[lower.isin(_INF_WORDS).to_numpy() | (number & ~np.isfinite(values))] = (
        "prediction is infinite"
    )
    reasons[(raw == "").to_numpy()] = "empty value: no prediction"
    values[reasons != ""] = np.nan
    return values, reasons


@dataclass(frozen=True)
class _Values:
    """Every prediction cell: its row in the cells, model, text and column name."""

    row: np.ndarray  # (n_values,) index into the rows of the cells
    model: np.ndarray  # (n_values,) str
    text: np.ndarray  # (n_values,) str
    column: np.ndarray  # (n_values,) str, header name of the cell


def _one_model_name(name: str, names: Sequence[str], model: str | None) -> list[str]:
    if model is None:
        return list(names)
    if len(names) != 1:
        raise DataError(
            f"{name}: a model name can only be given for a one-model file; "
            f"this one has {len(names)} models"
        )
    return [model]


def _long_values(
    cells: _Cells, name: str, cols: list[int], model: str | None, problems: list[Problem]
) -> _Values:
    m_col, p_col = cols
    models = cells.columns[m_col]
    for i, m in enumerate(models):
        reason = _model_problem(m)
        if reason:
            problems.append(Problem(name, int(cells.lines[i]), cells.header[m_col], m, reason))
    if model is not None:
        _one_model_name(name, pd.unique(models).tolist(), model)
        models = np.full(len(models), model, dtype=object)
    n = len(cells.lines)
    column = np.full(n, cells.header[p_col], dtype=object)
    return _Values(np.arange(n), models, cells.columns[p_col], column)


def _wide_values(
    cells: _Cells, name: str, layout: str, cols: list[int], model: str | None
) -> _Values:
    if layout == "single":
        names = [model or DEFAULT_MODEL]
    else:
        names = _one_model_name(name, [cells.header[j] for j in cols], model)
    for n in names:
        reason = _model_problem(n)
        if reason:
            raise DataError(f"{name}: model {n!r}: {reason}")
    rows = len(cells.lines)
    header = np.array([cells.header[j] for j in cols], dtype=object)
    return _Values(
        row=np.repeat(np.arange(rows), len(cols)),
        model=np.tile(np.array(names, dtype=object), rows),
        text=np.stack([cells.columns[j] for j in cols], axis=1).reshape(-1),
        column=np.tile(header, rows),
    )


def _duplicate_problems(frame: pd.DataFrame, name: str, by_model: bool) -> list[Problem]:
    dup = frame.duplicated(["date", "model"], keep=False).to_numpy()
    problems: list[Problem] = []
    if not dup.any():
        return problems
    for (day, m), group in frame.loc[dup].groupby(["date", "model"], sort=False)["line"]:
        where = ", ".join(str(n) for n in group)
        whose = f" for model {m!r}" if by_model else ""
        reason = f"duplicate date{whose} (lines {where})"
        problems += [Problem(name, int(line), "date", str(day.date()), reason) for line in group]
    return problems


def _tidy(
    cells: _Cells, name: str, source: str, task: str, model: str | None, digest: str | None
) -> ForecastFile:
    """Validate cells into a :class:`ForecastFile`; raise every problem at once."""
    layout, d, cols = _layout(cells.header, name)
    problems = list(cells.problems)
    lines = cells.lines
    date_text = cells.columns[d]
    dates = parse_dates(date_text)
    bad_date = np.isnat(dates)
    for i in np.flatnonzero(bad_date):
        reason = "empty value: no date" if date_text[i] == "" else BAD_DATE
        problems.append(Problem(name, int(lines[i]), "date", str(date_text[i]), reason))
    if layout == "long":
        v = _long_values(cells, name, cols, model, problems)
    else:
        v = _wide_values(cells, name, layout, cols, model)

    values, reasons = _parse_numbers(v.text)
    dated = ~bad_date[v.row]
    if task == "direction":
        outside = (reasons == "") & ((values < 0) | (values > 1))
        reasons[outside] = "a probability of an up move must be in [0, 1]"
    for i in np.flatnonzero(dated & (reasons != "")):
        line = int(lines[v.row[i]])
        problems.append(Problem(name, line, str(v.column[i]), str(v.text[i]), str(reasons[i])))
    valid = dated & (reasons == "")
    frame = pd.DataFrame(
        {
            "line": lines[v.row][valid],
            "date": dates[v.row][valid],
            "model": v.model[valid].astype(str).astype(object),
            "prediction": values[valid],
        }
    )
    problems += _duplicate_problems(frame, name, by_model=layout == "long")
    if problems:
        raise rejection(name, problems)
    if frame.empty:
        raise DataError(f"{name}: no forecasts in the file")
    order = {m: i for i, m in enumerate(pd.unique(frame["model"]))}
    frame = frame.assign(_m=frame["model"].map(order))
    frame = frame.sort_values(["_m", "date"], kind="stable").drop(columns="_m")
    frame = frame.reset_index(drop=True)
    digest = digest or checksum(canonical_csv(frame))
    return ForecastFile(name, source, layout, task, frame[list(FRAME_COLUMNS)], digest)


def canonical_csv(frame: pd.DataFrame) -> bytes:
    """``date,model,prediction`` bytes of a tidy frame (floats as shortest repr): what the
    checksum of in-memory forecasts is taken over."""
    out = frame[["date", "model", "prediction"]].copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    out["prediction"] = [repr(float(v)) for v in out["prediction"]]
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


# ---------------------------------------------------------------------------- public


def parse_forecasts(
    data: bytes, name: str, *, task: str = "return", model: str | None = None
) -> ForecastFile:
    """Parse and validate the bytes of a forecast file (CSV, or Parquet by its magic bytes).

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        Display name used in every message.
    task : {"return", "direction"}
        What a prediction is (see the module docstring).
    model : str, optional
        Model name of a one-model file (default :data:`DEFAULT_MODEL` for ``date,prediction``,
        the column's header for a one-column wide file).

    Raises
    ------
    ValidationError
        Bad values (``.problems`` lists every one).
    DataError
        Unreadable file, unknown layout, bad model names, Parquet without pyarrow.
    """
    _check_task(task)
    if data.startswith(_PARQUET_MAGIC):
        return _tidy(_parquet_cells(data, name), name, "parquet", task, model, checksum(data))
    return _tidy(_csv_cells(data, name), name, "csv", task, model, checksum(data))


def read_forecasts(
    path: str | Path, *, task: str = "return", model: str | None = None
) -> ForecastFile:
    """Read and validate a forecast file; see :func:`parse_forecasts`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() in (".parquet", ".pq") and not data.startswith(_PARQUET_MAGIC):
        raise DataError(f"{path}: not a Parquet file (no PAR1 magic bytes)")
    return parse_forecasts(data, str(path), task=task, model=model)


def forecasts_from_pandas(
    predictions: pd.Series | pd.DataFrame,
    *,
    task: str = "return",
    model: str | None = None,
    name: str | None = None,
) -> ForecastFile:
    """Validate in-memory forecasts: a Series with a DatetimeIndex (one model, named
    ``model``, else the Series' name, else :data:`DEFAULT_MODEL`), or a DataFrame with one
    column per model and the dates in its index or in a ``date`` column (any of the three
    layouts). ``line`` in problems is the 1-based row. A Series named ``prediction`` (the
    column of a single-forecast file, e.g. ``frame["prediction"]``) is that single
    forecast: it gets :data:`DEFAULT_MODEL`, as the file judged from the CLI does.
    """
    _check_task(task)
    if isinstance(predictions, pd.Series):
        name_ = None if predictions.name in (None, "prediction") else str(predictions.name)
        label = model or name_
        frame = predictions.to_frame(name="prediction")
        display = name or f"<Series {label or DEFAULT_MODEL!r}>"
        return _tidy(_frame_cells(frame), display, "pandas", task, label, None)
    if isinstance(predictions, pd.DataFrame):
        display = name or "<DataFrame>"
        return _tidy(_frame_cells(predictions), display, "pandas", task, model, None)
    raise DataError(
        f"forecasts must be a pandas Series or DataFrame, got {type(predictions).__name__}"
    )

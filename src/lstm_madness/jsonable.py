"""One converter to JSON-safe Python values, used by configs, summaries and sweeps, and
:func:`dig`, the one reader of a dotted path in such values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["dig", "jsonable"]


def _when(value: dt.datetime) -> str | None:
    if value != value:  # NaT
        return None
    if value.tzinfo is None and value.time() == dt.time(0):
        return value.date().isoformat()
    return value.isoformat()


def jsonable(value: Any) -> Any:
    """Recursively convert to JSON-safe Python: mappings to dicts with string keys, tuples
    and arrays to lists, numpy scalars to numbers, non-finite floats to ``None``, dates to
    ISO strings (a naive timestamp at midnight to its date), objects with ``to_dict`` to
    their dict."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        return _when(value.astype("datetime64[us]").item())
    if isinstance(value, dt.datetime):
        return _when(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return value


def dig(d: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted ``path`` of nested mappings (``"backtest.sharpe_net"``), or
    None where a part is missing."""
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur

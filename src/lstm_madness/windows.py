"""Windows read from a panel on demand, never materialised for a whole fold.

A universe study's training set is every (member, date) window of ``time_steps`` days:
500 members × 510 dates × 240 days is 61 million floats (245 MB in float32) per study
period, most of them repeated (a member's windows overlap in all but one day).
:class:`PanelWindows` keeps the fold's scaled ``(D, S, F)`` panel once and the samples as
``(end row, column)`` pairs; the compiled trainer gathers each batch's windows straight from
the panel (:func:`lstm_madness.models._lstm_kernels.gather_panel`), and anything else that
needs a dense array asks for one (``np.asarray``, or a slice of samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PanelWindows"]


@dataclass(frozen=True, eq=False)
class PanelWindows:
    """The windows ``values[ends[i] - T + 1 : ends[i] + 1, cols[i]]`` (``T`` =
    ``time_steps``) of samples ``i = 0 .. n - 1``, shape ``(n, T, F)`` like a dense array.

    ``values`` is ``(D, S, F)`` float32, C-contiguous, shared (not copied); every window
    must lie inside it (``ends >= T - 1``). Indexing by a slice gives the samples' own
    :class:`PanelWindows`; ``np.asarray`` (or indexing by an integer array) gathers a dense
    float32 copy of the windows asked for.
    """

    values: np.ndarray
    ends: np.ndarray
    cols: np.ndarray
    time_steps: int

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float32)
        ends = np.ascontiguousarray(self.ends, dtype=np.int64)
        cols = np.ascontiguousarray(self.cols, dtype=np.int64)
        if values.ndim != 3 or ends.shape != cols.shape or ends.ndim != 1:
            raise ValueError("PanelWindows: values (D, S, F), ends and cols (n,)")
        if ends.size and (ends.min() < self.time_steps - 1 or ends.max() >= len(values)):
            raise ValueError("PanelWindows: a window reaches outside the panel")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "ends", ends)
        object.__setattr__(self, "cols", cols)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.ends), int(self.time_steps), int(self.values.shape[2]))

    ndim = 3
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, key: Any) -> PanelWindows | np.ndarray:
        if isinstance(key, slice):
            return PanelWindows(self.values, self.ends[key], self.cols[key], self.time_steps)
        rows = np.asarray(key)
        return self._gather(self.ends[rows], self.cols[rows])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        dense = self._gather(self.ends, self.cols)
        return dense if dtype is None else dense.astype(dtype, copy=False)

    def _gather(self, ends: np.ndarray, cols: np.ndarray) -> np.ndarray:
        offsets = np.arange(1 - self.time_steps, 1)
        return self.values[ends[:, None] + offsets, cols[:, None]]  # (n, T, F)

    def all_finite(self) -> bool:
        """Whether every value of every window is finite, checked on the panel's cells the
        windows cover (each once)."""
        finite = np.isfinite(self.values).all(axis=2)  # (D, S)
        bad_after = np.cumsum(~finite, axis=0)  # (D, S): non-finite cells up to each row
        lo = self.ends - self.time_steps
        before = np.where(lo >= 0, bad_after[np.maximum(lo, 0), self.cols], 0)
        return bool(np.all(bad_after[self.ends, self.cols] - before == 0))

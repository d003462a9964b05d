"""numba kernel of the stationary-bootstrap confidence intervals (see
:func:`lstm_madness.evaluation.significance.resample_sums`, which owns the definition and
has a NumPy path giving the same bits). Import through :func:`lstm_madness.jit.load`."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _next_day(pos, start, uniform, p, n):
    """The day after ``pos`` (wrapping around), or ``start`` when the block breaks
    (``uniform < p``); without branches (a jump is a coin flip: unpredictable)."""
    after = pos + 1
    after -= n * (after == n)
    jump = uniform < p
    return jump * start + (1 - jump) * after


@njit(cache=True, nogil=True)
def resample_sums(y, starts, uniforms, p):
    """Per resample ``r``: the sum and the sum of squares of ``y`` over its days, each
    added in day order (strict IEEE: no fastmath, so the bits equal NumPy's sequential
    ``cumsum``). Day ``t`` starts a block at ``starts[r, t]`` when ``t == 0`` or
    ``uniforms[r, t] < p``, else takes the day after the previous one, wrapping around.

    Resamples are done two at a time: their chains of days and of sums are independent,
    so the CPU overlaps them (each resample's sums keep their own day order). With an odd
    number of resamples the last one is paired with itself."""
    reps, n = starts.shape
    s1 = np.empty(reps)
    s2 = np.empty(reps)
    days = np.empty((2, n), np.int32)
    for r0 in range(0, reps, 2):
        r1 = min(r0 + 1, reps - 1)
        pos0 = starts[r0, 0]
        pos1 = starts[r1, 0]
        days[0, 0] = pos0
        days[1, 0] = pos1
        for t in range(1, n):
            pos0 = _next_day(pos0, starts[r0, t], uniforms[r0, t], p, n)
            pos1 = _next_day(pos1, starts[r1, t], uniforms[r1, t], p, n)
            days[0, t] = pos0
            days[1, t] = pos1
        a0 = b0 = a1 = b1 = 0.0
        for t in range(n):
            v0 = y[days[0, t]]
            v1 = y[days[1, t]]
            a0 += v0
            b0 += v0 * v0
            a1 += v1
            b1 += v1 * v1
        s1[r0], s2[r0], s1[r1], s2[r1] = a0, b0, a1, b1
    return s1, s2

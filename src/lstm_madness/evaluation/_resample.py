"""numba kernel of the stationary-bootstrap confidence intervals (see
:func:`lstm_madness.evaluation.significance.resample_sums`, which owns the definition and
has a NumPy path giving the same bits). Import through :func:`lstm_madness._numba.load`."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def resample_sums(y, starts, uniforms, p):
    """Per resample ``r``: the sum and the sum of squares of ``y`` over its days, each
    added in day order (strict IEEE: no fastmath, so the bits equal NumPy's sequential
    ``cumsum``). Day ``t`` starts a block at ``starts[r, t]`` when ``t == 0`` or
    ``uniforms[r, t] < p``, else takes the day after the previous one, wrapping around."""
    reps, n = starts.shape
    s1 = np.empty(reps)
    s2 = np.empty(reps)
    days = np.empty(n, np.int32)
    for r in range(reps):
        # the days of resample r, without branches (a jump is a coin flip: unpredictable)
        pos = starts[r, 0]
        days[0] = pos
        for t in range(1, n):
            after = pos + 1
            after -= n * (after == n)
            jump = uniforms[r, t] < p
            pos = jump * starts[r, t] + (1 - jump) * after
            days[t] = pos
        a = 0.0
        b = 0.0
        for t in range(n):
            v = y[days[t]]
            a += v
            b += v * v
        s1[r] = a
        s2[r] = b
    return s1, s2

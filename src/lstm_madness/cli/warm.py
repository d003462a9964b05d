"""Compile every numba kernel once, at install: ``python -m lstm_madness.cli.warm``.

``make demo`` and ``make test`` run it after installing, so that no command waits for
numba inside a run (about 20 s on the project's 2-core machine). It fills the cache that
every later command on this machine reads, :func:`lstm_madness.jit.cache_dir`
(``$NUMBA_CACHE_DIR`` when set, else ``~/.cache/lstm_madness/numba``): run it with the
environment the commands will have. Each kernel module is loaded by the code that calls
it, with the argument types of real calls (:func:`lstm_madness.models.compiled.warm`,
:func:`lstm_madness.evaluation.significance.resample_sums`). A cache already warm costs a
second or two. It lives in the CLI layer because it drives two layers (models,
evaluation) that do not import each other.
"""

from __future__ import annotations

import sys
import time


def warm() -> dict[str, bool]:
    """Load (compiling where cold) every module of :data:`lstm_madness.jit.KERNELS`;
    whether each is now cached on disk, by module name."""
    import numpy as np

    from lstm_madness import jit
    from lstm_madness.evaluation.significance import resample_sums
    from lstm_madness.models.compiled import warm as warm_training

    warm_training()
    jit.load("lstm_madness.evaluation._resample")  # numba is imported: the compiled path
    resample_sums(np.linspace(-1.0, 1.0, 20), 3.0, 4, 0)
    return {name: jit.cached(jit.load(name)) for name in jit.KERNELS}


def main() -> int:
    from lstm_madness import jit

    start = time.perf_counter()
    status = warm()
    seconds = time.perf_counter() - start
    cold = [name for name, ok in status.items() if not ok]
    where = jit.cache_dir()
    if cold:
        print(f"numba kernels not cached in {where}: {', '.join(cold)}", file=sys.stderr)
        return 1
    print(f"numba kernels ready in {where} ({seconds:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

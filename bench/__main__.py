"""Run the benchmarks: ``python -m bench [NAME ...]`` (default: all of ``ALL``).

Each benchmark prints a table and writes its figures as JSON under ``bench/results/``.
Benchmarks measure; they never assert a time.
"""

from __future__ import annotations

import importlib
import sys

ALL = (
    "ingest",
    "training",
    "compiled",
    "study",
    "run",
    "sweep",
    "ledger",
    "cross_section",
    "sp500",
    "demo",
)


def main(argv: list[str]) -> None:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {ALL}")
    for name in names:
        print(f"\n=== bench {name} ===", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Ingest benchmark (not a test): rows/s of a first load and of a no-change re-ingest.

1. Every CSV in ``../shared/data/prices`` (``$MADNESS_BENCH_PRICES`` overrides) is loaded
   file by file through :func:`lstm_madness.data.ingest.ingest_file` (parse, validate,
   upsert, log; one transaction per file) into a fresh SQLite file and a fresh PostgreSQL
   database ``madness_bench`` (created and dropped through the server's ``postgres``
   database, ``$MADNESS_BENCH_PG_URL``), then loaded again. Aims: first loads at
   >= 200,000 rows/s on PostgreSQL and >= 100,000 rows/s on SQLite; re-ingests at least
   as fast.
2. The whole command on the S&P 500 files (``../shared/data/sp500/prices``, 739 files,
   3.9 million rows; ``$MADNESS_BENCH_SP500`` overrides): ``madness ingest <files>`` run as
   a subprocess into a fresh SQLite file and a fresh PostgreSQL database
   ``madness_bench_sp500``, then again (a no-change re-ingest). Wall clock from start to
   exit, Python start-up and imports included. Aim: >= 150,000 rows/s on both backends.
   The machine's load average is recorded beside each figure (the project's machine is
   shared: a busy neighbour slows every figure).

Run with ``python -m bench.ingest`` or ``python -m bench ingest``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from lstm_madness.data.db import backend, make_engine, redact
from lstm_madness.data.ingest import ingest_file
from lstm_madness.data.store import init_db

PRICES = Path(
    os.environ.get(
        "MADNESS_BENCH_PRICES", Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
    )
)
PG_ADMIN_URL = os.environ.get(
    "MADNESS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SCRATCH_DB = "madness_bench"
AIMS = {"postgresql": 200_000, "sqlite": 100_000}  # first-load rows/s
RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
SP500_PRICES = Path(
    os.environ.get(
        "MADNESS_BENCH_SP500",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500" / "prices",
    )
)
SP500_SCRATCH_DB = "madness_bench_sp500"
WHOLE_COMMAND_AIM = 150_000  # rows/s of `madness ingest <files>`, start to exit


def run(db_urls: Sequence[str], files: Sequence[Path] | None = None) -> list[dict]:
    """Load ``files`` (default: every shared price CSV) twice into each (empty) database.

    Returns
    -------
    list of dict
        One entry per backend and phase (``first load``, ``re-ingest``): ``backend``,
        ``url`` (password redacted), ``phase``, ``files``, ``rows``, ``inserted``,
        ``unchanged``, ``seconds`` (wall clock) and ``rows_per_s``.
    """
    files = sorted(PRICES.glob("*.csv")) if files is None else list(files)
    out = []
    for url in db_urls:
        engine = make_engine(url)
        init_db(engine)
        for phase in ("first load", "re-ingest"):
            rows = inserted = unchanged = 0
            start = time.perf_counter()
            for path in files:
                result = ingest_file(engine, path)
                rows += result.rows_read
                inserted += result.inserted
                unchanged += result.unchanged
            seconds = time.perf_counter() - start
            out.append(
                {
                    "backend": backend(engine),
                    "url": redact(url),
                    "phase": phase,
                    "files": len(files),
                    "rows": rows,
                    "inserted": inserted,
                    "unchanged": unchanged,
                    "seconds": round(seconds, 3),
                    "rows_per_s": round(rows / seconds),
                }
            )
        engine.dispose()
    return out


def _scratch_postgres(name: str = SCRATCH_DB) -> tuple[sa.Engine, str] | None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL skipped: {redact(PG_ADMIN_URL)} unreachable ({exc.orig})")
        admin.dispose()
        return None
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    return admin, url.render_as_string(hide_password=False)


def _drop_postgres(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def _data_rows(files: Sequence[Path]) -> int:
    """Non-blank lines after the header line, over all ``files``."""
    rows = 0
    for path in files:
        lines = path.read_bytes().splitlines()[1:]
        rows += sum(1 for line in lines if line.strip())
    return rows


def _madness() -> list[str]:
    """The ``madness`` console script beside this interpreter (else its entry point run
    by this interpreter)."""
    script = shutil.which("madness", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from lstm_madness.cli import main; main()"]


def whole_command(db_urls: Sequence[str], files: Sequence[Path]) -> list[dict]:
    """``madness ingest <files> --db URL`` as a subprocess, twice into each (empty) database.

    Returns
    -------
    list of dict
        One entry per backend and phase (``first load``, then ``re-ingest`` of the same files):
        ``backend``, ``url`` (password redacted), ``phase``, ``files``, ``rows``,
        ``seconds`` (wall clock, start to exit), ``rows_per_s``, ``aim``, ``met``,
        ``exit_code`` and the 1-minute load average before and after (``load``).
    """
    rows = _data_rows(files)
    command = [*_madness(), "ingest", *(str(f.resolve()) for f in files)]
    out = []
    for url in db_urls:
        for phase in ("first load", "re-ingest"):
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            done = subprocess.run(
                [*command, "--db", url], capture_output=True, text=True, check=False
            )
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stderr[-2000:])
            out.append(
                {
                    "backend": sa.engine.make_url(url).get_backend_name(),
                    "url": redact(url),
                    "phase": phase,
                    "files": len(files),
                    "rows": rows,
                    "seconds": round(seconds, 3),
                    "rows_per_s": round(rows / seconds),
                    "aim": WHOLE_COMMAND_AIM,
                    "met": rows / seconds >= WHOLE_COMMAND_AIM and done.returncode == 0,
                    "exit_code": done.returncode,
                    "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                }
            )
    return out


def _sp500() -> list[dict]:
    """Part 2 (see the module docstring); empty when the S&P 500 files are absent."""
    files = sorted(SP500_PRICES.glob("*.csv"))
    if not files:
        print(f"S&P 500 whole command skipped: no CSV files in {SP500_PRICES}")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{Path(tmp) / 'sp500.db'}"]
        scratch = _scratch_postgres(SP500_SCRATCH_DB)
        if scratch is not None:
            urls.append(scratch[1])
        try:
            return whole_command(urls, files)
        finally:
            if scratch is not None:
                _drop_postgres(scratch[0], SP500_SCRATCH_DB)


def main() -> None:
    """Run the benchmark, print a table, write ``bench/results/ingest.json``."""
    files = sorted(PRICES.glob("*.csv"))
    if not files:
        raise SystemExit(f"no price files in {PRICES} (set MADNESS_BENCH_PRICES)")
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{Path(tmp) / 'bench.db'}"]
        scratch = _scratch_postgres()
        if scratch is not None:
            urls.append(scratch[1])
        try:
            results = run(urls, files)
        finally:
            if scratch is not None:
                _drop_postgres(scratch[0], SCRATCH_DB)
    print(f"{len(files)} files from {PRICES}")
    print(f"{'backend':<11} {'phase':<11} {'rows':>8} {'seconds':>8} {'rows/s':>9}  aim")
    for r in results:
        aim = AIMS[r["backend"]]
        ok = "met" if r["rows_per_s"] >= aim else "MISSED"
        print(
            f"{r['backend']:<11} {r['phase']:<11} {r['rows']:>8} {r['seconds']:>8.2f} "
            f"{r['rows_per_s']:>9,}  >= {aim:,} {ok}"
        )
    whole = _sp500()
    if whole:
        print(f"\n`madness ingest` of {whole[0]['files']} S&P 500 files from {SP500_PRICES}")
        print(
            f"{'backend':<11} {'phase':<11} {'rows':>9} {'seconds':>8} {'rows/s':>9}  "
            "aim  (load average before -> after)"
        )
        for r in whole:
            ok = "met" if r["met"] else "MISSED"
            if r["exit_code"]:
                ok += f" (exit code {r['exit_code']})"
            print(
                f"{r['backend']:<11} {r['phase']:<11} {r['rows']:>9} {r['seconds']:>8.2f} "
                f"{r['rows_per_s']:>9,}  >= {r['aim']:,} {ok}  "
                f"(load {r['load'][0]:.2f} -> {r['load'][1]:.2f})"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "aims": AIMS,
        "whole_command_aim": WHOLE_COMMAND_AIM,
    }
    figures = {"meta": meta, "results": results, "sp500_whole_command": whole}
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()

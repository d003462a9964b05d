"""Ingest benchmark (not a test): rows/s of a first load and of a no-change re-ingest.

Every CSV in ``../shared/data/prices`` (``$MADNESS_BENCH_PRICES`` overrides) is loaded
file by file through :func:`lstm_madness.data.ingest.ingest_file` (parse, validate,
upsert, log; one transaction per file) into a fresh SQLite file and a fresh PostgreSQL
database ``madness_bench`` (created and dropped through the server's ``postgres``
database, ``$MADNESS_BENCH_PG_URL``), then loaded again. Aims: first loads at
>= 200,000 rows/s on PostgreSQL and >= 100,000 rows/s on SQLite; re-ingests at least as
fast. Run with ``python -m bench.ingest`` or ``python -m bench ingest``.
"""

from __future__ import annotations

import json
import os
import platform
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


def _scratch_postgres() -> tuple[sa.Engine, str] | None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
            conn.exec_driver_sql(f"CREATE DATABASE {SCRATCH_DB}")
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL skipped: {redact(PG_ADMIN_URL)} unreachable ({exc.orig})")
        admin.dispose()
        return None
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=SCRATCH_DB)
    return admin, url.render_as_string(hide_password=False)


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
                with scratch[0].connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
                scratch[0].dispose()
    print(f"{len(files)} files from {PRICES}")
    print(f"{'backend':<11} {'phase':<11} {'rows':>8} {'seconds':>8} {'rows/s':>9}  aim")
    for r in results:
        aim = AIMS[r["backend"]]
        ok = "met" if r["rows_per_s"] >= aim else "MISSED"
        print(
            f"{r['backend']:<11} {r['phase']:<11} {r['rows']:>8} {r['seconds']:>8.2f} "
            f"{r['rows_per_s']:>9,}  >= {aim:,} {ok}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "aims": AIMS}
    RESULTS.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()

"""Stored predictions: a run's fold plan, its predictions per fold (written in one
transaction per fold group, read per run or over a trial set), and the baselines that the
runs of one data group share.

Sharing: a data group's baselines are fitted once per fold and stored once, in the rows of
one member (the *holder*); the others name it in ``runs.baselines_run_id`` and
:func:`load_predictions` returns their rows with the holder's baselines
(:func:`share_baselines`). Deleting the holder hands its baselines' rows to the next
member first (:func:`hand_over_baselines`); a resumed run gets its own copy before it
trains (:func:`own_baselines`), since its holder may not resume with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.store.runs import Run, utcnow

if TYPE_CHECKING:  # imported where frames are built
    import pandas as pd

__all__ = [
    "BASELINES_LIKE",
    "PREDICTION_COLUMNS",
    "completed_folds",
    "completed_folds_of",
    "hand_over_baselines",
    "iter_predictions",
    "load_folds",
    "load_predictions",
    "load_primary_predictions",
    "own_baselines",
    "record_folds",
    "save_fold",
    "save_folds",
    "share_baselines",
]

#: Model names of baselines: a data group's runs share one stored copy of these.
BASELINES_LIKE = "baseline:%"

#: Columns of a run's predictions frame (:func:`load_predictions`), in order.
PREDICTION_COLUMNS = ["model", "fold", "split", "date", "symbol", "y_true", "y_pred", "realized"]


def record_folds(engine: sa.Engine, run_id: int | Sequence[int], folds: pd.DataFrame) -> None:
    """Store the fold plan (columns fold, train_start, train_end, test_start, test_end,
    n_train, n_test) of one run or many (one transaction), unless already stored (resume),
    and the runs' test period (the key of their trial set).
    """
    ids = [int(run_id)] if isinstance(run_id, int) else [int(i) for i in run_id]
    f, r = schema.folds, schema.runs
    with engine.begin() as conn:
        have = {
            int(i)
            for (i,) in conn.execute(sa.select(f.c.run_id).distinct().where(f.c.run_id.in_(ids)))
        }
        todo = [i for i in ids if i not in have]
        if not todo:
            return
        rows = [{**row, "run_id": i} for i in todo for row in folds.to_dict("records")]
        conn.execute(f.insert(), rows)
        conn.execute(
            r.update()
            .where(r.c.id.in_(todo))
            .values(test_start=folds["test_start"].min(), test_end=folds["test_end"].max())
        )


def completed_folds(engine: sa.Engine, run_id: int) -> set[int]:
    return completed_folds_of(engine, [run_id])[int(run_id)]


def completed_folds_of(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, set[int]]:
    """Completed folds of each run, in one query."""
    ids = [int(i) for i in run_ids]
    f = schema.folds
    out: dict[int, set[int]] = {i: set() for i in ids}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(f.c.run_id, f.c.fold).where(
                f.c.run_id.in_(ids), f.c.completed_at.is_not(None)
            )
        )
        for run_id, fold in rows:
            out[int(run_id)].add(int(fold))
    return out


def load_folds(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    """A run's fold plan (the columns of :func:`record_folds` and completed_at), by fold."""
    import pandas as pd

    f = schema.folds
    query = (
        sa.select(
            f.c.fold,
            f.c.train_start,
            f.c.train_end,
            f.c.test_start,
            f.c.test_end,
            f.c.n_train,
            f.c.n_test,
            f.c.completed_at,
        )
        .where(f.c.run_id == run_id)
        .order_by(f.c.fold)
    )
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).all(), columns=[c.name for c in query.selected_columns]
        )


def save_fold(engine: sa.Engine, run_id: int, fold: int, predictions: pd.DataFrame) -> None:
    """Atomically replace fold ``fold``'s predictions and mark the fold completed.

    ``predictions`` has columns model, split, date, symbol, y_true, y_pred, realized.
    """
    save_folds(engine, [(run_id, fold, predictions)])


def save_folds(
    engine: sa.Engine,
    items: Sequence[tuple[int, int, pd.DataFrame]],
    timings: Mapping[tuple[int, int], str] | None = None,
) -> None:
    """Store the predictions of many (run, fold) pairs in one transaction and one bulk
    insert, marking those folds completed (replacing anything stored for them) and
    refreshing the runs' heartbeat.

    Each item is ``(run_id, fold, predictions)`` with the columns of :func:`save_fold`;
    ``timings`` maps ``(run_id, fold)`` to the JSON record of the run's fold group starting
    at that fold, stored with it (:func:`stored_timings` reads them back on resume).
    """
    import pandas as pd

    from lstm_madness.data.bulk import insert_frame

    if not items:
        return
    columns = ["run_id", "model", "fold", "split", "date", "symbol", "y_true", "y_pred"]
    frame = pd.concat(
        [p.assign(run_id=run_id, fold=fold) for run_id, fold, p in items], ignore_index=True
    )[[*columns, "realized"]]
    frame = frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
    p, f, r = schema.predictions, schema.folds, schema.runs
    now = utcnow()
    by_run: dict[int, list[int]] = {}
    for run_id, fold, _ in items:
        by_run.setdefault(int(run_id), []).append(int(fold))
    with engine.begin() as conn:
        for run_id, run_folds in by_run.items():
            conn.execute(p.delete().where(p.c.run_id == run_id, p.c.fold.in_(run_folds)))
            conn.execute(
                f.update()
                .where(f.c.run_id == run_id, f.c.fold.in_(run_folds))
                .values(completed_at=now)
            )
        _write_timings(conn, timings or {})
        insert_frame(conn, p, frame)
        conn.execute(r.update().where(r.c.id.in_(list(by_run))).values(heartbeat_at=now))


def save_timings(engine: sa.Engine, records: Mapping[tuple[int, int], str]) -> None:
    """Replace the timings records stored with ``(run_id, fold)`` (see :func:`save_folds`)."""
    with engine.begin() as conn:
        _write_timings(conn, records)


def _write_timings(conn: sa.Connection, records: Mapping[tuple[int, int], str]) -> None:
    f = schema.folds
    for (run_id, fold), record in records.items():
        conn.execute(
            f.update()
            .where(f.c.run_id == int(run_id), f.c.fold == int(fold))
            .values(timings_json=record)
        )


def stored_timings(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, list[str]]:
    """The timings records (JSON text) stored with each run's completed folds, in fold
    order: one per fold group trained by an earlier command (:func:`save_folds`)."""
    ids = [int(i) for i in run_ids]
    f = schema.folds
    out: dict[int, list[str]] = {i: [] for i in ids}
    query = (
        sa.select(f.c.run_id, f.c.timings_json)
        .where(f.c.run_id.in_(ids), f.c.completed_at.is_not(None), f.c.timings_json.is_not(None))
        .order_by(f.c.run_id, f.c.fold)
    )
    with engine.connect() as conn:
        for run_id, record in conn.execute(query):
            out[int(run_id)].append(record)
    return out


def _predictions_query(run_id: int, split: str | None, models: Sequence[str] | None) -> sa.Select:
    p = schema.predictions
    query = (
        sa.select(*(p.c[name] for name in PREDICTION_COLUMNS))
        .where(p.c.run_id == run_id)
        .order_by(p.c.model, p.c.date)
    )
    if split is not None:
        query = query.where(p.c.split == split)
    if models is not None:
        query = query.where(p.c.model.in_(list(models)))
    return query


def iter_predictions(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    split: str | None = "test",
    models: Sequence[str] | None = None,
    loaded: Mapping[int, pd.DataFrame] | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(run_id, predictions)`` of each run in turn, as :func:`load_predictions`, on one
    connection; the baselines shared by runs of one data group are read once.

    ``loaded`` (only with ``split="test"`` and every model): rows already read, by run id,
    all of one model (columns of :func:`load_predictions`, e.g. a run's primary rows from
    :func:`load_primary_predictions`); that model is not read again.
    """
    import pandas as pd

    from lstm_madness.data.bulk import read_frame

    ids = [int(i) for i in run_ids]
    loaded = loaded or {}
    if loaded and (split != "test" or models is not None):
        raise ValueError("loaded rows stand in for a run's test predictions of every model")
    r = schema.runs
    wants_baselines = models is None or any(m.startswith("baseline:") for m in models)
    with engine.connect() as conn:
        owners = dict(
            conn.execute(sa.select(r.c.id, r.c.baselines_run_id).where(r.c.id.in_(ids))).all()
        )
        loaded = {i: loaded[i] for i in ids if i in loaded and len(loaded[i])}
        rest = _rest_of_loaded(conn, loaded)
        shared: dict[int, pd.DataFrame] = {}
        for run_id in ids:
            if run_id in loaded:
                frame = loaded[run_id][PREDICTION_COLUMNS].reset_index(drop=True)
                if run_id in rest:
                    frame = pd.concat([rest[run_id], frame], ignore_index=True)
                    frame = frame.sort_values(["model", "date"], kind="stable", ignore_index=True)
            else:
                query = _predictions_query(run_id, split, models)
                frame = read_frame(conn, query, date_columns=("date",))
            owner = owners.get(run_id)
            if owner is not None and wants_baselines:
                if owner not in shared:
                    query = _predictions_query(owner, split, models).where(
                        schema.predictions.c.model.like(BASELINES_LIKE)
                    )
                    shared[owner] = read_frame(conn, query, date_columns=("date",))
                theirs = shared[owner]
                if len(frame) and len(theirs) and theirs["model"].iloc[-1] < frame["model"].iloc[0]:
                    frame = pd.concat([theirs, frame], ignore_index=True)  # already in order
                else:
                    frame = pd.concat([frame, theirs], ignore_index=True)
                    frame = frame.sort_values(["model", "date"], kind="stable", ignore_index=True)
            yield run_id, frame


def _rest_of_loaded(
    conn: sa.Connection, loaded: Mapping[int, pd.DataFrame]
) -> dict[int, pd.DataFrame]:
    """The test predictions of the runs of ``loaded`` other than the model loaded for each,
    in one query per loaded model name (e.g. the baselines a data group's owner holds)."""
    import pandas as pd

    from lstm_madness.data.bulk import read_frame

    p = schema.predictions
    by_model: dict[str, list[int]] = {}
    for run_id, rows in loaded.items():
        by_model.setdefault(str(rows["model"].iloc[0]), []).append(run_id)
    parts = []
    for model, ids in by_model.items():
        query = (
            sa.select(p.c.run_id, *(p.c[name] for name in PREDICTION_COLUMNS))
            .where(p.c.run_id.in_(ids), p.c.split == "test", p.c.model != model)
            .order_by(p.c.run_id, p.c.model, p.c.date)
        )
        parts.append(read_frame(conn, query, date_columns=("date",)))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return {
        int(run_id): rows[PREDICTION_COLUMNS].reset_index(drop=True)
        for run_id, rows in (frame.groupby("run_id", sort=False) if len(frame) else ())
    }


def load_predictions(
    engine: sa.Engine,
    run_id: int,
    *,
    split: str | None = "test",
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Stored predictions of a run (columns model, fold, split, date, symbol, y_true,
    y_pred, realized; ordered by model and date), its shared baselines included."""
    return next(iter_predictions(engine, [run_id], split=split, models=models))[1]


def load_primary_predictions(
    engine: sa.Engine,
    *,
    target: str,
    test_start: dt.date,
    test_end: dt.date,
    members: Sequence[Run],
) -> pd.DataFrame:
    """Test predictions of every member's primary model, in one query over the trial set.

    Returns a frame with columns run_id and those of :func:`load_predictions`, ordered by
    run and date (a universe study has one row per date and member).
    """
    import pandas as pd

    from lstm_madness.data.bulk import read_frame

    p, r = schema.predictions, schema.runs
    primary = {m.id: m.primary_model for m in members}
    columns = ["run_id", *PREDICTION_COLUMNS]
    if not primary:
        return pd.DataFrame(columns=columns)
    query = (
        sa.select(p.c.run_id, *(p.c[name] for name in PREDICTION_COLUMNS if name != "split"))
        .join(r, r.c.id == p.c.run_id)
        .where(
            r.c.target == target,
            r.c.test_start == test_start,
            r.c.test_end == test_end,
            p.c.split == "test",
            p.c.model.in_(sorted(set(primary.values()))),
        )
        .order_by(p.c.run_id, p.c.date)
    )
    with engine.connect() as conn:
        frame = read_frame(conn, query, date_columns=("date",))
    keep = frame["run_id"].map(primary).eq(frame["model"])
    frame = frame.loc[keep].assign(split="test")[columns]
    return frame.reset_index(drop=True)


def share_baselines(engine: sa.Engine, owner: int, run_ids: Sequence[int]) -> None:
    """Runs ``run_ids`` (of ``owner``'s data group, with nothing stored yet) read their
    baselines' predictions from ``owner``'s rows instead of storing their own copy."""
    ids = [int(i) for i in run_ids if int(i) != int(owner)]
    if ids:
        with engine.begin() as conn:
            conn.execute(
                schema.runs.update().where(schema.runs.c.id.in_(ids)).values(baselines_run_id=owner)
            )


def own_baselines(engine: sa.Engine, run_ids: Sequence[int]) -> None:
    """Give each of ``run_ids`` that reads shared baselines its own copy of them (before it
    resumes: its owner may not resume with it)."""
    r = schema.runs
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(r.c.id, r.c.baselines_run_id).where(
                r.c.id.in_([int(i) for i in run_ids]), r.c.baselines_run_id.is_not(None)
            )
        ).all()
        for run_id, owner in rows:
            _copy_baselines(conn, owner, run_id)
            conn.execute(r.update().where(r.c.id == run_id).values(baselines_run_id=None))


def _copy_baselines(conn: sa.Connection, owner: int, run_id: int) -> None:
    p = schema.predictions
    columns = [c for c in p.c if c.name != "run_id"]
    conn.execute(
        p.insert().from_select(
            ["run_id", *(c.name for c in columns)],
            sa.select(sa.literal(int(run_id)), *columns).where(
                p.c.run_id == owner, p.c.model.like(BASELINES_LIKE)
            ),
        )
    )


def hand_over_baselines(conn: sa.Connection, owner: int) -> None:
    """Before ``owner`` loses its baselines' rows (in the caller's transaction ``conn``):
    they move to the first run reading them, which holds them for the others from then on."""
    r = schema.runs
    readers = [
        int(i)
        for (i,) in conn.execute(
            sa.select(r.c.id).where(r.c.baselines_run_id == owner).order_by(r.c.id)
        )
    ]
    if not readers:
        return
    heir = readers[0]
    p = schema.predictions
    conn.execute(
        p.update().where(p.c.run_id == owner, p.c.model.like(BASELINES_LIKE)).values(run_id=heir)
    )
    conn.execute(r.update().where(r.c.id == heir).values(baselines_run_id=None))
    conn.execute(r.update().where(r.c.baselines_run_id == owner).values(baselines_run_id=heir))

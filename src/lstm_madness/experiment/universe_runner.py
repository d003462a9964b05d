"""Training a data group of universe studies (``target.kind`` cross-sectional).

The plan is the one of :mod:`lstm_madness.experiment.runner`; only the samples differ.
Folds are cut on the calendar's dates (the same :func:`~lstm_madness.experiment.folds.plan_folds`
ranges), and every fold holds one sample per (member, date)
(:func:`~lstm_madness.cross_section.build_cross_section_fold`, the scaler pooled over the
members' training rows). One network per (config, fold) learns from all members'
samples, date-major; its early-stopping tail starts on a date boundary, so no day's
members are split between fitting and validation (their labels share that day's mean).
The batched trainer takes one validation gap per call, so (config, fold) pairs are
batched per fold when early stopping is on, and across folds when it is off.

Baselines are fitted once per data group and fold. Every model trades the same members:
a test sample is kept only where every baseline scores it (momentum needs 21 days of
history, more than a short window), and the network's predictions are kept on the same
samples. One prediction row is stored per (date, member, model): ``y_true`` the label
(NULL where the next-day price does not exist), ``realized`` the member's next-day
return.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.cross_section import CrossSectionFold, build_cross_section_fold
from lstm_madness.errors import DataError
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.experiment.folds import Fold, plan_folds
from lstm_madness.experiment.plan import DataGroup, fold_groups, training_jobs
from lstm_madness.experiment.universe_data import UniverseStudy, load_universe_study
from lstm_madness.models.cross_section_baselines import make_cross_section_baseline
from lstm_madness.store.predictions import completed_folds_of, record_folds, save_folds


def _mask(rows: slice, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def universe_folds(
    study: UniverseStudy, config: ExperimentConfig
) -> tuple[list[tuple[Fold, CrossSectionFold]], pd.DataFrame]:
    """The folds of the study that hold test samples, and their table."""
    panel = study.panel
    n = len(panel.dates)
    planned = plan_folds(n, config.split, 1)
    kept, rows = [], []
    for fold in planned:
        train, test = _mask(fold.train, n), _mask(fold.test, n)
        if not panel.scored[test].any():
            continue
        n_train = int(panel.eligible[train].sum())
        if n_train < 20:
            raise DataError(
                f"fold {fold.index} has {n_train} complete training samples; start the test "
                "period later (split.*) or use more data"
            )
        xs = build_cross_section_fold(panel, train=train, test=test)
        kept.append((fold, xs))
        d_train, d_test = xs.train[0], xs.test[0]
        rows.append(
            {
                "fold": fold.index,
                "train_start": panel.dates[d_train[0]].date(),
                "train_end": panel.dates[d_train[-1]].date(),
                "test_start": panel.dates[d_test[0]].date(),
                "test_end": panel.dates[d_test[-1]].date(),
                "n_train": len(d_train),
                "n_test": len(d_test),
            }
        )
    if not kept:
        raise DataError(f"{config.target_key}: no fold holds a scored member on its test dates")
    return kept, pd.DataFrame(rows)


def validation_gap(fold: CrossSectionFold, fraction: float, patience: int) -> int:
    """Samples dropped before the validation tail so that it starts on a date boundary.

    :func:`~lstm_madness.models.protocol.split_validation` validates on the last
    ``n_val = max(1, ceil(fraction · n))`` samples; the gap removes the samples of the
    tail's first date that precede it from the fit set.
    """
    n = len(fold.train[0])
    if not (patience > 0 and fraction > 0) or n == 0:
        return 0
    n_val = max(1, math.ceil(fraction * n))
    dates = fold.train[0]
    first = n - n_val
    if first <= 0:
        return 0
    return int(first - np.searchsorted(dates, dates[first], side="left"))


def _baselines(
    config: ExperimentConfig, fold: CrossSectionFold
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each baseline's test predictions and the samples every one of them scores."""
    out = {}
    for name in config.baseline_names:
        model = make_cross_section_baseline(name).fit(fold)
        values = np.asarray(model.predict(fold), dtype=np.float64)
        if name == "zero" and config.task == "classification":
            values = values + 0.5  # the no-information forecast of an above-median label
        out[f"baseline:{name}"] = values
    keep = np.ones(len(fold.test[0]), dtype=bool)
    for values in out.values():
        keep &= np.isfinite(values)
    return out, keep


def _frame(fold: CrossSectionFold, keep: np.ndarray, predictions: dict) -> pd.DataFrame:
    parts = []
    for name, y_pred in predictions.items():
        rows = fold.predictions_frame(y_pred)[keep]
        parts.append(rows.assign(model=name, split="test"))
    return pd.concat(parts, ignore_index=True)


def _train(
    configs: Sequence[ExperimentConfig],
    jobs: Sequence[tuple[int, CrossSectionFold]],
    timings: Sequence,
    progress,
    beat,
) -> list[np.ndarray]:
    from lstm_madness.experiment.runner import fit_and_predict, lstm_estimator

    estimators = []
    for c, xs in jobs:
        est = lstm_estimator(configs[c])
        t = configs[c].train
        est.validation_gap = validation_gap(xs, t.validation_fraction, t.patience)
        estimators.append(est)
    # one call: batched networks train together only when their validation gaps agree
    # (``validation_gap`` is one of group.SHARED), compiled ones all share the thread pool
    return fit_and_predict(estimators, jobs, configs, timings, progress, beat)


def train_universe_group(
    engine: sa.Engine,
    group: DataGroup,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
    timings: Sequence,
    beat,
    progress,
) -> None:
    """Train and store every fold of a data group of universe studies (module docstring)."""
    from lstm_madness.experiment.runner import Timings

    members = list(group.members)
    first = configs[members[0]]
    study = load_universe_study(engine, first)
    folds, table = universe_folds(study, first)
    record_folds(engine, [run_ids[i] for i in members], table)
    completed = completed_folds_of(engine, [run_ids[i] for i in members])
    done = {i: completed[run_ids[i]] for i in members}
    by_index = {f.index: xs for f, xs in folds}
    baseline_timings = Timings()
    positions = fold_groups(
        [configs[i] for i in members], list(table["n_train"]), len(study.panel.feature_names)
    )
    for position in positions:
        todo = [folds[k][0].index for k in position]
        todo = [k for k in todo if any(k not in done[i] for i in members)]
        if progress is not None:
            progress("fold", fold=folds[position[0]][0].index, n_folds=len(folds))
        if not todo:
            continue
        start = time.perf_counter()
        baselines = {k: _baselines(first, by_index[k]) for k in todo}
        baseline_timings.add("baselines", train_s=time.perf_counter() - start, folds=len(todo))
        items: list[tuple[int, int, pd.DataFrame]] = []
        for shape in group.shapes:
            for job in training_jobs(configs, shape, todo, done):
                nets = _train(configs, [(i, by_index[k]) for i, k in job], timings, progress, beat)
                for (i, k), y_pred in zip(job, nets, strict=True):
                    preds, keep = baselines[k]
                    network = {configs[i].model.kind: y_pred}
                    items.append((i, k, _frame(by_index[k], keep, {**network, **preds})))
        start = time.perf_counter()
        save_folds(engine, [(run_ids[i], k, frame) for i, k, frame in items])
        elapsed = time.perf_counter() - start
        for i, _, _ in items:
            timings[i].store_s += elapsed / max(1, len(items))
        beat()
        for xs in (by_index[k] for k in todo):  # free the fold's dense windows
            xs.__dict__.pop("X_train", None)
            xs.__dict__.pop("X_test", None)
    if progress is not None:
        progress("fold", fold=len(folds), n_folds=len(folds))
    for i in members:  # the baselines were fitted once for the whole group: shared
        for name, entry in baseline_timings.models.items():
            timings[i].models[name] = {**entry, "train_s": entry["train_s"] / len(members)}

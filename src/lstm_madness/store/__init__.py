"""The ledger: every run, its folds and predictions, trial sets and sweeps, over the tables
of :mod:`lstm_madness.data.schema`.

- :mod:`~lstm_madness.store.runs`: the frozen :class:`~lstm_madness.store.runs.Run` record
  (a row of ``runs`` with its config, summary and import spec decoded) and the queries
  that read runs (by id, lists, seed families, configs, objectives).
- :mod:`~lstm_madness.store.lifecycle`: a run's states, the write side: register
  (``queued`` / ``running``), claim, heartbeat, finish, fail, stale, delete (tombstone).
- :mod:`~lstm_madness.store.predictions`: the fold plan, stored predictions (write, read),
  baselines shared by the runs of a data group (``runs.baselines_run_id``).
- :mod:`~lstm_madness.store.trials`: the trial set of a run: which runs count as its
  trials (one query) and :class:`~lstm_madness.store.trials.TrialSet`.
- :mod:`~lstm_madness.store.sweeps`: sweeps and their runs.

Layers: ``experiment`` → ``store`` → ``data`` (schema, bulk I/O). This package never
imports :mod:`lstm_madness.experiment`, and only :mod:`~lstm_madness.store.predictions`
imports pandas (where frames are built), so reading runs stays light.
"""

"""Experiments: typed configuration, folds, the runner, evaluation against the ledger
(:mod:`lstm_madness.store`) and reports."""

"""Experiments: typed configuration, folds, the runner and the run registry."""

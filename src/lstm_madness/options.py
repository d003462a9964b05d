"""The names that configs and estimators accept, defined once (no heavy imports, so the
config layer can use them without loading PyTorch)."""

from __future__ import annotations

#: What a model predicts: a return (regression) or the probability of an up move.
TASKS = ("regression", "classification")
#: Recurrent cells of the network.
CELLS = ("lstm", "gru")
#: Training losses of a network; "auto" = mse for return targets, bce for direction.
NETWORK_LOSSES = ("mse", "huber", "bce")
LOSSES = ("auto", *NETWORK_LOSSES)
#: Where a network trains.
DEVICES = ("auto", "cpu", "cuda")
#: Training paths of a network (see :func:`lstm_madness.models.lstm.resolve_trainer`).
TRAINERS = ("auto", "torch", "batched", "compiled")

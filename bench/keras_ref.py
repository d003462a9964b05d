"""Keras 3 (TensorFlow backend) reference trainings for ``bench/training.py``.

Runs inside ``bench/.keras-venv`` (created by ``bench.training``), never imports torch or
the project. Usage::

    python bench/keras_ref.py JOBS.json RESULT.json

``JOBS.json`` lists jobs ``{"name", "data": path.npz (X, y), "units", "dropout", "cell",
"batch_size", "epochs", "learning_rate", "clip_norm"}``. For each job the model is the
same as ``RecurrentNet``: stacked LSTM/GRU layers (all but the last return sequences),
dropout after each, a Dense(1) head on the last step; Adam with the default betas/eps and
``global_clipnorm`` (the global gradient-norm clip of ``clip_grad_norm_``); MSE loss;
shuffled mini-batches. ``RESULT.json`` gets per job the wall time of every epoch and the
per-epoch training loss.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np


class _EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


def build(n_steps: int, n_features: int, units, dropout: float, cell: str, seed: int):
    keras.utils.set_random_seed(seed)
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    model = keras.Sequential([keras.Input((n_steps, n_features))])
    for i, u in enumerate(units):
        # reset_after=True (the Keras default) is the PyTorch GRU formulation
        model.add(layer(u, return_sequences=i < len(units) - 1))
        if dropout > 0:
            model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(1))
    return model


def run_job(job: dict) -> dict:
    data = np.load(job["data"])
    X, y = data["X"].astype("float32"), data["y"].astype("float32")
    model = build(
        X.shape[1], X.shape[2], job["units"], job["dropout"], job["cell"], job.get("seed", 0)
    )
    opt = keras.optimizers.Adam(
        learning_rate=job["learning_rate"], global_clipnorm=job.get("clip_norm") or None
    )
    model.compile(optimizer=opt, loss="mse")
    timer = _EpochTimer()
    t0 = time.perf_counter()
    hist = model.fit(
        X,
        y,
        batch_size=job["batch_size"],
        epochs=job["epochs"],
        shuffle=True,
        verbose=0,
        callbacks=[timer],
    )
    return {
        "name": job["name"],
        "epoch_s": timer.times,
        "total_s": time.perf_counter() - t0,
        "loss": [float(v) for v in hist.history["loss"]],
        "n": len(X),
    }


def main(argv: list[str]) -> None:
    jobs_path, out_path = argv
    with open(jobs_path) as fh:
        jobs = json.load(fh)
    results = {"keras": keras.__version__, "backend": keras.backend.backend(), "jobs": []}
    try:
        import tensorflow as tf

        results["tensorflow"] = tf.__version__
    except ImportError:  # pragma: no cover - another backend
        pass
    for job in jobs:
        results["jobs"].append(run_job(job))
        with open(out_path, "w") as fh:  # partial results survive a timeout
            json.dump(results, fh)


if __name__ == "__main__":
    main(sys.argv[1:])

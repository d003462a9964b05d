"""The wall time of a run's stages, shared out between the runs trained together."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Timings:
    """Wall time of one run, in seconds: training and predicting (per model), storing its
    predictions and evaluating it. Shared work (a batched training call, one store of a
    fold group, the baselines fitted once for a data group, the evaluation pass) is split
    between runs by their share of it. Per model, the training samples and epochs of each
    fold trained here are kept, to report their mean per fold (see :meth:`to_dict`)."""

    train_s: float = 0.0
    predict_s: float = 0.0
    store_s: float = 0.0
    evaluate_s: float = 0.0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: folds whose timings were trained by an earlier command and read from the store
    earlier_folds: int = 0

    def to_record(self) -> str:
        """These timings as JSON text, to store with a fold group (read by
        :meth:`from_record`)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_record(cls, text: str) -> Timings:
        """Timings stored by :meth:`to_record`."""
        return cls(**json.loads(text))

    def add(
        self,
        model: str,
        *,
        train_s: float = 0.0,
        n_train: int | None = None,
        epochs: int | None = None,
        val_loss: float | None = None,
        folds: int = 1,
    ) -> None:
        """One fold of ``model`` trained (or ``folds`` folds at once, timed together): its
        seconds, training samples and epochs."""
        entry = self.models.setdefault(model, {"train_s": 0.0, "n_folds": 0})
        entry["train_s"] += train_s
        entry["n_folds"] += folds
        if n_train is not None:
            entry.setdefault("fold_n_train", []).append(int(n_train))
        if epochs is not None:
            entry.setdefault("fold_epochs", []).append(int(epochs))
        if val_loss is not None:
            entry.setdefault("val_losses", []).append(val_loss)

    def merge(self, other: Timings) -> None:
        """Add ``other``'s seconds and folds (timed in another process: a Ray task) to
        these; merged in fold order, the per-fold lists are those of one process's loop."""
        self.train_s += other.train_s
        self.predict_s += other.predict_s
        self.store_s += other.store_s
        self.evaluate_s += other.evaluate_s
        self.earlier_folds += other.earlier_folds
        for name, entry in other.models.items():
            mine = self.models.setdefault(name, {"train_s": 0.0, "n_folds": 0})
            for key, value in entry.items():
                if isinstance(value, list):
                    mine.setdefault(key, []).extend(value)
                elif key in ("train_s", "n_folds"):
                    mine[key] += value
                else:  # the trainer's name
                    mine[key] = value

    def share(self, members: int) -> Timings:
        """One member's share of model fits timed once for ``members`` runs (a data
        group's baselines): the models' seconds divided by ``members``."""
        return Timings(
            models={n: {**e, "train_s": e["train_s"] / members} for n, e in self.models.items()}
        )

    def objective(self, model: str) -> float | None:
        """Mean validation loss of ``model`` over the folds trained here (None if none)."""
        losses = self.models.get(model, {}).get("val_losses")
        return float(np.mean(losses)) if losses else None

    def trainer(self, model: str) -> str | None:
        """The trainer that fitted ``model`` here (``torch`` / ``batched`` / ``compiled``)."""
        return self.models.get(model, {}).get("trainer")

    def to_dict(self, total_s: float, *, batch_runs: int = 1) -> dict[str, Any]:
        """The run's ``timings``: the stages (``train_s``, ``predict_s``, ``store_s``,
        ``evaluate_s``: this run's share, ``scope`` "run"); ``total_s``, the wall time of
        the training of the ``batch_runs`` runs carried out together (``total_scope``
        "training"; :func:`finish_runs` extends it to the run's finish, "command"); per
        model ``train_s`` (this run's share), ``n_folds`` (folds trained),
        ``n_train`` and ``epochs_run`` (mean per fold) with ``n_train_total``,
        ``epochs_run_total``, ``epochs_run_min`` and ``epochs_run_max``. A resumed run's
        stages and models include the fold groups an earlier command trained and stored
        (``folds_before_resume`` of them; ``total_s`` is this command's wall time)."""
        models = {}
        for name, entry in self.models.items():
            entry = dict(entry)
            losses = entry.pop("val_losses", None)
            if losses:
                entry["val_loss"] = float(np.mean(losses))
            for key, values in (
                ("n_train", entry.pop("fold_n_train", None)),
                ("epochs_run", entry.pop("fold_epochs", None)),
            ):
                if values:
                    entry[key] = float(np.mean(values))
                    entry[f"{key}_total"] = int(sum(values))
                    if key == "epochs_run":
                        entry["epochs_run_min"], entry["epochs_run_max"] = min(values), max(values)
            models[name] = entry
        out = {
            "total_s": total_s,
            "train_s": self.train_s,
            "predict_s": self.predict_s,
            "store_s": self.store_s,
            "evaluate_s": self.evaluate_s,
            "scope": "run",
            "total_scope": "training",
            "batch_runs": batch_runs,
            "models": models,
        }
        if self.earlier_folds:
            out["folds_before_resume"] = self.earlier_folds
        return out

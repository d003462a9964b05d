"""The ``torch`` trainer: the reference autograd loop, one network at a time.

The protocol of :mod:`lstm_madness.models.protocol` written out with ``nn.LSTM`` /
``nn.GRU`` modules, ``torch.nn.utils.clip_grad_norm_`` and ``torch.optim.Adam`` (or
``torch.optim.RMSprop``) (:func:`optimizer`, :func:`clipped_step`: the update of
:mod:`lstm_madness.models.optimizer`). The other engines are checked against it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from lstm_madness.models.optimizer import BETA1, BETA2, EPS, RMS_EPS, RMS_RHO
from lstm_madness.models.protocol import (
    FittedNetwork,
    GroupProgress,
    ProgressCallback,
    TrainingJob,
    epoch_reporter,
    make_loss,
    resolve_device,
    resolve_loss,
    seeded_network,
    split_and_scale,
)

__all__ = ["clipped_step", "fit", "fit_one", "optimizer"]


def fit(
    jobs: Sequence[TrainingJob], progress: GroupProgress | None = None, workers: int = 1
) -> list[FittedNetwork]:
    """Fit each job in turn in the calling thread (``workers`` is not used)."""
    del workers
    return [fit_one(job, epoch_reporter(job.progress, progress)) for job in jobs]


def optimizer(
    parameters: Iterable[torch.Tensor], learning_rate: float, name: str = "adam"
) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` with the betas and eps of :mod:`lstm_madness.models.optimizer`
    (torch's defaults), or for ``name="rmsprop"`` ``torch.optim.RMSprop`` with its ``ρ``
    and ``ε`` (Keras's; no momentum, not centered)."""
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=learning_rate, alpha=RMS_RHO, eps=RMS_EPS)
    return torch.optim.Adam(parameters, lr=learning_rate, betas=(BETA1, BETA2), eps=EPS)


def clipped_step(
    opt: torch.optim.Optimizer, parameters: Iterable[torch.Tensor], clip: float | None
) -> None:
    """The update after ``backward``: ``clip_grad_norm_(parameters, clip)`` unless
    ``clip`` is None, then ``opt.step()``."""
    if clip is not None:
        nn.utils.clip_grad_norm_(parameters, clip)
    opt.step()


def fit_one(job: TrainingJob, report: ProgressCallback | None = None) -> FittedNetwork:
    """Train one network by the protocol, calling ``report(epoch, train_loss, val_loss)``
    after each epoch."""
    s = job.settings
    X, y = job.X, job.y
    n, steps, n_features = X.shape
    loss_name = resolve_loss(s.loss, s.task)
    device = resolve_device(s.device)
    seed = int(job.seed)
    clip = float(s.clip_norm) if s.clip_norm else None

    # 1. seeded default initialization (on the CPU, then moved)
    net = seeded_network(s, n_features, seed).to(device)
    # 2. fit set and validation tail, 3. target standardization (regression)
    n_fit, n_val, y_mean, y_scale = split_and_scale(s, y)
    X_all = torch.tensor(np.asarray(X), dtype=torch.float32, device=device)  # (n, T, F)
    y_all = torch.tensor((y - y_mean) / y_scale, dtype=torch.float32, device=device)  # (n,)
    X_fit, y_fit = X_all[:n_fit], y_all[:n_fit]
    X_val, y_val = X_all[n - n_val :], y_all[n - n_val :]

    loss_fn = make_loss(loss_name)
    opt = optimizer(net.parameters(), float(s.learning_rate), s.optimizer)
    gen = torch.Generator(device=device).manual_seed(seed)
    batch_size = int(s.batch_size)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    best, best_state, best_epoch, wait = math.inf, None, 0, 0
    epoch = 0
    for epoch in range(1, int(s.epochs) + 1):
        # 4. one epoch of shuffled mini-batches
        net.train()
        perm = torch.randperm(n_fit, generator=gen, device=device)
        total = torch.zeros((), device=device)
        for i in range(0, n_fit, batch_size):
            idx = perm[i : i + batch_size]
            batch_loss = loss_fn(net(X_fit[idx]), y_fit[idx])
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            clipped_step(opt, net.parameters(), clip)
            total += batch_loss.detach() * idx.numel()
        train_loss = total.item() / n_fit
        history["train_loss"].append(train_loss)
        # 5. validation and early stopping
        val_loss = None
        if n_val:
            net.eval()
            with torch.no_grad():
                val_loss = loss_fn(net(X_val), y_val).item()
            history["val_loss"].append(val_loss)
            if val_loss < best - s.min_delta:
                best, best_epoch, wait = val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                wait += 1
        if report is not None:
            report(epoch, train_loss, val_loss)
        if n_val and wait >= s.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()

    return FittedNetwork.after_loop(
        net, device, loss_name, (steps, n_features), n_fit, n_val, epoch, best_epoch, best,
        history, y_mean, y_scale, "torch",
    )  # fmt: skip

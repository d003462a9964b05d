"""The batched engine: many independent small recurrent nets trained as one computation.

A walk-forward study trains the same architecture thousands of times (configs × seeds ×
folds). One such net is far too small to keep a CPU or GPU busy: a step of an LSTM(32) on a
batch of 32 is a few hundred tiny kernel launches, and the time goes to dispatch overhead.
:func:`train_many` stacks ``M`` nets of one architecture into tensors with a leading model
axis (:class:`~lstm_madness.models.batched_net.NetworkStack`), so one launch serves ``M``
models; :func:`fit` is the engine's :class:`~lstm_madness.models.protocol.Trainer`.

Each model keeps its own training exactly as if it were trained alone (the protocol of
:mod:`lstm_madness.models.protocol`):

* its own data (``X_m``, ``y_m``; lengths may differ: shorter models are padded and masked),
* its own seed and batch order (a ``torch.Generator`` per model drawing the same
  ``randperm`` per epoch as the solo loop),
* its own per-batch mean loss (sum over its real rows / its batch count), own gradient-norm
  clipping, own Adam (or RMSprop) moments and step count (models without a batch in this
  step, or that stopped early, are not updated: a masked, vectorised update,
  :class:`BatchedAdam` or :class:`BatchedRMSprop`, the update of
  :mod:`lstm_madness.models.optimizer`),
* its own validation tail, early stopping and best-weights restore.

With dropout 0 the trained weights equal those of the solo loop to float tolerance. With
dropout > 0 each model draws its own masks, from one generator seeded by all the seeds of the
call: deterministic for a given call, but not bitwise the masks of a solo run.

Models are ordered by fit-set size, longest first: at each step the models that still have a
batch in the epoch form a prefix of the stack and the rest are left out of the computation
(walk-forward folds differ in length). The trained (best) weights are written back into the
given ``RecurrentNet`` objects, so prediction runs through the ordinary module (cuDNN on GPU).

``torch.compile`` of the step (``compile=True``) is off by default: its compilation per
distinct shape costs more than it saves except in long trainings. ``torch.func.vmap`` over
``functional_call`` of ``nn.LSTM`` is no alternative (no batching rule: a per-model loop
underneath). Measurements: ``bench/training.py`` and docs/benchmarks.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lstm_madness.errors import ConfigError
from lstm_madness.models.batched_net import (
    Arch,
    NetworkStack,
    arch_of,
    dropout_masks,
    gather,
    stack_data,
)
from lstm_madness.models.batched_optimizer import BatchedAdam, BatchedRMSprop, batched_optimizer
from lstm_madness.models.protocol import (
    FittedNetwork,
    GroupProgress,
    TrainingJob,
    resolve_device,
    resolve_loss,
    seeded_network,
    split_and_scale,
    split_validation,
)
from lstm_madness.options import NETWORK_LOSSES as LOSSES

__all__ = [
    "LOSSES",
    "BatchedAdam",
    "BatchedRMSprop",
    "TrainResult",
    "TrainSpec",
    "fit",
    "fit_group",
    "train_many",
]

_GATHER_BYTES = 64 * 2**20  # gather at most this much epoch data at once


@dataclass(frozen=True)
class TrainSpec:
    """One model's training job.

    X : float array of shape (n, T, F) — n windows of T steps of F features.
    y : float array of shape (n,) — targets, already transformed (standardised / 0-1).
    seed : the seed the net was initialised with; also seeds its batch-order generator.
    """

    X: np.ndarray
    y: np.ndarray
    seed: int


@dataclass
class TrainResult:
    """What one model's training did.

    epochs_run : epochs trained (fewer than asked when early stopping fired).
    best_epoch : 1-based epoch whose weights were kept (the last one without validation).
    history : one dict per epoch: ``epoch``, ``loss`` (sample-weighted mean training loss of
        the epoch) and, when validating, ``val_loss``.
    """

    epochs_run: int
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


# ------------------------------------------------------------------ the engine as a Trainer


def fit(
    jobs: Sequence[TrainingJob], progress: GroupProgress | None = None, workers: int = 1
) -> list[FittedNetwork]:
    """Train the jobs, those with equal settings (:meth:`TrainSettings.key
    <lstm_madness.models.protocol.TrainSettings.key>`) as one :func:`fit_group` call (a
    lone one as a batch of one), groups in the order of their first job; networks in job
    order. ``workers`` is not used: one call is one batched computation. The jobs' own
    callbacks are not called; ``progress(epoch, n_still_training)`` is, per group."""
    del workers
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.settings.key(), []).append(i)
    fitted: list[FittedNetwork | None] = [None] * len(jobs)
    for members in groups.values():
        group = fit_group([jobs[i] for i in members], progress)
        for i, network in zip(members, group, strict=True):
            fitted[i] = network
    return fitted  # type: ignore[return-value]


def fit_group(
    jobs: Sequence[TrainingJob], progress: GroupProgress | None = None
) -> list[FittedNetwork]:
    """Train jobs with equal settings as one :func:`train_many` call (steps 1–3 of the
    protocol here: seeded networks, validation split, target scaling)."""
    first = jobs[0].settings
    if any(job.settings != first for job in jobs[1:]):
        raise ConfigError("networks differ in their settings; they cannot train together")
    device = resolve_device(first.device)
    loss = resolve_loss(first.loss, first.task)
    nets, specs, prepared = [], [], []
    for job in jobs:
        X, y = job.X, job.y
        _n, steps, n_features = X.shape
        n_fit, n_val, y_mean, y_scale = split_and_scale(first, y)
        nets.append(seeded_network(first, n_features, int(job.seed)).to(device))
        specs.append(
            TrainSpec(np.asarray(X, dtype=np.float32), (y - y_mean) / y_scale, int(job.seed))
        )
        prepared.append((n_fit, n_val, steps, n_features, y_mean, y_scale))
    results = train_many(
        nets,
        specs,
        epochs=int(first.epochs),
        batch_size=int(first.batch_size),
        learning_rate=float(first.learning_rate),
        loss=loss,
        clip_norm=first.clip_norm or None,
        optimizer=first.optimizer,
        patience=int(first.patience),
        validation_fraction=float(first.validation_fraction),
        validation_gap=int(first.validation_gap),
        min_delta=float(first.min_delta),
        device=device,
        progress=progress,
    )
    fitted = []
    for net, result, prep in zip(nets, results, prepared, strict=True):
        n_fit, n_val, steps, n_features, y_mean, y_scale = prep
        history = {
            "train_loss": [h["loss"] for h in result.history],
            "val_loss": [h["val_loss"] for h in result.history if "val_loss" in h],
        }
        net.eval()
        best_val = (
            history["val_loss"][result.best_epoch - 1] if n_val and history["val_loss"] else None
        )
        fitted.append(
            FittedNetwork(
                net=net,
                device=device,
                loss=loss,
                n_features=n_features,
                time_steps=steps,
                n_train=n_fit,
                n_val=n_val,
                epochs_run=result.epochs_run,
                best_epoch=result.best_epoch,
                best_val_loss=best_val,
                history=history,
                y_mean=y_mean,
                y_scale=y_scale,
                trainer="batched",
            )
        )
    return fitted


# ------------------------------------------------------------------ the training loop


def train_many(
    nets: Sequence[nn.Module],
    specs: Sequence[TrainSpec],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    loss: str,
    clip_norm: float | None = 1.0,
    optimizer: str = "adam",
    patience: int = 0,
    validation_fraction: float = 0.0,
    validation_gap: int = 0,
    min_delta: float = 0.0,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    compile: bool = False,
) -> list[TrainResult]:
    """Train ``len(nets)`` independent nets of one architecture as one computation.

    Parameters
    ----------
    nets : RecurrentNet modules of identical architecture, each already initialised
        (constructed right after ``torch.manual_seed(spec.seed)``). Their parameters are
        overwritten in place with the trained (best) weights.
    specs : one ``TrainSpec`` per net: X (n_m, T, F), y (n_m,), seed. T and F must agree;
        n_m may differ.
    epochs, batch_size, learning_rate, loss, clip_norm, patience, validation_fraction,
    validation_gap, min_delta : the solo protocol of ``LSTMForecaster.fit`` (``loss`` one
        of ``LOSSES``; ``clip_norm`` None or 0 disables clipping; early stopping only when
        ``patience > 0`` and ``validation_fraction > 0``).
    optimizer : ``"adam"`` or ``"rmsprop"`` (:mod:`lstm_madness.models.optimizer`).
    device : where the batched computation runs ("cpu", "cuda", ...).
    progress : called after each epoch as ``progress(epoch, n_models_still_training)``.
    compile : run the forward/backward and the optimizer step through ``torch.compile``
        (inductor). Off by default: it pays back its compilation per distinct shape only
        for long trainings. All models then run at every step (one static shape) and
        stopped models stay on the stack, frozen.

    Returns
    -------
    list of TrainResult, in the order of ``nets``.
    """
    arch = _check_call(nets, specs, epochs, batch_size, loss)
    device = torch.device(device)
    M = len(nets)
    sizes = [
        split_validation(len(s.X), validation_fraction, validation_gap, patience) for s in specs
    ]
    # Longest fit set first: at every step the models that still have a batch in this epoch
    # are then a prefix of the stack, and the others are left out of the computation.
    order = sorted(range(M), key=lambda m: -sizes[m][0])
    run = _Training(
        [nets[m] for m in order],
        [specs[m] for m in order],
        [sizes[m] for m in order],
        arch,
        device,
        batch_size=batch_size,
        learning_rate=learning_rate,
        clip_norm=clip_norm,
        optimizer=optimizer,
        loss=loss,
        compile_=compile,
    )
    for epoch in range(1, epochs + 1):
        if run.data is None:  # (re)build the batch geometry for the models on the stack
            run.build_batches()
        train_loss, run_t = run.train_epoch()
        run.end_epoch(epoch, train_loss, run_t, min_delta, patience)
        if progress is not None:
            progress(epoch, int(run.running.sum()))
        if not run.running.any():
            break
        run.compact()
    run.finish(np.arange(len(run.rows)))
    run.stack.write_back(run.nets, run.final)
    results = [
        TrainResult(int(run.epochs_run[m]), int(run.best_epoch[m]), run.histories[m])
        for m in range(M)
    ]
    return [results[order.index(m)] for m in range(M)]


def _check_call(
    nets: Sequence[nn.Module], specs: Sequence[TrainSpec], epochs: int, batch_size: int, loss: str
) -> Arch:
    """The nets' shared architecture, after checking the arguments of :func:`train_many`."""
    if len(nets) != len(specs) or not nets:
        raise ConfigError(f"got {len(nets)} nets and {len(specs)} specs; need equal, >= 1")
    if loss not in LOSSES:
        raise ConfigError(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    if epochs < 1 or batch_size < 1:
        raise ConfigError("epochs and batch_size must be >= 1")
    arch = arch_of(nets[0])
    for k, net in enumerate(nets[1:], 1):
        if arch_of(net) != arch:
            raise ConfigError(f"nets[{k}] differs in architecture from nets[0]")
    return arch


class _Training:
    """The state of one :func:`train_many` call, models in sorted order (longest fit set
    first). Per model: the outcome. Per stack row (``rows``: stack row → model): the live
    state. Models that stop early leave the stack at the end of the epoch (not when
    compiling: a new shape would recompile; they then stay in, frozen by the update mask).
    """

    def __init__(
        self,
        nets: list[nn.Module],
        specs: list[TrainSpec],
        sizes: list[tuple[int, int]],
        arch: Arch,
        device: torch.device,
        *,
        batch_size: int,
        learning_rate: float,
        clip_norm: float | None,
        optimizer: str,
        loss: str,
        compile_: bool,
    ) -> None:
        M = len(nets)
        self.nets, self.sizes, self.arch, self.device = nets, sizes, arch, device
        self.B, self.loss, self.compile = batch_size, loss, compile_
        self.X, self.y, self.x_first, self.y_first = stack_data(
            [s.X for s in specs], [s.y for s in specs], arch, device
        )
        self.T = self.X.shape[1]
        self.lengths = [len(s.X) for s in specs]
        self.validating = sizes[0][1] > 0
        self.stack = stack = NetworkStack(arch, nets, device)
        clip = float(clip_norm) if clip_norm else 0.0
        self.adam = batched_optimizer(optimizer, stack.flat, learning_rate, clip, compile_)
        self.batch_loss = stack.compiled_loss(loss) if compile_ else stack.loss_fn(loss)
        self.gens = [torch.Generator(device).manual_seed(int(s.seed)) for s in specs]
        self.drop_gen = torch.Generator(device).manual_seed(_seed_of([s.seed for s in specs]))

        self.final = torch.empty_like(stack.flat)  # trained weights of each model, at its end
        self.rows = np.arange(M)  # stack row → model
        self.improved_ever = np.zeros(M, dtype=bool)
        self.wait, self.best_epoch, self.epochs_run = (np.zeros(M, dtype=int) for _ in range(3))
        self.histories: list[list[dict[str, float]]] = [[] for _ in range(M)]
        self.running = np.ones(M, dtype=bool)  # per stack row
        self.best = torch.full((M,), math.inf, device=device)
        self.best_flat = stack.flat.clone() if self.validating else stack.flat
        self.data: _Batches | None = None

    def build_batches(self) -> None:
        """The batch geometry, gradient buffer and validation data of the stack's models."""
        Mr = self.Mr = len(self.rows)
        data = self.data = _Batches(
            [self.sizes[m] for m in self.rows],
            [self.lengths[m] for m in self.rows],
            self.B,
            self.device,
        )
        self.grad = torch.empty_like(self.stack.flat)
        per_batch = Mr * self.B * self.T * self.arch.n_features * 4
        self.chunk = max(1, min(data.K, _GATHER_BYTES // per_batch))
        if self.validating:
            Xv, yv = gather(self.X, self.y, data.val_idx.unsqueeze(1), self.x_first, self.y_first)
            self.Xv, self.yv = Xv[0], yv[0]  # (Mr, F, T·V), (Mr, V)

    def train_epoch(self) -> tuple[np.ndarray, torch.Tensor]:
        """One epoch of steps; each stack row's train loss and the running rows (device)."""
        data, stack, adam, Mr, T, B = self.data, self.stack, self.adam, self.Mr, self.T, self.B
        flat = stack.flat
        idx = data.epoch_index(self.gens, self.running)  # (Mr, K, B)
        run_t = torch.from_numpy(self.running).to(self.device)
        c1, c2, bc2s, neg_step = adam.schedule(data.has_batch & run_t)
        loss_sum = torch.zeros(Mr, device=self.device)
        for k0 in range(0, data.K, self.chunk):
            xc, yc = gather(
                self.X, self.y, idx[:, k0 : k0 + self.chunk], self.x_first, self.y_first
            )
            for j in range(xc.shape[0]):
                k = k0 + j
                a = Mr if self.compile else data.with_batch[k]  # rows 0..a-1 have a batch
                drop = dropout_masks(
                    self.arch, a, T, B, self.arch.dropout, self.drop_gen, self.device
                )
                per_model = self.batch_loss(  # (a,)
                    xc[j, :a], yc[j, :a], data.weight[k, :a], T, drop
                )
                grads = torch.autograd.grad(  # W_hh is unused when T = 1 (GRU)
                    per_model.sum(), stack.params, materialize_grads=True
                )
                with torch.no_grad():
                    loss_sum[:a].addcmul_(per_model, data.count[k, :a])
                    torch.cat([g.view(Mr, -1) for g in grads], dim=1, out=self.grad)  # (Mr, P)
                    adam.step(flat, self.grad, c1[k], c2[k], bc2s[k], neg_step[k])
        return (loss_sum / data.n_fit_t).cpu().numpy(), run_t

    def end_epoch(
        self,
        epoch: int,
        train_loss: np.ndarray,
        run_t: torch.Tensor,
        min_delta: float,
        patience: int,
    ) -> None:
        """Histories, validation, best weights and early stopping after an epoch."""
        rows, running = self.rows, self.running
        active = np.flatnonzero(running)
        self.epochs_run[rows[active]] = epoch
        if not self.validating:
            for r in active:
                self.histories[rows[r]].append({"epoch": epoch, "loss": float(train_loss[r])})
            self.best_epoch[rows[active]] = epoch
            return
        with torch.no_grad():
            vl = self.stack.loss_fn(self.loss)(self.Xv, self.yv, self.data.val_weight, self.T, None)
            improved = (vl < self.best - min_delta) & run_t
            self.best = torch.where(improved, vl, self.best)
            torch.where(improved.unsqueeze(1), self.stack.flat, self.best_flat, out=self.best_flat)
        vl_h, imp_h = vl.cpu().numpy(), improved.cpu().numpy()
        for r in active:
            m = rows[r]
            self.histories[m].append(
                {"epoch": epoch, "loss": float(train_loss[r]), "val_loss": float(vl_h[r])}
            )
            if imp_h[r]:
                self.best_epoch[m], self.wait[m], self.improved_ever[m] = epoch, 0, True
            else:
                self.wait[m] += 1
                running[r] = self.wait[m] < patience

    def compact(self) -> None:
        """Stopped models leave the stack (their weights kept), unless compiling."""
        stopped = np.flatnonzero(~self.running)
        if not len(stopped) or self.compile:
            return
        self.finish(stopped)
        keep = np.flatnonzero(self.running)
        kt = torch.as_tensor(keep, device=self.device)
        self.stack.select(kt)
        self.adam.select(kt)
        self.best = self.best.index_select(0, kt)
        self.best_flat = self.best_flat.index_select(0, kt) if self.validating else self.stack.flat
        self.x_first, self.y_first = (
            self.x_first.index_select(0, kt),
            self.y_first.index_select(0, kt),
        )
        self.gens = [self.gens[r] for r in keep]
        self.rows, self.running, self.data = self.rows[keep], self.running[keep], None

    def finish(self, local: np.ndarray) -> None:
        """Store the kept weights of the models on stack rows ``local``."""
        device = self.device
        lt = torch.as_tensor(local, device=device)
        src = self.stack.flat.index_select(0, lt)
        if self.validating:  # the best epoch's weights; the last ones if it never improved
            imp = torch.as_tensor(self.improved_ever[self.rows[local]], device=device).unsqueeze(1)
            src = torch.where(imp, self.best_flat.index_select(0, lt), src)
        self.final[torch.as_tensor(self.rows[local], device=device)] = src


class _Batches:
    """Batch geometry shared by all epochs: per-position weights, counts, index padding."""

    def __init__(self, sizes, lengths, B: int, device: torch.device) -> None:
        M = len(sizes)
        self.n_fit = [f for f, _ in sizes]
        self.n_fit_t = torch.tensor(self.n_fit, dtype=torch.float32, device=device)
        self.validating = sizes[0][1] > 0
        self.B, self.device = B, device
        n_batches = [math.ceil(f / B) for f in self.n_fit]
        self.K = K = max(n_batches)
        # row j of batch k of model m is real iff k·B + j < n_fit[m]
        pos = torch.arange(K * B, device=device).view(1, K, B)
        real = pos < torch.tensor(self.n_fit, device=device).view(M, 1, 1)  # (M, K, B)
        count = real.sum(-1)  # (M, K)
        w = real / count.clamp(min=1).unsqueeze(-1)
        self.weight = w.to(torch.float32).transpose(0, 1).contiguous()  # (K, M, B)
        self.count = count.to(torch.float32).t().contiguous()  # (K, M)
        self.has_batch = (count > 0).t().contiguous()  # (K, M)
        #: models with a batch at step k (a prefix when n_fit is sorted descending)
        self.with_batch = [sum(k < nb for nb in n_batches) for k in range(K)]
        if self.validating:
            n_val = torch.tensor([v for _, v in sizes], device=device).view(M, 1)
            V = int(n_val.max())
            vpos = torch.arange(V, device=device).view(1, V)
            start = torch.tensor(lengths, device=device).view(M, 1) - n_val
            self.val_idx = start + vpos.clamp(max=n_val - 1)  # (M, V)
            self.val_weight = ((vpos < n_val) / n_val).to(torch.float32)  # (M, V)

    def epoch_index(self, gens, running: np.ndarray) -> torch.Tensor:
        """This epoch's shuffled row numbers (M, K, B); each running model draws
        ``randperm(n_fit)`` from its own generator, exactly as the solo loop."""
        M = len(self.n_fit)
        idx = torch.zeros(M, self.K * self.B, dtype=torch.long, device=self.device)
        for m in np.flatnonzero(running):
            n = self.n_fit[m]
            idx[m, :n] = torch.randperm(n, generator=gens[m], device=self.device)
        return idx.view(M, self.K, self.B)


def _seed_of(seeds: Sequence[int]) -> int:
    return int(np.random.SeedSequence([abs(int(s)) for s in seeds]).generate_state(1)[0])

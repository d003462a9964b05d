"""Experiment configuration: typed, frozen dataclasses loaded from TOML.

Resolution order is ``--set key=value`` > TOML file > defaults, validated once here with
messages that name the key. Every key and its default is documented in
``docs/configuration.md`` (generated from these dataclasses by
:func:`lstm_madness.experiment.reference.reference_markdown`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import tomllib
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_madness.errors import ConfigError
from lstm_madness.experiment.hints import key_suggestions, list_example
from lstm_madness.jsonable import jsonable
from lstm_madness.options import (
    CELLS,
    CROSS_SECTION_BASELINE_NAMES,
    CROSS_SECTION_BASELINES,
    CROSS_SECTION_KINDS,
    DEFAULT_COST_BPS,
    DEFAULT_RISK_FREE,
    DEFAULT_SHORT_BORROW_BPS,
    DEFAULT_SLIPPAGE_BPS,
    DEVICES,
    FEATURE_FIELDS,
    LOSSES,
    OPTIMIZERS,
    TRAINERS,
)

#: Feature names a config may list (owned by :data:`lstm_madness.options.FEATURE_FIELDS`).
FEATURES = tuple(FEATURE_FIELDS)


@dataclass(frozen=True)
class DataConfig:
    """Which prices feed the model."""

    #: symbol whose next-day return is predicted; for target.kind = "cross_section" or
    #: "cross_section_direction": "universe:NAME" (stored membership, else the bundled
    #: list) or a list of member symbols
    target: str | tuple[str, ...] = "XLF"
    #: input symbols, or "universe:xlf" for XLF and its components; empty = [target]
    inputs: tuple[str, ...] | str = ()
    start: dt.date | None = None  #: first date read from the store (inclusive)
    end: dt.date | None = None  #: last date read from the store (inclusive)
    #: per-symbol features: ret, log_volume_change, range, vol_20
    features: tuple[str, ...] = ("ret",)
    #: an input that starts after the target: "drop_symbol" (dropped)
    #: or "start_later" (the window starts when every input has data)
    missing: str = "drop_symbol"
    #: forward-fill prices/volume over at most this many missing days (never returns)
    ffill_limit: int = 0
    #: cross-sectional kinds: add the benchmark's daily return (feature "benchmark:ret")
    #: to every member's window
    benchmark_input: bool = False
    #: cross-sectional kinds: add the member's return standardised across that day's
    #: members (feature "ret_xs_z")
    standardized_input: bool = False


@dataclass(frozen=True)
class TargetConfig:
    """What is predicted for the sample dated t."""

    #: "return" (simple return t -> t+horizon), "direction" (1 if that return > 0),
    #: "excess" (the return minus the benchmark's); for a universe target:
    #: "cross_section" (the member's next-day return minus the mean over that day's labelled
    #: members: scored, with a known next-day return) or "cross_section_direction" (1 if
    #: above that day's median)
    kind: str = "return"
    horizon: int = 1  #: trading days ahead (1 for the cross-sectional kinds)
    #: symbol subtracted when kind = "excess" (e.g. XLF for a component); cross-sectional
    #: kinds: the ETF shown beside the strategy (default: the bundled universe's ETF)
    benchmark: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The recurrent network."""

    kind: str = "lstm"  #: "lstm" or "gru"
    units: tuple[int, ...] = (32,)  #: hidden units per stacked layer, e.g. [128, 64]
    dropout: float = 0.0  #: dropout after each recurrent layer
    time_steps: int = 5  #: days of history in one sample (window length)


@dataclass(frozen=True)
class TrainConfig:
    """How each network is trained."""

    epochs: int = 100  #: maximum epochs
    batch_size: int = 32
    learning_rate: float = 1e-3  #: step size of the optimizer
    loss: str = "auto"  #: "mse", "huber", "bce"; "auto" = mse for return targets, bce for direction
    #: early stopping on a validation tail of each training window; 0 disables it
    patience: int = 10
    validation_fraction: float = 0.1  #: share of each training window held out at its end; 0 = none
    clip_norm: float = 1.0  #: gradient-norm clipping; 0 disables it
    #: "adam" or "rmsprop" (ρ = 0.9, ε = 1e-7, as Keras and Fischer & Krauss 2018), after
    #: the clipping (see lstm_madness.models.optimizer)
    optimizer: str = "adam"
    seed: int = 0
    device: str = "auto"  #: "auto" (CUDA when available), "cpu" or "cuda"
    #: "torch" (autograd loop), "batched" (same-shape networks trained together), "compiled"
    #: (numba loops, CPU; own dropout masks) or "auto": compiled for small networks and
    #: batches (batch_size · max(units)² ≤ 524,288; for ``split.scheme = "walk_forward"``
    #: with ``batch_folds``, whose folds train together, ≤ 1,024 or batch size 1), else
    #: batched; a function of the config alone, never of how many seeds or sweep points
    #: train together
    trainer: str = "auto"
    #: train all walk-forward folds of a run as one batched computation
    batch_folds: bool = True
    #: memory bound (MiB) of the training windows trained together in one batched call;
    #: folds are grouped to stay under it (a single larger fold still runs alone)
    batch_memory_mb: int = 64
    #: most networks trained together in one batched call (memory grows with it)
    batch_models: int = 16


@dataclass(frozen=True)
class SplitConfig:
    """Out-of-sample scheme. Sizes count trading days (samples)."""

    scheme: str = "holdout"  #: "holdout" or "walk_forward"
    train_fraction: float = 0.67  #: holdout: share of samples used for training
    initial_train_days: int = 1000  #: walk_forward: samples in the first training window
    retrain_every_days: int = 252  #: walk_forward: test-block length; the model is refit after each
    window: str = "expanding"  #: walk_forward: "expanding" or "rolling"
    rolling_days: int = 1000  #: walk_forward with window = "rolling": training-window length


@dataclass(frozen=True)
class BaselinesConfig:
    """Honest baselines trained and tested on exactly the same folds and dates."""

    #: regression: zero, mean, persistence, ridge; direction: always_up, majority, logistic;
    #: cross-sectional kinds: zero, reversal, momentum, ridge, and logistic when named;
    #: empty = all of the task's (cross-sectional: all but logistic)
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class BacktestConfig:
    """Turning predictions into positions held from close t to close t+1."""

    #: "sign", "long_flat", "threshold" or "proportional"; "long_short" for a universe
    #: (long the top_k highest predictions, short the top_k lowest, dollar-neutral)
    rule: str = "sign"
    threshold: float = 0.0  #: rule = "threshold": trade only when |prediction| exceeds this band
    cap: float = 1.0  #: rule = "proportional": maximum |position|
    cost_bps: float = DEFAULT_COST_BPS  #: cost per unit of turnover, basis points
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS  #: extra cost per unit of turnover, basis points
    risk_free: float = DEFAULT_RISK_FREE  #: annual risk-free rate for Sharpe and Sortino
    top_k: int = 5  #: rule = "long_short": members in each leg (each 1/(2 top_k) of capital)
    #: rule = "long_short": annual fee on the short leg, bps
    short_borrow_bps: float = DEFAULT_SHORT_BORROW_BPS


@dataclass(frozen=True)
class EvaluationConfig:
    """Significance and the verdict."""

    min_dsr: float = 0.95  #: Deflated Sharpe Ratio needed for TRADEABLE
    #: family-wise error rate of Romano–Wolf StepM over the run's trial set: TRADEABLE needs
    #: StepM to select the run as beating buy-and-hold at this level (was ``max_spa_p``)
    fwer: float = 0.05
    alpha: float = 0.05  #: level of the forecast tests quoted in the verdict
    min_test_days: int = 250  #: shorter test periods are "too short to decide"
    #: stationary-bootstrap replications (CIs, SPA, StepM); every evaluation draws them with
    #: seed 0, whatever ``train.seed`` trained the run, so a run's numbers depend on its
    #: stored predictions alone
    bootstrap_reps: int = 1000
    #: number of distinct forecasts tried for the DSR; 0 = the size of the run's trial set
    #: (runs on the same target and test period, deleted ones included; identical forecasts
    #: count once, see docs/statistics.md)
    trials: int = 0
    #: which DSR the verdict uses: "raw" (N trials) or "effective" (N_eff = ρ̄ + (1 − ρ̄)·N,
    #: ρ̄ the trials' mean pairwise return correlation); a non-zero trials overrides both
    trials_mode: str = "raw"


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: data, target, model, training, split, baselines, backtest, evaluation."""

    name: str = ""  #: free-text label; not part of the config hash
    data: DataConfig = field(default_factory=DataConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    @property
    def task(self) -> str:
        """``"classification"`` for direction targets, else ``"regression"``."""
        direction = ("direction", "cross_section_direction")
        return "classification" if self.target.kind in direction else "regression"

    @property
    def target_key(self) -> str:
        """The ``runs.target`` string: the symbol, ``universe:name`` (lower case), or for
        a list of members ``symbols:`` and 12 hex digits of the sorted list's SHA-256."""
        target = self.data.target
        if isinstance(target, tuple):
            text = ",".join(sorted(set(target)))
            return "symbols:" + hashlib.sha256(text.encode()).hexdigest()[:12]
        if target.startswith("universe:"):
            return "universe:" + target.split(":", 1)[1].strip().lower()
        return target

    @property
    def loss(self) -> str:
        if self.train.loss != "auto":
            return self.train.loss
        return "bce" if self.task == "classification" else "mse"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (dates as ISO strings, tuples as lists)."""
        return jsonable(dataclasses.asdict(self))

    def hash(self, *, without_seed: bool = False) -> str:
        """SHA-256 of the canonical config without ``name`` (and without ``train.seed``)."""
        d = self.to_dict()
        d.pop("name", None)
        for old, new in RENAMED_KEYS.items():  # hashed under the old name: hashes stay
            section, key = new.split(".")
            d[section][old.split(".")[1]] = d[section].pop(key)
        for section, key, default in DEFAULT_UNHASHED_KEYS:  # added later: hashes stay
            if d[section].get(key) == default:
                d[section].pop(key)
        if without_seed:
            d["train"].pop("seed", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


_CHOICES: dict[str, tuple[str, ...]] = {
    "data.missing": ("drop_symbol", "start_later"),
    "target.kind": ("return", "direction", "excess", *CROSS_SECTION_KINDS),
    "model.kind": CELLS,
    "train.loss": LOSSES,
    "train.device": DEVICES,
    "train.trainer": TRAINERS,
    "train.optimizer": OPTIMIZERS,
    "split.scheme": ("holdout", "walk_forward"),
    "split.window": ("expanding", "rolling"),
    "backtest.rule": ("sign", "long_flat", "threshold", "proportional", "long_short"),
    "evaluation.trials_mode": ("raw", "effective"),
}


def _coerce(key: str, annotation: Any, value: Any) -> Any:
    """Convert a TOML value to the field's type, or raise ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, option, value)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(
                f"{key}: expected a list, e.g. {key}={list_example(value)}; got {value!r}"
            )
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(_coerce(f"{key}[{i}]", item_type, v) for i, v in enumerate(value))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if annotation is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a date YYYY-MM-DD, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {annotation!r}")  # pragma: no cover


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        key = prefix + unknown[0]
        meant, moved = key_suggestions(ExperimentConfig, key)
        if moved:  # a key of another section: epochs -> train.epochs
            raise ConfigError(f"unknown key {key!r}: did you mean {' or '.join(meant)}?")
        where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
        also = f"; did you mean {' or '.join(meant)}?" if meant else ""
        raise ConfigError(f"unknown key {key!r}; valid keys in {where}: {', '.join(fields)}{also}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        key = prefix + name
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, Mapping):  # target=XLF: did you mean data.target?
                meant, moved = key_suggestions(ExperimentConfig, key)
                also = f"; did you mean {' or '.join(meant)}?" if moved else ""
                raise ConfigError(f"{key}: expected a table [{key}], got {value!r}{also}")
            kwargs[name] = _build(annotation, value, key + ".")
        else:
            kwargs[name] = _coerce(key, annotation, value)
    return cls(**kwargs)


#: Values a key may take at all (inclusive), refused before anything runs: an absurd value
#: would otherwise train until killed or fail deep inside NumPy or PyTorch.
_RANGES: dict[str, tuple[int, int]] = {
    "model.units": (1, 4096),  # each layer's
    "model.time_steps": (1, 10_000),
    "train.epochs": (1, 100_000),
    "train.batch_size": (1, 1_000_000),
    "train.seed": (0, 2**32 - 1),  # NumPy's and PyTorch's seeds are unsigned 32-bit
}


def _check_ranges(config: ExperimentConfig) -> None:
    for key, (low, high) in _RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        for v in value if isinstance(value, tuple) else (value,):
            if not low <= v <= high:
                raise ConfigError(f"{key} = {v!r} is out of range: allowed {low} to {high}")


def _validate(config: ExperimentConfig) -> ExperimentConfig:
    _check_ranges(config)
    for key, choices in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    checks = [
        ("data.target", bool(config.data.target), "must name a symbol"),
        (
            "data.features",
            all(f in FEATURES for f in config.data.features) and bool(config.data.features),
            f"each feature must be one of {', '.join(FEATURES)}",
        ),
        ("data.ffill_limit", config.data.ffill_limit >= 0, "must be >= 0"),
        (
            "data.end",
            None in (config.data.start, config.data.end) or config.data.start <= config.data.end,
            f"= {config.data.end} is before data.start = {config.data.start}",
        ),
        ("target.horizon", config.target.horizon >= 1, "must be >= 1"),
        (
            "target.benchmark",
            config.target.kind != "excess" or bool(config.target.benchmark),
            "is required when target.kind = 'excess'",
        ),
        (
            "model.units",
            bool(config.model.units) and min(config.model.units, default=0) >= 1,
            "must be a non-empty list of positive integers",
        ),
        ("model.dropout", 0.0 <= config.model.dropout < 1.0, "must be in [0, 1)"),
        ("train.learning_rate", config.train.learning_rate > 0, "must be > 0"),
        ("train.patience", config.train.patience >= 0, "must be >= 0"),
        (
            "train.validation_fraction",
            0.0 <= config.train.validation_fraction < 0.5,
            "must be in [0, 0.5)",
        ),
        ("train.clip_norm", config.train.clip_norm >= 0, "must be >= 0"),
        ("train.batch_memory_mb", config.train.batch_memory_mb >= 1, "must be >= 1"),
        ("train.batch_models", config.train.batch_models >= 1, "must be >= 1"),
        (
            "train.loss",
            (config.loss == "bce") == (config.task == "classification"),
            "bce is for direction targets only, and direction targets need bce",
        ),
        ("split.train_fraction", 0.0 < config.split.train_fraction < 1.0, "must be in (0, 1)"),
        ("split.initial_train_days", config.split.initial_train_days >= 50, "must be >= 50"),
        ("split.retrain_every_days", config.split.retrain_every_days >= 1, "must be >= 1"),
        ("split.rolling_days", config.split.rolling_days >= 50, "must be >= 50"),
        ("backtest.cost_bps", config.backtest.cost_bps >= 0, "must be >= 0"),
        ("backtest.slippage_bps", config.backtest.slippage_bps >= 0, "must be >= 0"),
        ("backtest.cap", config.backtest.cap > 0, "must be > 0"),
        ("evaluation.min_dsr", 0.0 <= config.evaluation.min_dsr <= 1.0, "must be in [0, 1]"),
        ("evaluation.fwer", 0.0 < config.evaluation.fwer < 1.0, "must be in (0, 1)"),
        ("evaluation.trials", config.evaluation.trials >= 0, "must be >= 0"),
        ("evaluation.bootstrap_reps", config.evaluation.bootstrap_reps >= 10, "must be >= 10"),
    ]
    checks += _cross_section_checks(config)
    for key, ok, message in checks:
        if not ok:
            raise ConfigError(f"{key} {message}")
    return config


def _cross_section_checks(config: ExperimentConfig) -> list[tuple[str, bool, str]]:
    """Keys that only make sense together for a universe study."""
    d, target = config.data, config.data.target
    universe = isinstance(target, tuple) or target.startswith("universe:")
    xs = config.target.kind in CROSS_SECTION_KINDS
    return [
        (
            "data.target",
            universe or not xs,
            "must be 'universe:NAME' or a list of symbols when target.kind is "
            f"{config.target.kind!r}",
        ),
        (
            "target.kind",
            xs or not universe,
            "must be 'cross_section' or 'cross_section_direction' for a universe target "
            f"({target!r})",
        ),
        (
            "data.target",
            not isinstance(target, tuple) or len(set(target)) >= 2,
            "a list of members needs at least 2 distinct symbols",
        ),
        ("data.target", len(config.target_key) <= 32, "universe name is too long (24 chars max)"),
        ("target.horizon", not xs or config.target.horizon == 1, "must be 1 for a universe"),
        (
            "backtest.rule",
            (config.backtest.rule == "long_short") == xs,
            "'long_short' is the rule of the cross-sectional kinds, and only theirs",
        ),
        ("backtest.top_k", config.backtest.top_k >= 1, "must be >= 1"),
        ("backtest.short_borrow_bps", config.backtest.short_borrow_bps >= 0, "must be >= 0"),
        (
            "baselines.models",
            not xs or all(m in CROSS_SECTION_BASELINE_NAMES for m in config.baselines.models),
            f"of a universe study must be among {', '.join(CROSS_SECTION_BASELINE_NAMES)} "
            f"(empty = {', '.join(CROSS_SECTION_BASELINES)})",
        ),
        ("data.inputs", not xs or not d.inputs, "must be empty for a universe (its members)"),
        (
            "data.benchmark_input",
            xs or not (d.benchmark_input or d.standardized_input),
            "and data.standardized_input are for the cross-sectional kinds only",
        ),
    ]


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` where value is a TOML literal (bare words are strings).

    >>> parse_assignment("model.units=[64,32]")
    ('model.units', [64, 32])
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        example = f"{key}=VALUE" if key else "train.epochs=5"
        raise ConfigError(f"--set expects KEY=VALUE, e.g. --set {example}; got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str | tuple[str, Any]]) -> dict:
    """Return a deep copy of ``raw`` with dotted-key overrides applied."""
    result = json.loads(json.dumps(raw, default=str))
    for item in overrides:
        key, value = parse_assignment(item) if isinstance(item, str) else item
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a table")
            node = child
        node[parts[-1]] = value
    return result


#: Keys renamed since configs were first stored: old dotted key -> new dotted key.
RENAMED_KEYS = {"evaluation.max_spa_p": "evaluation.fwer"}
#: Keys added since hashes were stored, with their defaults: a config that leaves one at
#: its default hashes without it, as it did before the key existed.
DEFAULT_UNHASHED_KEYS = (("train", "optimizer", "adam"),)


def _renamed(raw: Mapping[str, Any], *, warn: bool) -> Mapping[str, Any]:
    """``raw`` with renamed keys under their new names (a FutureWarning each, when
    ``warn``: stored configs of older runs are read silently)."""
    out: dict[str, Any] | None = None
    for old, new in RENAMED_KEYS.items():
        section, key = old.split(".")
        table = raw.get(section)
        if not isinstance(table, Mapping) or key not in table:
            continue
        out = out if out is not None else dict(raw)
        moved = dict(out[section])
        value = moved.pop(key)
        new_key = new.split(".")[1]
        if new_key in moved:
            raise ConfigError(f"{old} is the old name of {new}: give only {new}")
        moved[new_key] = value
        out[section] = moved
        if warn:
            warnings.warn(
                f"{old} is deprecated: it is now {new} (StepM's family-wise error rate "
                f"replaces the SPA p-value as the verdict's condition); read as {new} = "
                f"{value!r}",
                FutureWarning,
                stacklevel=3,
            )
    return raw if out is None else out


def from_dict(raw: Mapping[str, Any], *, warn_deprecated: bool = False) -> ExperimentConfig:
    """Build and validate a config from a nested mapping (e.g. parsed TOML).

    Keys renamed since (:data:`RENAMED_KEYS`) are read under their new names, with a
    FutureWarning when ``warn_deprecated`` (a user's file or overrides, not a stored run).
    """
    return _validate(_build(ExperimentConfig, _renamed(raw, warn=warn_deprecated)))


def load_config(
    path: str | Path | None = None, overrides: Sequence[str | tuple[str, Any]] = ()
) -> ExperimentConfig:
    """Load ``path`` (TOML; None = all defaults), apply ``overrides``, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return from_dict(apply_overrides(raw, overrides), warn_deprecated=True)

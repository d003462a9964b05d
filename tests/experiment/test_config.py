import datetime as dt
import re
import warnings
from pathlib import Path

import pytest

from lstm_madness.errors import ConfigError
from lstm_madness.experiment.config import (
    ExperimentConfig,
    from_dict,
    load_config,
    parse_assignment,
)
from lstm_madness.experiment.reference import reference_markdown


def test_defaults_are_valid_and_documented():
    config = load_config()
    assert config == ExperimentConfig()
    doc = reference_markdown()
    for section in (
        "data",
        "target",
        "model",
        "train",
        "split",
        "baselines",
        "backtest",
        "evaluation",
    ):
        assert f"## [{section}]" in doc
    assert "| `time_steps` | `5` |" in doc


def test_toml_and_overrides(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        '[data]\ntarget = "XLF"\nstart = 2001-01-02\ninputs = ["XLF", "JPM"]\n'
        "[model]\nunits = [128, 64]\ndropout = 0.2\n"
        '[split]\nscheme = "walk_forward"\n'
    )
    config = load_config(
        path, ["model.units=[64,32]", "train.epochs=200", "data.end=2010-12-31", "name=replay"]
    )
    assert config.model.units == (64, 32)
    assert config.model.dropout == 0.2
    assert config.train.epochs == 200
    assert config.data.start == dt.date(2001, 1, 2)
    assert config.data.end == dt.date(2010, 12, 31)
    assert config.data.inputs == ("XLF", "JPM")
    assert config.name == "replay"
    assert config.split.scheme == "walk_forward"


def test_universe_string_input():
    config = load_config(None, ['data.inputs="universe:xlf"'])
    assert config.data.inputs == "universe:xlf"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.unit=3", "unknown key 'model.unit'; valid keys in [model]: kind, units"),
        ("modle.units=[3]", "unknown key 'modle'"),
        ("model.units=3", "model.units: expected a list"),
        ("train.epochs=1.5", "train.epochs: expected an integer"),
        ("model.kind=transformer", "model.kind: 'transformer' is not one of lstm, gru"),
        ("target.kind=excess", "target.benchmark is required"),
        ("target.kind=direction", None),
        ("train.loss=bce", "bce is for direction targets only"),
        ("data.start=yesterday", "data.start: expected a date"),
        ("model.dropout=1.0", "model.dropout must be in [0, 1)"),
    ],
)
def test_invalid_values_name_the_key(override, message):
    if message is None:
        assert load_config(None, [override]).loss == "bce"
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_hash_ignores_name_and_optionally_seed():
    a = load_config(None, ["name=a", "train.seed=1"])
    b = load_config(None, ["name=b", "train.seed=2"])
    assert a.hash() != b.hash()
    assert a.hash(without_seed=True) == b.hash(without_seed=True)
    assert a.hash() == load_config(None, ["name=zzz", "train.seed=1"]).hash()


def test_parse_assignment_bare_word_is_string():
    assert parse_assignment("data.target=BRK-B") == ("data.target", "BRK-B")
    with pytest.raises(ConfigError):
        parse_assignment("no-equals-sign")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


XS = ["data.target=universe:XLF", "target.kind=cross_section", "backtest.rule=long_short"]


def test_a_universe_study_config():
    from lstm_madness.experiment import config as config_module
    from lstm_madness.models import cross_section_baselines

    assert config_module.CROSS_SECTION_BASELINES == cross_section_baselines.CROSS_SECTION_BASELINES
    from lstm_madness.experiment.kinds import study_kind

    config = load_config(None, XS)
    kind = study_kind(config)
    assert kind.name == "cross_section" and config.task == "regression"
    assert config.target_key == "universe:xlf"
    assert kind.baseline_names(config) == ("zero", "reversal", "momentum", "ridge")
    direction = load_config(None, [*XS, "target.kind=cross_section_direction"])
    assert direction.task == "classification" and direction.loss == "bce"
    listed = load_config(None, [*XS, 'data.target=["JPM", "BAC"]'])
    same = load_config(None, [*XS, 'data.target=["BAC", "JPM", "BAC"]'])
    assert listed.data.target == ("JPM", "BAC")
    assert listed.target_key == same.target_key and listed.target_key.startswith("symbols:")
    assert len(listed.target_key) <= 32


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["target.kind=cross_section"], "data.target must be 'universe:NAME' or a list"),
        (["data.target=universe:xlf"], "target.kind must be 'cross_section' or"),
        ([*XS, "backtest.rule=sign"], "backtest.rule 'long_short' is the rule of the"),
        (["backtest.rule=long_short"], "backtest.rule 'long_short' is the rule of the"),
        ([*XS, "target.horizon=5"], "target.horizon must be 1 for a universe"),
        ([*XS, "backtest.top_k=0"], "backtest.top_k must be >= 1"),
        ([*XS, "backtest.short_borrow_bps=-1"], "backtest.short_borrow_bps must be >= 0"),
        ([*XS, 'baselines.models=["mean"]'], "baselines.models of a universe study must"),
        ([*XS, 'data.inputs=["XLF"]'], "data.inputs must be empty for a universe"),
        (["data.standardized_input=true"], "data.benchmark_input and data.standardized_input"),
        ([*XS, 'data.target=["JPM"]'], "a list of members needs at least 2"),
        ([*XS, f"data.target=universe:{'x' * 30}"], "universe name is too long"),
    ],
)
def test_universe_keys_are_validated_together(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, overrides)


def test_the_configuration_reference_is_generated_from_the_code() -> None:
    """docs/configuration.md is what ``python -m lstm_madness.experiment.reference`` writes."""
    path = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert path.read_text() == reference_markdown()


def test_the_old_name_of_a_renamed_key_is_read_with_a_deprecation_message() -> None:
    with pytest.warns(
        FutureWarning, match=r"evaluation\.max_spa_p is deprecated.*evaluation\.fwer"
    ):
        config = load_config(None, ["evaluation.max_spa_p=0.1"])
    assert config.evaluation.fwer == 0.1
    # a stored config of an older run is read silently, and hashes as it did
    stored = {"evaluation": {"max_spa_p": 0.05}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = from_dict(stored)
    assert old == ExperimentConfig() and old.hash() == ExperimentConfig().hash()
    with pytest.raises(ConfigError, match=r"give only evaluation\.fwer"):
        from_dict({"evaluation": {"max_spa_p": 0.05, "fwer": 0.05}})


#: ``ExperimentConfig().hash()`` before ``train.optimizer`` existed.
DEFAULT_HASH = "2153a0ee607a18850079343b0d8c16381fa267d8b2767349cfb9c236f86ce722"


def test_train_optimizer_is_hashed_only_when_it_is_not_the_default() -> None:
    assert ExperimentConfig().train.optimizer == "adam"
    assert ExperimentConfig().hash() == DEFAULT_HASH
    assert load_config(None, ["train.optimizer=adam"]).hash() == DEFAULT_HASH
    rms = load_config(None, ["train.optimizer=rmsprop"])
    assert rms.train.optimizer == "rmsprop" and rms.hash() != DEFAULT_HASH
    assert rms.hash(without_seed=True) != ExperimentConfig().hash(without_seed=True)
    assert rms.to_dict()["train"]["optimizer"] == "rmsprop"
    with pytest.raises(ConfigError, match=r"train\.optimizer: 'sgd' is not one of adam, rmsprop"):
        load_config(None, ["train.optimizer=sgd"])


@pytest.mark.parametrize(
    ("override", "key", "value", "allowed"),
    [
        (
            "train.epochs=99999999999999999999999",
            "train.epochs",
            "99999999999999999999999",
            "1 to 100000",
        ),
        (
            "train.seed=99999999999999999999999",
            "train.seed",
            "99999999999999999999999",
            "0 to 4294967295",
        ),
        ("train.seed=-5", "train.seed", "-5", "0 to 4294967295"),
        ("model.units=[100000]", "model.units", "100000", "1 to 4096"),
        ("model.units=[32, 0]", "model.units", "0", "1 to 4096"),
        ("model.time_steps=100000", "model.time_steps", "100000", "1 to 10000"),
        ("train.batch_size=0", "train.batch_size", "0", "1 to 1000000"),
    ],
)
def test_absurd_values_are_refused_naming_key_value_and_range(
    override: str, key: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value) == f"{key} = {value} is out of range: allowed {allowed}"

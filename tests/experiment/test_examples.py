from pathlib import Path

import pytest

from lstm_madness.experiment.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    config = load_config(path)
    assert config.name
    assert config.data.target == ("universe:xlf" if config.cross_section else "XLF")


def test_examples_exist():
    assert len(EXAMPLES) >= 5

from pathlib import Path

import pytest

from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.kinds import study_kind

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    config = load_config(path)
    assert config.name
    universe = study_kind(config).name == "cross_section"
    expected = f"universe:{path.parent.name}" if universe else "XLF"
    assert config.data.target == expected


def test_examples_exist():
    assert len(EXAMPLES) >= 5

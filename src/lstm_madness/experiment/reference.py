"""The configuration reference (``docs/configuration.md``), generated from the config's
dataclasses: every key, its default and the ``#:`` comment that explains it."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.jsonable import jsonable

__all__ = ["reference_markdown"]


def reference_markdown() -> str:
    """Markdown reference of every key, its type, default and meaning."""
    import inspect

    lines = [
        "# Experiment configuration reference",
        "",
        "Generated from `lstm_madness.experiment.config`; "
        "`python -m lstm_madness.experiment.reference` regenerates it.",
        "",
        "Every key is optional. Override any key on the command line with "
        "`--set section.key=value` (TOML literal: `--set model.units=[64,32]`).",
        "",
    ]
    top = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        cls = top[f.name]
        if not dataclasses.is_dataclass(cls):
            lines += [f"`{f.name}` (top level): free-text label, not part of the config hash.", ""]
            continue
        lines += [
            f"## [{f.name}]",
            "",
            (inspect.getdoc(cls) or "").splitlines()[0],
            "",
            "| key | default | meaning |",
            "|---|---|---|",
        ]
        source = inspect.getsource(cls).splitlines()
        docs = {}
        pending: list[str] = []
        for line in source:
            s = line.strip()
            if s.startswith("#:"):
                pending.append(s[2:].strip())
                continue
            if ":" in s and "#:" in s:
                docs[s.split(":")[0]] = s.split("#:", 1)[1].strip()
            elif ":" in s and pending:
                docs[s.split(":")[0]] = " ".join(pending)
            pending = [] if not s.startswith("#:") else pending
        defaults = cls()
        for sub in dataclasses.fields(cls):
            default = json.dumps(jsonable(getattr(defaults, sub.name)))
            lines.append(f"| `{sub.name}` | `{default}` | {docs.get(sub.name, '')} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    Path("docs/configuration.md").write_text(reference_markdown())

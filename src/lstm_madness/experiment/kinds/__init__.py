"""Study kinds: what differs between timing one asset and trading a universe's
cross-section, behind one protocol (:class:`~lstm_madness.experiment.kinds.base.StudyKind`).

A run's kind is chosen once, by :func:`study_kind`, from its ``target.kind``; the engine
(runner, summaries, ledger, report glue) calls the kind's methods wherever the two differ
and shares everything else. The kinds:

- :data:`~lstm_madness.experiment.kinds.timing.TIMING` (``return``, ``direction``,
  ``excess``): one asset timed by a position rule, against buy-and-hold;
- :data:`~lstm_madness.experiment.kinds.cross_section.CROSS_SECTION`
  (``cross_section``, ``cross_section_direction``): a universe's members ranked, the
  long-short book against the equal-weight book.

A third kind (say, pairs) is one module here: a class with the methods of
:class:`~lstm_madness.experiment.kinds.base.StudyKind`, built from its own data, baseline,
evaluation and report modules, and one entry in :data:`KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lstm_madness.experiment.kinds.base import Evaluated, FoldBaselines, FoldPlan, StudyKind
from lstm_madness.experiment.kinds.cross_section import CROSS_SECTION
from lstm_madness.experiment.kinds.timing import TIMING
from lstm_madness.options import CROSS_SECTION_KINDS

__all__ = [
    "KINDS",
    "Evaluated",
    "FoldBaselines",
    "FoldPlan",
    "StudyKind",
    "study_kind",
]

#: The study kind of each ``target.kind`` that is not a single asset's (those are
#: :data:`~lstm_madness.experiment.kinds.timing.TIMING`'s).
KINDS: dict[str, StudyKind] = dict.fromkeys(CROSS_SECTION_KINDS, CROSS_SECTION)


def study_kind(config: Any) -> StudyKind:
    """The study kind of a run: the one place that reads which kind a config is.

    ``config``: an :class:`~lstm_madness.experiment.config.ExperimentConfig`, a stored
    config (a mapping, as ``runs.config``), or a ``target.kind`` string.
    """
    if isinstance(config, str):
        target_kind = config
    elif isinstance(config, Mapping):
        target_kind = str((config.get("target") or {}).get("kind", "return"))
    else:
        target_kind = config.target.kind
    return KINDS.get(target_kind, TIMING)

"""What a study hands its notebook: named tables and figures, each with the words its caption starts with.

Every study module has the same verbs, so that a notebook only orchestrates:

- ``plan(params) -> list[TrainConfig]``: the runs the study trains (those it can name before training);
- ``run(params) -> results``: trains what is missing, reuses finished runs, measures; results are a
  dataclass of plain DataFrames, so ``table`` and ``verdict`` can be tested on constructed ones;
- ``table(results) -> DataFrame``: the headline table;
- ``verdict(results) -> str``: the closing paragraph, generated from the numbers;
- ``outputs(results) -> list[Table | Figure]``: every table and figure the notebook shows, by name.

The provenance every caption carries (video, split, teacher, epochs) comes with the results
(:class:`Provenance`); the report layer adds the profile, saves and displays
(:mod:`hnerv_lib.report.publish`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pandas as pd


@dataclass(frozen=True)
class Provenance:
    """Where a study's numbers come from: every caption names these."""

    video: str
    teacher: str
    split: Optional[str] = None
    epochs: Optional[int] = None

    @classmethod
    def of_summary(cls, summary: dict, epochs: Optional[int] = None) -> "Provenance":
        """From a run's summary (``Run.summary()`` or the trainer's return value)."""
        return cls(video=summary["video"], teacher=summary["teacher"], split=summary.get("split"), epochs=epochs)


@dataclass(frozen=True)
class Table:
    """A table to show; saved as ``tables/<name>.csv`` and ``.md`` unless ``save`` is False."""

    name: str
    frame: pd.DataFrame
    what: str  # the caption's first words: what the table shows and how it was made
    digits: Optional[int] = 4  # rounding of the saved and shown table (None: as is)
    save: bool = True
    provenance: Optional[Provenance] = None  # where this table's caption differs from the results' provenance

    def rounded(self) -> pd.DataFrame:
        return self.frame.round(self.digits) if self.digits is not None else self.frame


@dataclass(frozen=True)
class Figure:
    """A figure to show, drawn only when shown (so a notebook section shows just its own figures)."""

    name: str
    what: str
    draw: Callable[[], Any]  # returns a matplotlib Figure
    provenance: Optional[Provenance] = None  # where this figure's caption differs from the results' provenance


@dataclass(frozen=True)
class Text:
    """A line the notebook prints (progress facts a reader needs, such as the equal-time epochs)."""

    name: str
    text: str


Output = Table | Figure | Text


def by_name(outputs: list[Output]) -> dict[str, list[Output]]:
    """Outputs grouped by name, in order: a table and a figure may share one (``tables/x.csv`` and
    ``figures/x.png``), two of one kind may not."""
    named: dict[str, list[Output]] = {}
    for o in outputs:
        same = named.setdefault(o.name, [])
        if any(type(x) is type(o) for x in same):
            raise ValueError(f"two study outputs of one kind are named {o.name!r}")
        same.append(o)
    return named

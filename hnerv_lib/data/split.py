"""Frame-based train/validation split, a typed form of HNeRV's ``X_Y_Z`` rule.

For every ``period`` frames, frame ``i`` is

* train       if ``i % period <  train``,
* validation  if ``i % period >= gap``,
* unused      otherwise.

HNeRV writes this as ``train_gap_period`` (``"9_10_10"``). Under the rule, ``9_10_10`` and ``4_5_5``
select **no** validation frames although the research fork's docs call them 90/10 and 80/20, so a
split always reports its counts and callers must not report a validation metric over zero frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hnerv_lib.utils.parse import parse_value


@dataclass(frozen=True)
class Split:
    """``Split(train=6, gap=6, period=10)`` is HNeRV's ``6_6_10``: 60 % train, 40 % validation."""

    train: int = 1  # frames per period used for training
    gap: int = 1  # position in the period from which frames are validation
    period: int = 1  # length of the repeating pattern

    def __post_init__(self) -> None:
        if not (1 <= self.train <= self.gap <= self.period):
            raise ValueError(
                f"split needs 1 <= train <= gap <= period, got train={self.train}, gap={self.gap}, "
                f"period={self.period}"
            )

    @classmethod
    def parse(cls, text: str) -> "Split":
        """Parse HNeRV's ``"X_Y_Z"`` spelling (or ``"[X, Y, Z]"``) with the project's one parser."""
        return cls(*parse_value("split", text, tuple[int, int, int]))

    def legacy(self) -> str:
        """The ``X_Y_Z`` spelling, for captions that cite the original flags."""
        return f"{self.train}_{self.gap}_{self.period}"

    def role(self, index: int) -> str:
        """'train', 'val' or 'unused' for one frame index."""
        r = index % self.period
        return "train" if r < self.train else ("val" if r >= self.gap else "unused")

    def indices(self, num_frames: int) -> "SplitIndices":
        """Frame indices of each role for a video of ``num_frames`` frames."""
        roles = [self.role(i) for i in range(num_frames)]
        pick = lambda name: [i for i, r in enumerate(roles) if r == name]  # noqa: E731
        return SplitIndices(self, num_frames, pick("train"), pick("val"), pick("unused"))

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class SplitIndices:
    """The frames a :class:`Split` selects from one video, with counts."""

    split: Split
    num_frames: int
    train: list[int]
    val: list[int]
    unused: list[int]

    @property
    def has_val(self) -> bool:
        """False when the rule selects no validation frame (e.g. 9_10_10): report no val metric."""
        return len(self.val) > 0

    def counts(self) -> dict[str, int]:
        """Number of frames per role."""
        return {"train": len(self.train), "val": len(self.val), "unused": len(self.unused)}

    def describe(self) -> str:
        """One line for captions and logs, e.g. ``split 6_6_10: 80 train / 52 val / 0 unused of 132``."""
        c = self.counts()
        note = "" if self.has_val else " (no validation frames: no unseen-frame metric)"
        return (
            f"split {self.split.legacy()}: {c['train']} train / {c['val']} val / {c['unused']} unused "
            f"of {self.num_frames}{note}"
        )

    def roles(self) -> list[str]:
        """Role of every frame, in frame order."""
        return [self.split.role(i) for i in range(self.num_frames)]

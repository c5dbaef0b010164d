"""HNeRV's learning-rate schedules as typed, validated, JSON-round-trippable frozen dataclasses.

Both formulas were checked against ``adjust_lr`` in ``hnerv_utils.py`` of the original HNeRV repository
(github.com/haochen-rye/HNeRV, commit 7d86849). There the schedule is evaluated every iteration at
progress ``p = (epoch + iter / iters_per_epoch) / epochs`` and the lr is ``base_lr * multiplier(p)``.
Legacy strings such as ``"cosine_0.1_1_0.1"`` are only parsed at the edge (``parse_schedule``).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar, Union

import torch


def _number(owner: str, name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise ValueError naming ``owner.name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be a finite number; got {value!r}")
    return float(value)


def _check_fields(obj: Any, rules: dict[str, tuple[str, Any]]) -> None:
    """Coerce each field to float and check it against its (description, predicate) rule."""
    owner = type(obj).__name__
    for name, (description, ok) in rules.items():
        value = _number(owner, name, getattr(obj, name))
        if not ok(value):
            raise ValueError(f"{owner}.{name} must be {description}; got {getattr(obj, name)!r}")
        object.__setattr__(obj, name, value)  # frozen dataclass: store the normalised float


_FRACTION_OPEN = ("in [0, 1)", lambda v: 0.0 <= v < 1.0)
_FRACTION_CLOSED = ("in [0, 1]", lambda v: 0.0 <= v <= 1.0)
_POSITIVE = ("> 0", lambda v: v > 0.0)


def _check_progress(progress: float) -> float:
    """Return ``progress`` as a float in [0, 1], or raise ValueError showing the value."""
    value = _number("schedule", "progress", progress)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"progress must be in [0, 1] (fraction of training done); got {progress!r}")
    return value


def _warmup_multiplier(p: float, warmup: float, power: float, floor: float) -> float:
    """HNeRV's warm-up ramp from ``floor`` at p=0 to 1 at p=warmup, shaped by ``power``."""
    return floor + (1.0 - floor) * (p / warmup) ** power


def _format_number(value: float) -> str:
    """Shortest exact text for ``value``: ``1`` for 1.0 (as HNeRV writes it), else Python's repr."""
    return str(int(value)) if value.is_integer() else repr(value)


_S = TypeVar("_S", bound="_LegacyMixin")


class _LegacyMixin:
    """Shared dict/legacy-string (de)serialisation for schedule dataclasses keyed by ``KIND``."""

    KIND: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``kind`` tag, e.g. ``{"kind": "cosine", "warmup": 0.1, ...}``."""
        return {"kind": self.KIND, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_S], data: dict[str, Any]) -> _S:
        """Inverse of ``to_dict``; a wrong ``kind``, unknown key or missing field raises ValueError."""
        data = dict(data)
        kind = data.pop("kind", cls.KIND)
        if kind != cls.KIND:
            raise ValueError(f"{cls.__name__}.from_dict expects kind {cls.KIND!r}; got {kind!r}")
        known = fields(cls)  # type: ignore[arg-type]
        unknown = sorted(set(data) - {f.name for f in known})
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict got unknown keys {unknown}")
        missing = [f.name for f in known if f.name not in data and f.default is MISSING]
        if missing:
            raise ValueError(f"{cls.__name__}.from_dict is missing fields {missing}; got {data!r}")
        return cls(**data)  # type: ignore[call-arg]

    def to_legacy(self) -> str:
        """HNeRV's ``--lr_type`` string for this schedule, e.g. ``"cosine_0.1_1_0.1"``."""
        values = [getattr(self, f.name) for f in fields(self)]  # type: ignore[arg-type]
        return "_".join([self.KIND] + [_format_number(v) for v in values])

    @classmethod
    def parse_legacy(cls: type[_S], text: str) -> _S:
        """Parse HNeRV's ``--lr_type`` string (``KIND_v1_v2_...``, values in field order)."""
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        tokens = text.split("_") if isinstance(text, str) else []
        if not tokens or tokens[0] != cls.KIND or len(tokens) != len(names) + 1:
            expected = "_".join([cls.KIND] + names)
            raise ValueError(f"legacy {cls.KIND} schedule must look like {expected!r}; got {text!r}")
        try:
            values = [float(token) for token in tokens[1:]]
        except ValueError:
            raise ValueError(f"legacy {cls.KIND} schedule has a non-numeric field: {text!r}") from None
        return cls(**dict(zip(names, values)))  # type: ignore[call-arg]


@dataclass(frozen=True)
class Cosine(_LegacyMixin):
    """Warm-up ramp then half-cosine decay to 0 (HNeRV ``cosine_{warmup}_{power}_{floor}``)."""

    KIND: ClassVar[str] = "cosine"

    warmup: float = 0.1  # fraction of training spent ramping up; avoids large early steps on a fresh decoder
    power: float = 1.0  # warm-up curve exponent; 1 is a linear ramp
    floor: float = 0.1  # multiplier at progress 0, so the first steps do not have lr = 0

    def __post_init__(self) -> None:
        _check_fields(self, {"warmup": _FRACTION_OPEN, "power": _POSITIVE, "floor": _FRACTION_CLOSED})

    def multiplier(self, progress: float) -> float:
        """Learning-rate multiplier at ``progress`` in [0, 1]: floor at 0, 1 at warmup, 0 at 1."""
        p = _check_progress(progress)
        if p < self.warmup:
            return _warmup_multiplier(p, self.warmup, self.power, self.floor)
        return 0.5 * (1.0 + math.cos(math.pi * (p - self.warmup) / (1.0 - self.warmup)))


@dataclass(frozen=True)
class Hybrid(_LegacyMixin):
    """Warm-up ramp then power decay to ``final`` (HNeRV ``hybrid_{warmup}_{up}_{down}_{floor}_{final}``)."""

    KIND: ClassVar[str] = "hybrid"

    warmup: float  # fraction of training spent ramping up
    up_power: float  # warm-up curve exponent; 1 is a linear ramp
    down_power: float  # decay curve exponent; 1 is a linear decay, >1 keeps the lr high for longer
    floor: float  # multiplier at progress 0, so the first steps do not have lr = 0
    final: float  # multiplier reached at progress 1

    def __post_init__(self) -> None:
        rules = {"warmup": _FRACTION_OPEN, "up_power": _POSITIVE, "down_power": _POSITIVE}
        _check_fields(self, {**rules, "floor": _FRACTION_CLOSED, "final": _FRACTION_CLOSED})

    def multiplier(self, progress: float) -> float:
        """Learning-rate multiplier at ``progress`` in [0, 1]: floor at 0, 1 at warmup, final at 1."""
        p = _check_progress(progress)
        if p < self.warmup:
            return _warmup_multiplier(p, self.warmup, self.up_power, self.floor)
        decayed = ((p - self.warmup) / (1.0 - self.warmup)) ** self.down_power
        return 1.0 - (1.0 - self.final) * decayed


# Any learning-rate schedule this module knows.
Schedule = Union[Cosine, Hybrid]
# Kind tag -> class, for legacy strings and tagged dicts.
SCHEDULES: dict[str, type] = {Cosine.KIND: Cosine, Hybrid.KIND: Hybrid}


def _schedule_class(kind: Any) -> type:
    """The schedule class for ``kind``, or ValueError listing the known kinds."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule kind {kind!r}; known kinds: {', '.join(SCHEDULES)}")
    return SCHEDULES[kind]


def parse_schedule(text: str) -> Schedule:
    """Parse a legacy HNeRV ``--lr_type`` string such as ``"cosine_0.1_1_0.1"`` (use only at the edge)."""
    kind = text.split("_", 1)[0] if isinstance(text, str) else text
    return _schedule_class(kind).parse_legacy(text)


def schedule_from_dict(data: dict[str, Any]) -> Schedule:
    """Rebuild any schedule from its ``to_dict()`` form, dispatching on the ``kind`` tag."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError(f"schedule dict needs a 'kind' key; got {data!r}")
    return _schedule_class(data["kind"]).from_dict(data)


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, schedule: Schedule, progress: float) -> float:
    """Set every param group's lr to ``base_lr * schedule.multiplier(progress)`` and return that lr."""
    base = _number("set_lr", "base_lr", base_lr)
    if base <= 0:
        raise ValueError(f"base_lr must be > 0; got {base_lr!r}")
    lr = base * schedule.multiplier(progress)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr

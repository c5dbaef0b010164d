"""One strict parser for every way a user sets a value, driven by the dataclass field types.

Values reach a config from four places: ``--set key=value`` on a command line, papermill's
``-p/-r/-y`` (which arrive as Python values in a notebook's globals), YAML profiles and
``APPCONFIG__<FIELD>`` environment variables. All of them go through :func:`parse_value`:

* a **string** is parsed as the field's type (``"true"`` -> True, ``"9_10_10"`` -> (9, 10, 10));
* any **other value** is checked against the type (a YAML ``2.5`` for an int field is refused);
* a field's ``choices`` (or ``pattern``), kept in its dataclass metadata, are checked afterwards.

Rules: booleans accept only true/false/1/0/yes/no (any case); ints refuse 2.5 and "abc"; floats
refuse "abc", nan and inf; fixed-length tuples check their length and every element; ``None`` is
spelled none/null (or the empty string) for optional fields. A refused value is one
:class:`ConfigError` naming the key, the value and what is allowed.

Declare a field's choices where the field lives::

    loss: str = knob("L2", choices=lambda: sorted(PIXEL_LOSSES))
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
NONE_WORDS = ("none", "null", "")
_INT = re.compile(r"[+-]?\d+")


class ConfigError(ValueError):
    """A value that cannot be used: the message names the key, the value and what is allowed."""


class _Refused(Exception):
    """Internal: the value does not fit; ``args[0]`` says what would."""


# --- declaring fields ---------------------------------------------------------------------------

def knob(default: Any = dataclasses.MISSING, *, factory: Optional[Callable[[], Any]] = None,
         choices: Iterable[str] | Callable[[], Iterable[str]] | None = None, pattern: Optional[str] = None) -> Any:
    """A dataclass field whose string values must be one of ``choices`` (a list, or a function giving it
    lazily) or match the regular expression ``pattern``."""
    meta = {"choices": choices, "pattern": pattern}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Spec:
    """What the parser knows about one field: its type, and the choices or pattern of its strings."""

    name: str
    tp: Any
    choices: Iterable[str] | Callable[[], Iterable[str]] | None = None
    pattern: Optional[str] = None

    def allowed_words(self) -> Optional[list[str]]:
        """The choices as a list (calling a lazy one), or None."""
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)


@functools.lru_cache(maxsize=None)
def specs(cls: type) -> dict[str, Spec]:
    """``{field name: Spec}`` of a dataclass (type hints resolved, metadata read)."""
    hints = typing.get_type_hints(cls)
    return {f.name: Spec(f.name, hints[f.name], f.metadata.get("choices"), f.metadata.get("pattern"))
            for f in fields(cls) if f.init}


def borrow(source: type, *names: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` a dataclass whose fields ``names`` are ``source``'s own fields.

    Each borrowed field keeps the source's type, default and choices, so a knob has one home::

        @borrow(TrainConfig, "loss", "lr")
        class TrainingParams(ReportParams):
            full_epochs: int = 60
    """
    hints = typing.get_type_hints(source)
    by_name = {f.name: f for f in fields(source)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise TypeError(f"{source.__name__} has no field(s) {missing} to borrow")

    def wrap(cls: type) -> type:
        own = dict(cls.__dict__.get("__annotations__", {}))
        clash = sorted(set(own) & set(names))
        if clash:
            raise TypeError(f"{cls.__name__} declares {clash} itself and borrows them from {source.__name__}")
        for name in names:
            f = by_name[name]
            if f.default_factory is not dataclasses.MISSING:
                setattr(cls, name, field(default_factory=f.default_factory, metadata=f.metadata))
            else:
                setattr(cls, name, field(default=f.default, metadata=f.metadata))
        cls.__annotations__ = {**own, **{n: hints[n] for n in names}}  # own fields first, then the borrowed
        return dataclass(cls)

    return wrap


# --- one value ----------------------------------------------------------------------------------

def describe(tp: Any) -> str:
    """Human words for a type: ``an integer``, ``a tuple of 3 integers``, ``true/false/...``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or none" if type(None) in args else "")
    if tp is bool:
        return "a boolean (" + "/".join(TRUE_WORDS + FALSE_WORDS) + ")"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
    if tp is str:
        return "a string"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_plural(args[0])}"
        return f"a tuple of {len(args)} {_plural(args[0]) if len(set(args)) == 1 else 'values'}"
    if origin is list:
        return f"a list of {_plural(args[0] if args else Any)}"
    if origin is dict or tp is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(tp, describe(tp))


def _items(text: str, ints: bool) -> list[Any]:
    """A sequence written as a string: JSON ``[1, 2]``, ``[a, b]``, ``1,2`` or (ints) ``9_10_10``."""
    text = text.strip()
    if text[:1] in "[(" and text[-1:] in "])":
        try:
            value = json.loads("[" + text[1:-1] + "]")
            return list(value)
        except json.JSONDecodeError:
            text = text[1:-1]
    if not text:
        return []
    parts = re.split(r"[,_]" if ints and "," not in text else ",", text)
    return [p.strip().strip("'\"") for p in parts]


def _convert(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp``; raises _Refused on anything that does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    text = value.strip() if isinstance(value, str) else None
    if tp is Any:
        return value
    if tp is type(None):
        if value is None or (text is not None and text.lower() in NONE_WORDS):
            return None
        raise _Refused("none")
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (text is not None and text.lower() in NONE_WORDS)):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value)
            except _Refused:
                pass
        raise _Refused(describe(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if text is not None and text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise _Refused(describe(bool))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text is not None and _INT.fullmatch(text):
            return int(text)
        raise _Refused(describe(int))
    if tp is float:
        number: Any = value
        if text is not None:
            try:
                number = float(text)
            except ValueError:
                raise _Refused(describe(float)) from None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise _Refused(describe(float))
        return float(number)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Refused(describe(str))
    if origin in (tuple, list):
        return _convert_sequence(tp, origin, args, value, text)
    if origin is dict or tp is dict:
        if text is not None:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise _Refused("a JSON mapping such as {\"fc_dim\": 64}") from None
        if isinstance(value, dict):
            return dict(value)
        raise _Refused(describe(dict))
    # any other class (a nested dataclass such as a schedule): accept it, or JSON that its constructor reads
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    if text is not None:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise _Refused(f"{describe(tp)} (as JSON)") from None
    if isinstance(value, (dict, list, tuple)):
        return value
    raise _Refused(describe(tp))


def _convert_sequence(tp: Any, origin: Any, args: tuple, value: Any, text: Optional[str]) -> Any:
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        elements, fixed = [args[0]], None
    elif origin is tuple and args:
        elements, fixed = list(args), len(args)
    else:
        elements, fixed = [args[0] if args else Any], None
    ints = all(e is int for e in elements)
    if text is not None:
        value = _items(text, ints)
    if not isinstance(value, (list, tuple)):
        hint = ""
        if ints and isinstance(value, int) and not isinstance(value, bool):
            hint = ("; papermill -p and YAML read 9_10_10 as the number 91010: pass the value raw "
                    "(papermill -r KEY 9_10_10) or as a list (-y 'KEY: [9, 10, 10]')")
        raise _Refused(describe(tp) + hint)
    if fixed is not None and len(value) != fixed:
        raise _Refused(f"{describe(tp)} (got {len(value)})")
    out = []
    for i, item in enumerate(value):
        element = elements[i] if fixed is not None else elements[0]
        try:
            out.append(_convert(element, item))
        except _Refused:
            raise _Refused(f"{describe(tp)} (item {i}, {item!r}, is not {describe(element)})") from None
    return tuple(out) if origin is tuple else out


def _check_words(spec: Spec, parsed: Any) -> Optional[str]:
    """What the string value should have been, or None when it fits the choices/pattern."""
    if not isinstance(parsed, str):
        return None
    words = spec.allowed_words()
    if words is not None and parsed not in words:
        return f"one of {words}"
    if spec.pattern is not None and not re.fullmatch(spec.pattern, parsed):
        return f"a string matching {spec.pattern!r}"
    return None


def parse_value(key: str, value: Any, spec: Spec | Any, *, where: str = "") -> Any:
    """``value`` parsed (a string) or checked (anything else) as ``spec`` (a Spec or a bare type).

    ``where`` prefixes the error, e.g. ``"--set "`` or ``"params/quick.yaml: "``.
    """
    spec = spec if isinstance(spec, Spec) else Spec(key, spec)
    try:
        parsed = _convert(spec.tp, value)
    except _Refused as err:
        raise ConfigError(f"{where}{key}={value!r} is not {err.args[0]}") from None
    wrong = _check_words(spec, parsed)
    if wrong:
        others = [a for a in typing.get_args(spec.tp) if a not in (str, type(None))]  # e.g. bool in bool | str
        wrong = " or ".join([describe(a) for a in others] + [wrong])
        raise ConfigError(f"{where}{key}={value!r} is not {wrong}")
    return parsed


# --- many values --------------------------------------------------------------------------------

def parse_fields(cls: type, values: Mapping[str, Any], *, where: str = "",
                 ignore: Iterable[str] = ()) -> dict[str, Any]:
    """Every ``values`` entry parsed as the field of ``cls`` it names; names in ``ignore`` are skipped and
    any other unknown name is one ConfigError listing the known ones."""
    known, ignore = specs(cls), set(ignore)
    unknown = ", ".join(f"{where}{k}={values[k]!r}" for k in sorted(values) if k not in known and k not in ignore)
    if unknown:
        raise ConfigError(f"unknown key {unknown} for {cls.__name__}; known: {sorted(known)}")
    return {k: parse_value(k, v, known[k], where=where) for k, v in values.items() if k in known}


def normalise_fields(obj: Any) -> None:
    """Parse every field of a dataclass instance in place (for ``__post_init__``; frozen is fine)."""
    for name, spec in specs(type(obj)).items():
        value = getattr(obj, name)
        parsed = parse_value(name, value, spec, where=f"{type(obj).__name__}: ")
        if parsed is not value:
            object.__setattr__(obj, name, parsed)


def assignments(items: Sequence[str], flag: str = "--set") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; an item without ``=`` is a ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, raw = str(item).partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{flag} expects key=value; got {item!r}")
        out[key.strip()] = raw
    return out


def from_environ(prefix: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``{field: raw}`` of every ``<prefix><FIELD>`` variable (field lower-cased)."""
    return {k[len(prefix):].lower(): v for k, v in environ.items() if k.startswith(prefix)}


def plain(value: Any) -> Any:
    """A parsed value in JSON/YAML/papermill form: tuples become lists (recursively)."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value

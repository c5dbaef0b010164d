"""Property tests of the one parser: every field of every config, driven by its declared type.

For each field (TrainConfig, every notebook's parameters, ViTConfig), hypothesis draws values the type
allows and checks that both the value and the text a user would type for it (``--set k=v``,
papermill ``-r``, an environment variable) come back as the same value; then it draws values the type
refuses and checks that each is exactly one ConfigError naming the key and the value.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hnerv_lib.report.params import NOTEBOOK_PARAMS
from hnerv_lib.studies.tubelets.config import ViTConfig
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.utils.parse import FALSE_WORDS, NONE_WORDS, TRUE_WORDS, ConfigError, Spec, parse_value, specs

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _all_specs() -> list[Spec]:
    """One field per distinct (type, choices, pattern) among all configs: every field type, each once."""
    out: dict[tuple, Spec] = {}
    for cls in (TrainConfig, ViTConfig, *NOTEBOOK_PARAMS.values()):
        for spec in specs(cls).values():
            words = spec.allowed_words()
            out.setdefault((str(spec.tp), tuple(words) if words is not None else None, spec.pattern), spec)
    return list(out.values())


def _simple(tp: typing.Any) -> bool:
    """Types the strategies below cover (everything but nested dataclasses such as a schedule, and Any)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (bool, int, float, str, type(None), dict):
        return True
    if origin in (typing.Union, types.UnionType, tuple, list):
        return all(a is Ellipsis or _simple(a) for a in args)
    return False


SPECS = [s for s in _all_specs() if _simple(s.tp)]
IDS = [f"{s.name}:{s.tp}" for s in SPECS]

_SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


def _words(spec: Spec) -> list[str] | None:
    return spec.allowed_words()


def valid(tp: typing.Any, spec: Spec | None = None) -> st.SearchStrategy:
    """Values of ``tp`` the parser must accept (strings honour the field's choices or pattern)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([valid(a, spec) for a in args])
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-10**6, 10**6)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False, width=64)
    if tp is str:
        if spec is not None and _words(spec) is not None:
            return st.sampled_from(_words(spec))
        if spec is not None and spec.pattern is not None:
            return st.from_regex(spec.pattern, fullmatch=True)
        # a string that reads as itself: not a none-word, no surrounding space, not the other union member
        return _SAFE_TEXT.map(str.strip).filter(
            lambda t: t.lower() not in NONE_WORDS + TRUE_WORDS + FALSE_WORDS)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(valid(args[0]), max_size=5).map(tuple)
    if origin is tuple:
        return st.tuples(*[valid(a) for a in args])
    if origin is list:
        return st.lists(valid(args[0]), max_size=5)
    if tp is dict:
        return st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
    raise AssertionError(tp)


def as_text(value: typing.Any, tp: typing.Any, draw) -> str:
    """How a user might type ``value`` on a command line."""
    if value is None:
        return draw(st.sampled_from(["none", "null", "None", "NULL"]))
    if isinstance(value, bool):
        word = draw(st.sampled_from([w for w in TRUE_WORDS + FALSE_WORDS if (w in TRUE_WORDS) == value]))
        return draw(st.sampled_from([word, word.upper(), f" {word} "]))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value) and value:
        sep = draw(st.sampled_from(["_", ",", ", "]))
        return draw(st.sampled_from([sep.join(map(str, value)), json.dumps(list(value))]))
    return json.dumps(list(value))


def _same(a: typing.Any, b: typing.Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@SETTINGS
@given(data=st.data())
def test_valid_values_and_their_text_round_trip(spec, data):
    value = data.draw(valid(spec.tp, spec))
    assert _same(parse_value(spec.name, value, spec), value)
    text = as_text(value, spec.tp, data.draw)
    assert _same(parse_value(spec.name, text, spec), value), text


def invalid(spec: Spec) -> st.SearchStrategy | None:
    """Values the field's type refuses (None when every value is some member of a permissive union)."""
    tp = spec.tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    core = [a for a in args if a is not type(None)] if origin in (typing.Union, types.UnionType) else [tp]
    if str in core and _words(spec) is None and spec.pattern is None:
        return st.one_of(st.integers(), st.floats(allow_nan=False)) if core == [str] else None
    if core == [bool]:
        return st.one_of(_SAFE_TEXT.filter(lambda t: t.strip().lower() not in TRUE_WORDS + FALSE_WORDS + (
            NONE_WORDS if type(None) in args else ())), st.integers().filter(lambda i: i not in (0, 1)))
    if core == [int]:
        return st.one_of(st.floats().filter(lambda f: not f.is_integer() if math.isfinite(f) else True),
                         _SAFE_TEXT.filter(lambda t: not re.fullmatch(r"\s*[+-]?\d+\s*", t)
                                           and t.strip().lower() not in (NONE_WORDS if type(None) in args else ())))
    if core == [float]:
        def unreadable(t: str) -> bool:
            if type(None) in args and t.strip().lower() in NONE_WORDS:
                return False
            try:
                return not math.isfinite(float(t))
            except ValueError:
                return True
        return st.one_of(_SAFE_TEXT.filter(unreadable), st.sampled_from([math.nan, math.inf, -math.inf, True]))
    if core == [str] or (str in core and (_words(spec) is not None or spec.pattern is not None)):
        words, pattern = _words(spec), spec.pattern
        def wrong(t: str) -> bool:
            t2 = t.strip().lower()
            if bool in core and t2 in TRUE_WORDS + FALSE_WORDS or type(None) in args and t2 in NONE_WORDS:
                return False
            return (words is not None and t not in words) or (pattern is not None and not re.fullmatch(pattern, t))
        return _SAFE_TEXT.filter(wrong)
    if len(core) == 1 and typing.get_origin(core[0]) is tuple and Ellipsis not in typing.get_args(core[0]):
        n = len(typing.get_args(core[0]))
        return st.lists(st.integers(1, 9), max_size=6).filter(lambda v: len(v) != n)
    if len(core) == 1 and typing.get_origin(core[0]) in (list, tuple):
        return st.one_of(st.integers(), st.lists(st.just(object()), min_size=1, max_size=2))
    return None


INVALID = [(s, invalid(s)) for s in SPECS]
INVALID = [(s, strat) for s, strat in INVALID if strat is not None]


def test_every_field_type_has_invalid_values():
    missing = [s.name for s in SPECS if invalid(s) is None and s.tp not in (str, typing.Optional[str], dict)]
    assert missing == [], missing


@pytest.mark.parametrize("spec, strategy", INVALID, ids=[f"{s.name}:{s.tp}" for s, _ in INVALID])
@SETTINGS
@given(data=st.data())
def test_invalid_values_are_one_error_naming_key_and_value(spec, strategy, data):
    value = data.draw(strategy)
    with pytest.raises(ConfigError) as err:
        parse_value(spec.name, value, spec)
    message = str(err.value)
    assert message.startswith(f"{spec.name}={value!r} is not "), message

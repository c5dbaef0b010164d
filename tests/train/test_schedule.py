"""Exact-value checks for hnerv_lib.schedule against hand-computed multipliers."""

import json
import math

import pytest
import torch

from hnerv_lib.train.schedule import Cosine, Hybrid, parse_schedule, schedule_from_dict, set_lr


def test_cosine_default_is_hnerv_default():
    assert Cosine() == Cosine(warmup=0.1, power=1.0, floor=0.1)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0.0, 0.1),  # floor
        (0.05, 0.1 + 0.9 * 0.5),  # halfway through a linear warm-up
        (0.1, 1.0),  # end of warm-up
        (0.55, 0.5),  # half-way through the cosine: 0.5 * (1 + cos(pi / 2))
        (0.325, 0.5 * (1 + math.cos(math.pi / 4))),
        (1.0, 0.0),
    ],
)
def test_cosine_multiplier_values(progress, expected):
    assert Cosine().multiplier(progress) == pytest.approx(expected, abs=1e-12)


def test_cosine_endpoints_are_exact():
    schedule = Cosine()
    assert (schedule.multiplier(0.0), schedule.multiplier(0.1), schedule.multiplier(1.0)) == (0.1, 1.0, 0.0)


def test_cosine_warmup_power():
    assert Cosine(warmup=0.2, power=2.0, floor=0.0).multiplier(0.1) == pytest.approx(0.25, abs=1e-12)


def test_cosine_without_warmup_starts_at_one():
    assert Cosine(warmup=0.0).multiplier(0.0) == 1.0


@pytest.mark.parametrize(
    ("progress", "expected"),
    [(0.0, 0.0), (0.1, 0.25), (0.2, 1.0), (0.6, 1 - 0.9 * 0.5), (1.0, 0.1)],
)
def test_hybrid_multiplier_values(progress, expected):
    schedule = Hybrid(warmup=0.2, up_power=2.0, down_power=1.0, floor=0.0, final=0.1)
    assert schedule.multiplier(progress) == pytest.approx(expected, abs=1e-12)


def test_hybrid_down_power():
    schedule = Hybrid(warmup=0.0, up_power=1.0, down_power=2.0, floor=0.1, final=0.0)
    assert schedule.multiplier(0.5) == pytest.approx(0.75, abs=1e-12)
    assert (schedule.multiplier(0.0), schedule.multiplier(1.0)) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cosine_0.1_1_0.1", Cosine()),
        ("cosine_0.2_2_0", Cosine(warmup=0.2, power=2.0, floor=0.0)),
        ("hybrid_0.25_2_0.5_0.05_0.001", Hybrid(0.25, 2.0, 0.5, 0.05, 0.001)),
    ],
)
def test_legacy_round_trip(text, expected):
    assert parse_schedule(text) == expected
    assert expected.to_legacy() == text


@pytest.mark.parametrize("schedule", [Cosine(), Hybrid(0.25, 2.0, 0.5, 0.05, 0.001)])
def test_dict_round_trip_through_json(schedule):
    data = json.loads(json.dumps(schedule.to_dict()))
    assert data["kind"] == schedule.KIND
    assert schedule_from_dict(data) == schedule
    assert type(schedule).from_dict(data) == schedule


@pytest.mark.parametrize(
    ("factory", "fragment"),
    [
        (lambda: Cosine(warmup=1.0), r"warmup must be in \[0, 1\); got 1\.0"),
        (lambda: Cosine(warmup=-0.1), r"warmup.*-0\.1"),
        (lambda: Cosine(floor=1.5), r"floor must be in \[0, 1\]; got 1\.5"),
        (lambda: Cosine(power=0.0), r"power must be > 0; got 0\.0"),
        (lambda: Cosine(power=math.nan), r"power.*nan"),
        (lambda: Cosine(warmup="0.1"), r"warmup.*'0\.1'"),
        (lambda: Cosine(floor=True), r"floor.*True"),
        (lambda: Hybrid(0.1, 1.0, 1.0, 0.1, 2.0), r"final must be in \[0, 1\]; got 2\.0"),
        (lambda: Hybrid(0.1, 1.0, -1.0, 0.1, 0.0), r"down_power must be > 0; got -1\.0"),
    ],
)
def test_bad_fields_raise_naming_field_and_value(factory, fragment):
    with pytest.raises(ValueError, match=fragment):
        factory()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cosine_0.1_1", "cosine_0.1_1"),
        ("linear_0.1_1_0.1", "'linear'"),
        ("cosine_a_1_0.1", "cosine_a_1_0.1"),
        ("hybrid_0.1_1_1_0.1", "hybrid_0.1_1_1_0.1"),
    ],
)
def test_bad_legacy_strings_raise(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_schedule(text)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "step"}, "'step'"),
        ({"warmup": 0.1}, "kind"),
        ({"kind": "cosine", "warmpu": 0.1}, "warmpu"),
        ({"kind": "hybrid", "warmup": 0.1}, "missing fields.*final"),
    ],
)
def test_bad_dicts_raise(data, fragment):
    with pytest.raises(ValueError, match=fragment):
        schedule_from_dict(data)


@pytest.mark.parametrize("progress", [-0.01, 1.01, math.nan])
def test_progress_outside_unit_interval_raises(progress):
    with pytest.raises(ValueError, match="progress"):
        Cosine().multiplier(progress)


def test_set_lr_sets_every_group_and_returns_lr():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 5.0}], lr=1.0)
    lr = set_lr(optimizer, 0.01, Cosine(), 0.05)
    assert lr == pytest.approx(0.01 * 0.55, abs=1e-15)
    assert [group["lr"] for group in optimizer.param_groups] == [lr, lr]


def test_set_lr_rejects_bad_base_lr():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=r"base_lr must be > 0; got -1"):
        set_lr(optimizer, -1, Cosine(), 0.5)

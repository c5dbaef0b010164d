from dataclasses import replace

import pytest
import torch

from hnerv_lib.train import speed as S
from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.speed import EpochSpeed, measure_epoch_speed
from hnerv_lib.utils.timing import Timing


def _cfg(name, **kw):
    return replace(get_train_preset(name), **{"precision": "fp32", "channels_last": False, **kw})


@pytest.mark.parametrize("name", ["hnerv-tiny", "patch-tiny"])
def test_both_epoch_kinds_are_timed_alone_and_leave_the_random_state(smoke_cache, name):
    cfg = _cfg(name, epochs=6, clip_warmup_epochs=2)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    speed = measure_epoch_speed(cfg, smoke_cache, repeats=3, warmup=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert len(speed.clip.runs_s) == 3 and len(speed.pixel.runs_s) == 3 and speed.clip.warmup == 1
    assert speed.pixel is not speed.clip  # a warm-up epoch (no CLIP head) is timed on its own
    assert speed.threads == torch.get_num_threads() and speed.precision == "fp32" and not speed.channels_last
    assert speed.s_per_epoch == speed.clip.median_s > 0
    assert speed.clip.q1_s <= speed.s_per_epoch <= speed.clip.q3_s
    assert "s/epoch" in speed.describe() and set(speed.to_dict()) >= {"clip", "pixel", "threads"}


def test_without_a_clip_loss_one_kind_is_timed(smoke_cache):
    speed = measure_epoch_speed(_cfg("hnerv-tiny", epochs=4, clip_weight=0.0), smoke_cache, repeats=2, warmup=0)
    assert speed.pixel is speed.clip and speed.clip.warmup == 0


def test_a_schedule_costs_its_pixel_epochs_then_its_clip_epochs():
    speed = EpochSpeed(clip=Timing.of([2.0, 2.0]), pixel=Timing.of([0.5]), threads=2, precision="fp32",
                       channels_last=False)
    cfg = _cfg("hnerv-tiny", epochs=5, clip_warmup_epochs=2)
    assert speed.epoch_seconds(cfg) == [0.5, 0.5, 2.0, 2.0, 2.0]
    assert speed.epoch_seconds(cfg, 3) == [0.5, 0.5, 2.0]
    assert speed.train_s(cfg) == pytest.approx(7.0)
    assert speed.train_s(replace(cfg, epochs=8)) == pytest.approx(13.0)


def test_compared_configurations_are_timed_round_robin(smoke_cache, monkeypatch):
    """Notebook 05 reads the ratio of two designs' speeds: their epochs alternate, warm-up first, so a
    change in the machine's speed during the measurement hits both alike."""
    calls = []
    monkeypatch.setattr(S, "run_epoch", lambda s, model, opt, epoch: calls.append((s.cfg.model, epoch)) or {})
    cfgs = {"full": _cfg("hnerv-tiny", epochs=6, clip_warmup_epochs=2),
            "patch": _cfg("patch-tiny", epochs=6, clip_warmup_epochs=0)}
    speeds = S.measure_epoch_speeds(cfgs, smoke_cache, repeats=3, warmup=1)
    one_round = [("hnerv-tiny", 2), ("hnerv-tiny", 0), ("patch-tiny", 0)]  # full: CLIP epoch, warm-up epoch; patch: CLIP only
    assert calls == one_round * 4  # the warm-up round, then 3 timed rounds
    assert len(speeds["full"].clip.runs_s) == len(speeds["full"].pixel.runs_s) == 3
    assert speeds["patch"].pixel is speeds["patch"].clip and speeds["patch"].clip.warmup == 1
    with pytest.raises(ValueError, match="repeats must be an int >= 1; got 0"):
        S.measure_epoch_speeds(cfgs, smoke_cache, repeats=0)

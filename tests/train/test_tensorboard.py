"""tensorboard: true writes per-epoch scalars to the run's tb/ folder (the optional extra; in the dev extra)."""

from dataclasses import replace

import pytest

from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.run import Run
from hnerv_lib.train.trainer import BOARD_TAGS, train

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="tensorboard is an optional extra (pip install -e '.[tensorboard]'); the dev extra installs it")


def test_event_file_holds_the_expected_scalars_per_epoch(tmp_path, smoke_cache):
    cfg = replace(get_train_preset("hnerv-tiny"), precision="fp32", channels_last=False, epochs=3, eval_every=2,
                  tensorboard=True)
    assert cfg.run_id() == replace(cfg, tensorboard=False).run_id()  # monitoring is not part of the run
    run = Run(tmp_path / "r")
    train(cfg, run.dir, cache_dir=smoke_cache, progress=False)
    assert list(run.tensorboard_dir.glob("events.out.tfevents.*"))
    acc = event_accumulator.EventAccumulator(str(run.tensorboard_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss/total", "loss/pixel", "lr", "psnr/train", "psnr/val", "clip/train"} <= tags <= set(BOARD_TAGS.values())
    assert [e.step for e in acc.Scalars("loss/total")] == [1, 2, 3]
    assert [e.step for e in acc.Scalars("psnr/train")] == [2, 3]  # evaluated every 2 epochs and after the last
    metrics = run.metrics()
    assert [e.value for e in acc.Scalars("lr")] == pytest.approx(metrics["lr"].tolist())

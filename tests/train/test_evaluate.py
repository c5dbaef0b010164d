"""python -m hnerv_lib.evaluate: a finished run or its compressed file, scored from the shell."""

from dataclasses import replace

import pandas as pd
import pytest

from hnerv_lib.evaluate import main
from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.trainer import train
from hnerv_lib.utils.cli import DEBUG_ENV


@pytest.mark.parametrize("preset", ["hnerv-tiny", "patch-tiny"])
def test_evaluate_a_run_and_its_file_dump_frames_and_refuse_an_unfinished_run(tmp_path, smoke_cache, capsys,
                                                                              monkeypatch, preset):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    cfg = replace(get_train_preset(preset), precision="fp32", channels_last=False, epochs=2, eval_every=2, compress=True)
    run_dir = tmp_path / "r"
    summary = train(cfg, run_dir, cache_dir=smoke_cache, progress=False)
    common = ["--cache-dir", str(smoke_cache)]
    assert main([str(run_dir), *common, "--dump-images", str(tmp_path / "png"), "--dump-video", str(tmp_path / "v.mp4")]) == 0
    out = capsys.readouterr().out
    assert "clip_centred" in out and "per-frame table" in out
    per_frame = pd.read_csv(run_dir / "evaluation_model.csv")
    assert set(per_frame["split"]) == {"train", "val"} and len(per_frame) == 12
    assert per_frame.loc[per_frame.split == "train", "psnr"].mean() == pytest.approx(summary["psnr_train"], abs=1e-4)
    assert len(list((tmp_path / "png").glob("frame_*.png"))) == 12 and (tmp_path / "v.mp4").stat().st_size > 0

    hnerv = next(run_dir.glob("*.hnerv"))
    assert main([str(hnerv), *common, "--frames", "val", "--dump-images", str(tmp_path / "val")]) == 0
    file_frames = pd.read_csv(run_dir / f"evaluation_{hnerv.stem}.csv")
    assert set(file_frames["split"]) == {"val"} and len(list((tmp_path / "val").iterdir())) == len(file_frames)
    assert file_frames["psnr"].mean() == pytest.approx(summary["psnr_val"], abs=0.5)  # 8-bit weights: close
    capsys.readouterr()

    unfinished = tmp_path / "u"
    train(cfg, unfinished, cache_dir=smoke_cache, stop_after=1, progress=False)
    assert main([str(unfinished), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has not finished (status: started)" in err
    assert main([str(run_dir), *common, "--dump-video", str(tmp_path / "v.avi")]) == 2  # refused before any work
    assert "writes an .mp4 file" in capsys.readouterr().err

import pytest

from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.run import Run
from hnerv_lib.train.sweep import failures, run_sweep, variant


def _fake_train(calls, fail_before_dir=False):
    def train(cfg, run_dir, cache_dir=None, progress=False):
        calls.append(cfg.clip_weight)
        if cfg.clip_weight == 0.5 and fail_before_dir:
            raise ValueError("refused before the directory existed")
        Run(run_dir).begin(cfg)
        if cfg.clip_weight == 0.5:
            raise RuntimeError("diverged on purpose")
        summary = {"psnr_train": 20 + cfg.clip_weight, "run_id": cfg.run_id()}
        Run(run_dir).save_summary(summary)
        return summary
    return train


VARIANTS = [variant("clip_weight", w, clip_weight=w) for w in (0.0, 0.2, 0.5, 1.0)]


def test_failure_is_recorded_and_the_sweep_goes_on(tmp_path):
    calls = []
    res = run_sweep(get_train_preset("hnerv-tiny"), VARIANTS, tmp_path, train_fn=_fake_train(calls), progress=False)
    assert calls == [0.0, 0.2, 0.5, 1.0]
    assert res.set_index("label")["status"].to_dict() == {"0.0": "trained", "0.2": "trained", "0.5": "failed", "1.0": "trained"}
    bad = failures(res)
    assert bad["label"].tolist() == ["0.5"] and "diverged on purpose" in bad["error"].iloc[0]
    failed = Run.at(tmp_path, bad["run_id"].iloc[0])
    err = failed.error()
    assert "Traceback" in err["traceback"] and err["config"]["clip_weight"] == 0.5
    assert failed.failed and failed.status == "failed" and not failed.finished


def test_a_failure_before_the_directory_leaves_nothing_on_disk(tmp_path):
    res = run_sweep(get_train_preset("hnerv-tiny"), VARIANTS, tmp_path, train_fn=_fake_train([], fail_before_dir=True),
                    progress=False)
    bad = failures(res)
    assert "refused before" in bad["error"].iloc[0]
    assert not Run.at(tmp_path, bad["run_id"].iloc[0]).exists


def test_finished_runs_are_reused_and_failed_ones_retried(tmp_path):
    calls = []
    run_sweep(get_train_preset("hnerv-tiny"), VARIANTS, tmp_path, train_fn=_fake_train(calls), progress=False)
    calls.clear()
    res = run_sweep(get_train_preset("hnerv-tiny"), VARIANTS, tmp_path, train_fn=_fake_train(calls), progress=False)
    assert calls == [0.5]  # only the failed configuration runs again
    assert (res["status"] == "reused").sum() == 3


def test_model_field_variants():
    cfg = variant("size", "wide", model__fc_dim=32).apply(get_train_preset("hnerv-tiny"))
    assert cfg.model_config().fc_dim == 32

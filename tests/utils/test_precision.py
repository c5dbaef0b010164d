"""``precision: auto``: a measured choice per machine, cached, recorded, and part of a run's identity."""

import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace

import pytest
import torch

from hnerv_lib import bench
from hnerv_lib.report import runner
from hnerv_lib.report.summary import provenance_rows
from hnerv_lib.utils.parse import ConfigError
from hnerv_lib.report.params import FullFrameParams, from_namespace, load_profile
from hnerv_lib.train.config import TrainConfig, apply_overrides, get_train_preset
from hnerv_lib.train.trainer import train
from hnerv_lib.utils import precision as P

FAST_BF16 = {"fp32": 100.0, "fp32+CL": 98.0, "bf16": 60.0, "bf16+CL": 50.0}  # a CPU with bf16 units
SLOW_BF16 = {"fp32": 20.0, "fp32+CL": 24.0, "bf16": 250.0, "bf16+CL": 255.0}  # AVX2 kernels only


@pytest.fixture
def fresh_memo():
    P.forget_memo()
    yield
    P.forget_memo()


@pytest.mark.parametrize("times, expected", [(FAST_BF16, ("bf16", True)), (SLOW_BF16, ("fp32", False))])
def test_choose_takes_the_faster_setting(times, expected):
    hw = P.choose(times)
    assert (hw.precision, hw.channels_last) == expected
    assert hw.reason.startswith("probe: fp32 ") and hw.reason.endswith(P.Resolved(*expected, "").label())


def test_choose_needs_the_margin_and_respects_fixed_parts():
    close = {"fp32": 100.0, "fp32+CL": 97.0, "bf16": 97.0, "bf16+CL": 96.0}  # all within 5 %: stay fp32
    assert P.choose(close).label() == "fp32"
    assert P.choose(FAST_BF16, precision="fp32").label() == "fp32"  # +CL is only 2 % faster
    assert P.choose(FAST_BF16, channels_last=False).label() == "bf16"
    assert P.choose(SLOW_BF16, precision="bf16").label() == "bf16"  # asked for: given, however slow
    assert P.resolve("bf16", True).reason == "set explicitly"


def test_non_cpu_devices_need_no_probe(monkeypatch):
    monkeypatch.setattr(P, "measure_cpu", lambda *a, **k: pytest.fail("probed for a non-CPU device"))
    hw = P.resolve("auto", "auto", "meta")
    assert (hw.precision, hw.channels_last) == ("fp32", False) and "no probe" in hw.reason
    if not torch.cuda.is_available():
        assert P.resolve("auto", "auto", "cuda").precision == "fp32"


def test_probe_is_cached_per_machine_and_reused(tmp_path, fresh_memo, monkeypatch):
    monkeypatch.setenv(P.PROBE_DIR_ENV, str(tmp_path))
    first = P.probe_cpu()
    assert set(first) == {"fp32", "fp32+CL", "bf16", "bf16+CL"} and all(v > 0 for v in first.values())
    (path,) = tmp_path.glob("*.json")
    stored = json.loads(path.read_text())
    assert stored["key"]["cpu"] == P.cpu_model() and "ONEDNN_MAX_CPU_ISA" in stored["key"]
    P.forget_memo()  # a new process: only the file is left
    monkeypatch.setattr(P, "measure_cpu", lambda *a, **k: pytest.fail("measured again despite the cache"))
    assert P.probe_cpu() == first
    # another kernel cap is another machine: a new file
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setattr(P, "measure_cpu", lambda *a, **k: SLOW_BF16)
    assert P.probe_cpu() == SLOW_BF16 and len(list(tmp_path.glob("*.json"))) == 2


def test_one_probe_per_machine_whatever_the_working_directory(tmp_path, fresh_memo, monkeypatch):
    """A run id (computed in the notebook's folder) and the run's own setup (a job, another folder, another
    ``cache_dir``) read one probe file: two probes of a close call may disagree, and then ids would not match."""
    monkeypatch.delenv(P.PROBE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert P.probe_dir() == tmp_path / "xdg" / "hnerv-clip" / "precision"
    probes = iter([{"fp32": 10.0, "fp32+CL": 9.0, "bf16": 90.0, "bf16+CL": 90.0},  # channels_last wins by 10 %
                   {"fp32": 10.0, "fp32+CL": 10.0, "bf16": 90.0, "bf16+CL": 90.0}])  # a second probe: a tie
    monkeypatch.setattr(P, "measure_cpu", lambda *a, **k: next(probes))
    cfg = get_train_preset("hnerv-tiny")  # precision and channels_last "auto"
    ids = []
    for folder in ("notebooks", "job"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        P.forget_memo()  # each its own process
        ids.append((cfg.run_id(), cfg.resolved().channels_last))
    assert ids[0] == ids[1] and ids[0][1] is True
    assert len(list(P.probe_dir().glob("*.json"))) == 1 and not list(tmp_path.glob("*/data"))


def test_damaged_cache_file_is_measured_again(tmp_path, fresh_memo, monkeypatch):
    monkeypatch.setenv(P.PROBE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(P, "measure_cpu", lambda *a, **k: FAST_BF16)
    P.probe_cpu()
    (path,) = tmp_path.glob("*.json")
    path.write_text("{not json")
    P.forget_memo()
    assert P.probe_cpu() == FAST_BF16 and json.loads(path.read_text())["ms"] == FAST_BF16


def test_auto_picks_fp32_under_avx2_kernels(tmp_path):
    """The case this exists for: bf16 units capped away (as on an AVX2-only CPU) -> fp32, with the reason."""
    code = ("import json; from hnerv_lib.utils.precision import resolve, describe; "
            "print(json.dumps(describe(resolve('auto', 'auto', 'cpu'))))")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", P.PROBE_DIR_ENV: str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    hw = json.loads(out.stdout.strip().splitlines()[-1])
    assert hw["precision"] == "fp32", hw
    ms = dict(part.rsplit(" ", 2)[:2] for part in hw["reason"][len("probe: "):].split(" -> ")[0].split(", "))
    assert float(ms["bf16"]) > float(ms["fp32"]), hw["reason"]


@pytest.mark.parametrize("bad, error, message", [
    ("fp16", P.PrecisionError, "precision must be one of auto, fp32, bf16"),
    ("maybe", P.PrecisionError, "precision must be one of auto, fp32, bf16"),
    (True, ConfigError, "precision=True is not a string"),  # the one parser (utils/parse.py) sees the type first
    (None, ConfigError, "precision=None is not a string")])
def test_bad_precision_is_one_clear_error(bad, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(precision=bad)
    with pytest.raises(ConfigError, match=r"channels_last='sometimes' is not a boolean \(.*\) or one of \['auto'\]"):
        TrainConfig(channels_last="sometimes")
    with pytest.raises(P.PrecisionError, match="'fp16'"):
        apply_overrides(TrainConfig(), ["precision=fp16"])
    with pytest.raises(P.PrecisionError, match="precision must be one of"):
        from_namespace(FullFrameParams, {"precision": "maybe"})


def test_legacy_bf16_maps_to_precision_with_a_warning(tmp_path):
    with pytest.warns(FutureWarning, match="bf16: true is deprecated; use precision: bf16"):
        assert TrainConfig.from_dict({"bf16": True}).precision == "bf16"
    with pytest.warns(FutureWarning, match="precision: fp32"):
        assert apply_overrides(TrainConfig(), ["bf16=false"]).precision == "fp32"
    with pytest.warns(FutureWarning):
        assert from_namespace(FullFrameParams, {"bf16": True}).train_config("full").precision == "bf16"
    with pytest.raises(ValueError, match="contradicts"):
        TrainConfig.from_dict({"bf16": True, "precision": "fp32"})
    (tmp_path / "old.yaml").write_text("bf16: true\nchannels_last: true\n")
    assert load_profile(str(tmp_path / "old.yaml")) == {"bf16": True, "channels_last": True}  # still a known key
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TrainConfig.from_dict(TrainConfig().to_dict())  # the new key alone warns about nothing


def test_shipped_profiles_use_auto():
    for profile in ("smoke", "quick", "cpu", "paper"):
        params = load_profile(profile)
        assert params.get("precision") == "auto" and params.get("channels_last") == "auto" and "bf16" not in params


def test_run_identity_uses_the_resolved_precision(fresh_memo, monkeypatch):
    cfg = get_train_preset("hnerv-tiny")  # precision auto, channels_last auto
    monkeypatch.setattr(P, "measure_cpu", lambda *a, **k: FAST_BF16)
    monkeypatch.setattr(P, "probe_cpu", lambda *a, **k: FAST_BF16)
    assert cfg.resolved() == replace(cfg, precision="bf16", channels_last=True)
    assert cfg.run_id() == replace(cfg, precision="bf16", channels_last=True).run_id()
    monkeypatch.setattr(P, "probe_cpu", lambda *a, **k: SLOW_BF16)  # the same config on an AVX2 machine
    assert cfg.run_id() == replace(cfg, precision="fp32", channels_last=False).run_id()
    assert cfg.run_id() != replace(cfg, precision="bf16", channels_last=True).run_id()


def test_a_run_records_its_choice_and_reason(tmp_path, smoke_cache, fresh_memo, monkeypatch):
    monkeypatch.setattr(P, "probe_cpu", lambda *a, **k: SLOW_BF16)
    cfg = replace(get_train_preset("hnerv-tiny"), epochs=1)
    summary = train(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    assert (summary["precision"], summary["channels_last"]) == ("fp32", False)
    assert summary["precision_reason"] == P.choose(SLOW_BF16).reason
    stored = json.loads((tmp_path / "config.json").read_text())
    assert (stored["precision"], stored["channels_last"]) == ("fp32", False)  # what ran, not "auto"


def test_bench_json_reports_the_precision(smoke_cache, fresh_memo, monkeypatch):
    monkeypatch.setattr(P, "probe_cpu", lambda *a, **k: FAST_BF16)
    out = bench.bench_train("full", "smoke", epochs=1, cache_dir=smoke_cache)
    assert (out["precision_asked"], out["precision"], out["channels_last"]) == ("auto", "bf16", True)
    assert out["precision_reason"].startswith("probe: ") and out["ms_per_step"] > 0


def test_report_provenance_states_the_precision(tmp_path, fresh_memo, monkeypatch):
    monkeypatch.setattr(P, "probe_cpu", lambda *a, **k: SLOW_BF16)
    hw = runner.hardware({"precision": "auto", "channels_last": "auto", "device": "cpu"})
    assert (hw["precision"], hw["channels_last"], hw["asked"]) == ("fp32", False, "precision=auto, channels_last=auto")
    row = [r for r in provenance_rows({"hardware": hw}) if r.startswith("| training precision")]
    assert row == [f"| training precision | fp32 (asked: precision=auto, channels_last=auto; {hw['reason']}) |"]
    with pytest.warns(FutureWarning):
        assert runner.hardware({"bf16": True, "channels_last": True})["reason"] == "set explicitly"


def test_bench_precision_times_every_setting_of_a_profile(smoke_cache, fresh_memo, monkeypatch):
    monkeypatch.setattr(P, "probe_cpu", lambda *a, **k: SLOW_BF16)
    out = bench.bench_precision("smoke", steps=1, warmup=0, cache_dir=smoke_cache)
    assert [r["family"] for r in out["rows"]] == ["full", "patch"]
    for row in out["rows"]:
        assert set(row["ms_per_step"]) == set(bench.SETTINGS) and all(v > 0 for v in row["ms_per_step"].values())
        assert row["auto"] == "fp32" and row["fastest"] in bench.SETTINGS and row["auto_vs_fastest_pct"] >= 0

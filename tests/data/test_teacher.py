"""Any open_clip teacher: a local weights file, an hf-hub name from an offline cache, and one clear
error per bad value, raised before any frame is decoded. A tiny registered architecture keeps it fast;
the loading code is open_clip's own (only the cache location is pointed at a temporary folder)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import open_clip
import pytest
import torch
from huggingface_hub import constants as hf_constants

from hnerv_lib.data import targets as ct
from hnerv_lib.data import teacher as tt
from hnerv_lib.data.geometry import Grid
from hnerv_lib.data.video import Video
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.utils.parse import ConfigError

TINY = "hnerv-test-tiny-clip"  # a 1-layer ViT/text tower registered for these tests only
TINY_CFG = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
GRID = Grid(2, 2)


@pytest.fixture(scope="module", autouse=True)
def tiny_architecture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model_configs")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(folder)
    yield
    open_clip.factory._MODEL_CONFIG_PATHS.remove(folder)
    open_clip.factory._rescan_model_configs()


@pytest.fixture(scope="module")
def video() -> Video:
    gen = torch.Generator().manual_seed(1)
    return Video(frames=torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=gen), key="tiny", meta={})


@pytest.fixture(scope="module")
def random_teacher() -> tt.Teacher:
    return tt.load_teacher(tt.TeacherSpec(TINY, None, seed=3))


def save_weights(model: torch.nn.Module, path: Path, scale: float = 1.0) -> Path:
    state = {k: v * scale if v.is_floating_point() else v for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def embed(teacher: tt.Teacher, video: Video) -> torch.Tensor:
    return ct.embed_windows(teacher, video.frames, GRID.windows(video.frame_hw), progress=False)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_saved_state_dict_loads_as_the_teacher_and_gives_identical_targets(tmp_path, video, random_teacher, suffix):
    path = save_weights(random_teacher.model, tmp_path / f"teacher{suffix}")
    teacher = tt.load_teacher(tt.TeacherSpec(TINY, str(path)))
    assert torch.equal(embed(teacher, video), embed(random_teacher, video))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert teacher.identity["weights"] == {"file": path.name, "sha256": sha}
    assert not teacher.identity["random_init"] and teacher.identity["pretrained"] == path.name
    assert teacher.describe() == f"{TINY} / {path.name} (sha256 {sha})"


def test_the_cache_key_follows_the_file_contents_not_its_path(tmp_path, video, random_teacher):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = save_weights(random_teacher.model, tmp_path / "a" / "w.pt")
    other = save_weights(random_teacher.model, tmp_path / "b" / "w.pt", scale=0.5)
    keys = {name: ct.targets_key(video, GRID, tt.TeacherSpec(TINY, str(p))) for name, p in [("a", first), ("b", other)]}
    assert keys["a"] != keys["b"]  # same basename, different contents
    assert keys["a"] != ct.targets_key(video, GRID, tt.TeacherSpec(TINY, None, seed=3))
    cache = tmp_path / "cache"
    got = ct.clip_targets(video, GRID, tt.TeacherSpec(TINY, str(first)), cache_dir=cache, progress=False)
    assert got.key == keys["a"] and got.teacher["weights"]["file"] == "w.pt"
    assert torch.equal(got.emb, embed(random_teacher, video))
    cfg = TrainConfig(teacher_model=TINY, teacher_pretrained=str(first))
    assert cfg.run_id() != TrainConfig(teacher_model=TINY, teacher_pretrained=str(other)).run_id()


def make_hub_cache(root: Path, repo: str, model: torch.nn.Module, weights_name: str) -> Path:
    """The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<commit>/<files>}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    (snapshot / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    save_weights(model, snapshot / weights_name)
    return snapshot / weights_name


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(tt, "_reachable", lambda host: pytest.fail("an offline cache hit must not probe the network"))
    return tmp_path / "hub"


def test_an_hf_hub_name_loads_offline_from_the_local_cache(offline_hub, video, random_teacher):
    weights = make_hub_cache(offline_hub, "someorg/tiny-clip", random_teacher.model, "open_clip_model.safetensors")
    spec = tt.TeacherSpec("hf-hub:someorg/tiny-clip", None)
    tt.check_teacher(spec)
    teacher = tt.load_teacher(spec)
    assert torch.equal(embed(teacher, video), embed(random_teacher, video))
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    assert teacher.identity["weights"] == {"file": "open_clip_model.safetensors", "sha256": sha}
    assert teacher.describe() == f"hf-hub:someorg/tiny-clip / open_clip_model.safetensors (sha256 {sha})"
    assert teacher.embed_dim == 16 and tt.encode_text(teacher, ["a rabbit"]).shape == (1, 16)


def test_a_local_dir_name_loads_its_folder(tmp_path, video, random_teacher):
    folder = tmp_path / "my-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    save_weights(random_teacher.model, folder / "open_clip_pytorch_model.bin")
    teacher = tt.load_teacher(tt.TeacherSpec(f"local-dir:{folder}", None))
    assert torch.equal(embed(teacher, video), embed(random_teacher, video))
    assert teacher.identity["weights"]["file"] == "open_clip_pytorch_model.bin"
    with pytest.raises(ValueError, match="not a folder holding open_clip_config.json"):
        tt.TeacherSpec(f"local-dir:{tmp_path / 'elsewhere'}", None)


def test_an_hf_hub_name_missing_from_the_cache_while_offline_is_one_clear_error(offline_hub):
    with pytest.raises(tt.WeightsUnavailableError, match="not in the local Hugging Face cache") as info:
        tt.check_teacher(tt.TeacherSpec("hf-hub:someorg/not-cached", None))
    assert "HF_HUB_OFFLINE" in str(info.value) and "huggingface-cli download someorg/not-cached" in str(info.value)


@pytest.mark.parametrize("model, pretrained, message", [
    ("ViT-B-33", None, r"unknown open_clip model 'ViT-B-33' \(did you mean \['ViT-B-32'"),
    ("ViT-B-32", "no-such-tag", "neither an open_clip tag for ViT-B-32 nor a file"),
    ("ViT-B-32", "/no/such/weights.pt", "file '/no/such/weights.pt' does not exist"),
    ("hf-hub:just-a-name", None, "hf-hub:<org>/<repo>"),
    ("hf-hub:org/repo", "openai", "brings its own weights"),
])
def test_bad_names_are_one_value_error_each(model, pretrained, message):
    with pytest.raises(ValueError, match=message):
        tt.TeacherSpec(model, pretrained)


def test_none_is_an_explicit_random_init():
    spec = tt.TeacherSpec("ViT-B-32", "none")
    assert spec.pretrained is None and spec.source == "random"
    assert TrainConfig.from_dict({**TrainConfig().to_dict(), "teacher_pretrained": "none"}).teacher_pretrained is None
    assert tt.identity(spec)["random_init"] and tt.identity(spec)["weights"] is None


def test_a_file_for_another_architecture_is_refused_naming_it(tmp_path, random_teacher):
    path = save_weights(random_teacher.model, tmp_path / "tiny.pt")
    with pytest.raises(ValueError, match=r"does not hold ViT-B-32 weights .*teacher_model the file was trained as"):
        tt.check_teacher(tt.TeacherSpec("ViT-B-32", str(path)))


def test_bad_teachers_fail_before_any_frame_is_decoded(tmp_path, monkeypatch, random_teacher):
    from hnerv_lib.train import setup, trainer

    monkeypatch.setattr(setup, "load_video", lambda *a, **k: pytest.fail("a frame was decoded"))
    wrong = save_weights(random_teacher.model, tmp_path / "tiny.pt")
    for bad in [dict(teacher_pretrained=str(wrong)), dict(teacher_pretrained=str(tmp_path / "missing.pt"))]:
        with pytest.raises((ValueError, ConfigError)):
            trainer.train(TrainConfig(epochs=1, **bad), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
        assert not (tmp_path / "run").exists()


def test_a_report_or_a_training_run_with_a_missing_weights_file_writes_nothing(tmp_path, capsys):
    from hnerv_lib.report.runner import main as report
    from hnerv_lib.train.cli import main as train_cli

    missing = tmp_path / "missing.safetensors"
    rc = report(["--profile", "smoke", "--only", "00", "-p", f"teacher_pretrained={missing}",
                 "--reports-root", str(tmp_path / "reports"), "--no-html"])
    assert rc == 2 and not (tmp_path / "reports").exists()
    assert f"teacher_pretrained file '{missing}' does not exist" in capsys.readouterr().err
    rc = train_cli(["--set", f"teacher_pretrained={missing}", "--run-root", str(tmp_path / "runs")])
    assert rc == 2 and not (tmp_path / "runs").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err

from dataclasses import fields

import pytest

from hnerv_lib.report.params import DataPrepParams, from_namespace, known_keys, load_profile
from hnerv_lib.utils.parse import ConfigError

PROFILES = ["smoke", "quick", "cpu", "paper"]


def test_namespace_to_dataclass_ignores_ipython_and_imports():
    ns = {"In": [], "Out": {}, "get_ipython": print, "_": 1, "pd": pytest, "from_namespace": from_namespace,
          "size": [32, 64], "every": 11, "teacher_pretrained": None, "window_frac": 1}
    p = from_namespace(DataPrepParams, ns)
    assert p.size == (32, 64) and p.every == 11 and p.teacher_pretrained is None and p.window_frac == 1


def test_unknown_parameter_fails_with_its_name():
    with pytest.raises(ValueError, match=r"unknown key epochz=3 for DataPrepParams"):
        from_namespace(DataPrepParams, {"epochz": 3})


@pytest.mark.parametrize("name, value", [("every", "2.5"), ("every", 2.5), ("every", True), ("size", [32, "6x"]),
                                         ("size", [32, 64, 1]), ("grid", "2x4"), ("window_frac", "half"), ("video", 3)])
def test_mistyped_parameter_fails(name, value):
    with pytest.raises(ConfigError, match=f"^{name}="):
        from_namespace(DataPrepParams, {name: value})


def test_raw_strings_from_papermill_r_are_parsed_as_the_field_type():
    p = from_namespace(DataPrepParams, {"every": "2", "size": "[32, 64]", "teacher_pretrained": "none",
                                        "window_frac": "0.25"})
    assert (p.every, p.size, p.teacher_pretrained, p.window_frac) == (2, (32, 64), None, 0.25)


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_load_and_validate(profile):
    values = load_profile(profile)
    assert values["profile"] == profile and set(values) <= known_keys()
    p = from_namespace(DataPrepParams, values)
    p.video_spec(), p.geometry(), p.split_rule(), p.teacher_spec(), p.sliding()  # each builds without error


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_models_fit_their_frames_and_grid(profile):
    """Every training family's model matches the profile's frame size and grid (checked without data)."""
    from hnerv_lib.report.params import FullFrameParams

    from_namespace(FullFrameParams, load_profile(profile))


@pytest.mark.parametrize("values, match", [
    ({"size": [32, 48]}, r"'hnerv-tiny' outputs 32x64 frames but size is 32x48"),
    ({"grid": [2, 2]}, r"'patch-tiny' outputs 16x16 patches but grid 2x2 cuts 16x32 patches"),
])
def test_training_params_refuse_a_model_that_cannot_fit(values, match):
    from hnerv_lib.report.params import FullFrameParams

    with pytest.raises(ValueError, match=match):
        from_namespace(FullFrameParams, {**load_profile("smoke"), **values})


def test_smoke_profile_uses_an_explicit_random_init_teacher():
    assert load_profile("smoke")["teacher_pretrained"] is None


def test_missing_profile_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"profile 'nope' not found .*available: \['cpu', 'paper', 'quick', 'smoke'\]"):
        load_profile("nope")


def test_one_home_per_knob():
    """A name shared with TrainConfig has TrainConfig's type, default and choices; a name has one type everywhere."""
    import typing
    from dataclasses import MISSING

    from hnerv_lib.report.params import NOTEBOOK_PARAMS
    from hnerv_lib.train.config import TrainConfig

    train = {f.name: f for f in fields(TrainConfig)}
    train_hints = typing.get_type_hints(TrainConfig)
    seen: dict[str, object] = {}
    for cls in NOTEBOOK_PARAMS.values():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            assert seen.setdefault(f.name, hints[f.name]) == hints[f.name], f"{f.name} has two types"
            if f.name in train:
                t = train[f.name]
                assert hints[f.name] == train_hints[f.name], f"{cls.__name__}.{f.name}: type differs from TrainConfig"
                assert (f.default, f.default_factory) == (t.default, t.default_factory), f"{f.name}: default differs"
                assert f.metadata == t.metadata, f"{f.name}: choices differ from TrainConfig's"
            assert f.default is not MISSING or f.default_factory is not MISSING


def test_train_config_derives_warmup_and_eval_cadence_from_the_epochs():
    from hnerv_lib.report.params import AblationParams

    p = from_namespace(AblationParams, {"clip_warmup_frac": 0.25, "eval_every": 10, "full_epochs": 40, "ablate_epochs": 8})
    assert (p.train_config("full").clip_warmup_epochs, p.train_config("full").eval_every) == (10, 10)
    assert (p.base_config("full").clip_warmup_epochs, p.base_config("full").eval_every) == (2, 8)
    assert p.train_config("patch", epochs=8) == p.base_config("patch")


def test_patch_encoding_and_canvas_knobs_compare_at_the_presets_parameter_count():
    from hnerv_lib.models import build_model, count_params, get_preset
    from hnerv_lib.report.params import PatchParams
    from hnerv_lib.studies.patch import twin_params

    smoke = load_profile("smoke")
    base = from_namespace(PatchParams, {**smoke, "twin_canvas": 1, "twin_t_levels": 0})
    assert twin_params(base) is None and base.train_config("patch").model_overrides == {"predict_clip": True}
    varied = from_namespace(PatchParams, {**smoke, "patch_t_levels": 4, "patch_canvas": 2})
    over = varied.train_config("patch").model_overrides
    preset = get_preset("patch-tiny")
    assert (over["pe_levels"], over["xy_levels"], over["canvas"]) == (4, preset.pe_levels, 2)  # x/y keep theirs
    assert over["dec_strides"] == (*preset.dec_strides, 2) and over["fc_dim"] != preset.fc_dim
    sizes = [count_params(build_model(get_preset("patch-tiny", **o))) for o in ({}, over)]
    assert abs(sizes[1] - sizes[0]) <= 0.03 * sizes[0]
    assert varied.train_config("patch").run_id() != base.train_config("patch").run_id()
    twin = twin_params(from_namespace(PatchParams, smoke))
    assert (twin.patch_canvas, twin.patch_t_levels, twin.seeds) == (smoke["twin_canvas"], smoke["twin_t_levels"], 1)
    with pytest.raises(ValueError, match=r"window_pool=10 and a canvas of 2 patches do not combine"):
        from_namespace(PatchParams, {**smoke, "patch_window_pool": 10, "patch_canvas": 2})

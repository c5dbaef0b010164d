"""The video ViT with 2D patches or 3D tubelets: token counts, shapes, errors, env config, inflation, CLI."""

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from hnerv_lib.studies.tubelets.cli import main
from hnerv_lib.studies.tubelets.clips import ArrowOfTime, ClipSet, arrow_of_time, crop_lefts, time_regions, window_starts
from hnerv_lib.studies.tubelets.config import PRESETS, ConfigError, ViTConfig, from_env, get_preset, token_grid
from hnerv_lib.studies.tubelets.inflate import average_positions, inflate, inflate_patch_weight
from hnerv_lib.studies.tubelets.measure import flops_per_clip, peak_tensor_mb, scale_table, t_interval
from hnerv_lib.studies.tubelets.model import (
    DividedBlock,
    LSViTForAction,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    trainable_params,
)
from hnerv_lib.studies.tubelets import study as tube_study
from hnerv_lib.studies.tubelets.study import Study, run_study, summarize, summary_verdict
from hnerv_lib.studies.tubelets.train import TrainSpec, fit
from hnerv_lib.train.checkpoint import CheckpointMismatch
from hnerv_lib.data.video import DataError
from hnerv_lib.utils import io

SMOKE = get_preset("vit-tiny")  # 32 x 32 frames, P = 8: 16 spatial tokens, width 16


def tiny(t: int = 1, frames: int = 8, **kw) -> LSViTForAction:
    torch.manual_seed(0)
    return LSViTForAction(replace(SMOKE, use_3d_patch_embed=t > 1, tubelet_size=t, **kw), num_frames=frames).eval()


def clip(batch: int = 2, frames: int = 8) -> torch.Tensor:
    return torch.randn(batch, frames, 3, 32, 32, generator=torch.Generator().manual_seed(1))


# --- tokens and shapes -----------------------------------------------------------------------------

@pytest.mark.parametrize("t, tokens", [(1, 3136), (2, 1568), (4, 784)])
def test_seed_token_counts_as_the_model_produces_them(t, tokens):
    cfg = ViTConfig(use_3d_patch_embed=t > 1, tubelet_size=t)  # ViT-B/16, 224 x 224
    with torch.device("meta"):
        model = LSViTForAction(cfg, num_frames=16)
        out = model.embed(torch.empty(1, 16, 3, 224, 224))
    assert model.num_tokens == tokens and out.shape == (1, tokens, 768)
    assert model.pos_embed.shape == (1, tokens, 768)


def test_scale_table_reports_the_seed_numbers_and_fewer_flops_per_tubelet():
    rows = scale_table(frames=16, image_size=224, patch_size=16, tubelets=(1, 2, 4))
    assert [r["tokens (embed output)"] for r in rows] == [3136, 1568, 784]
    flops = [r["GFLOPs / clip"] for r in rows]
    assert flops[0] > 2 * flops[1] > 0 and flops[1] > 2 * flops[2]  # attention is quadratic in tokens


@pytest.mark.parametrize("t, tokens", [(1, 128), (2, 64), (4, 32)])
def test_shapes_of_2d_and_3d_models(t, tokens):
    model = tiny(t)
    x = clip()
    assert model.embed(x).shape == (2, tokens, 16)
    assert model(x).shape == (2, 2)
    assert token_grid(model.config, 8) == (8 // t, 4, 4)


def test_preset_parameter_counts_are_pinned():
    counts = {}
    for name, cfg in PRESETS.items():
        with torch.device("meta"):
            counts[name] = trainable_params(LSViTForAction(cfg, num_frames=16 if name == "vit-b" else 8))
    assert counts == {"vit-b": 88362640, "tiny": 120770, "vit-tiny": 7426}


# --- errors ------------------------------------------------------------------------------------------

def test_3d_without_num_frames_is_the_seeds_error():
    with pytest.raises(ConfigError, match="num_frames must be specified when using 3D patch embedding"):
        LSViTForAction(replace(SMOKE, use_3d_patch_embed=True))


def test_2d_without_num_frames_says_why_it_needs_one():
    with pytest.raises(ConfigError, match="position table"):
        LSViTForAction(SMOKE)


def test_frames_not_divisible_by_tubelet_names_both_numbers():
    with pytest.raises(ConfigError, match="num_frames 8 is not divisible by tubelet_size 3"):
        LSViTForAction(replace(SMOKE, use_3d_patch_embed=True, tubelet_size=3), num_frames=8)


def test_conflicting_num_frames_and_bad_configs_are_errors():
    with pytest.raises(ConfigError, match="num_frames=8 contradicts config.num_frames=4"):
        LSViTForAction(replace(SMOKE, num_frames=4), num_frames=8)
    with pytest.raises(ConfigError, match="image_size 30 is not a multiple of patch_size 8"):
        replace(SMOKE, image_size=30)
    with pytest.raises(ConfigError, match="width 16 is not divisible by heads 3"):
        replace(SMOKE, heads=3)
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        get_preset("huge")


def test_wrong_clip_shape_names_expected_and_given():
    with pytest.raises(ValueError, match=r"expected clips .* = \(B, 8, 3, 32, 32\); got \(2, 4, 3, 32, 32\)"):
        tiny()(clip(frames=4))


# --- environment overrides ---------------------------------------------------------------------------

def test_env_overrides_every_kind_of_field(monkeypatch):
    monkeypatch.setenv("APPCONFIG__USE_3D_PATCH_EMBED", "true")
    monkeypatch.setenv("APPCONFIG__TUBELET_SIZE", "4")
    monkeypatch.setenv("APPCONFIG__PATCH_SIZE", "16")
    monkeypatch.setenv("APPCONFIG__MLP_RATIO", "2.5")
    monkeypatch.setenv("APPCONFIG__NUM_FRAMES", "16")
    cfg = from_env()
    assert (cfg.use_3d_patch_embed, cfg.tubelet_size, cfg.patch_size, cfg.mlp_ratio, cfg.num_frames) == (True, 4, 16, 2.5, 16)
    assert cfg.width == 768  # untouched fields keep the base's value
    assert LSViTForAction(cfg).num_tokens == 784  # num_frames from the environment is enough for 3D


@pytest.mark.parametrize("raw, value", [("1", True), ("FALSE", False), (" yes ", True), ("No", False)])
def test_env_booleans(raw, value):
    assert from_env(environ={"APPCONFIG__USE_3D_PATCH_EMBED": raw}).use_3d_patch_embed is value


@pytest.mark.parametrize("raw", ["off", "on", "2", "maybe"])
def test_env_booleans_are_only_the_six_words(raw):  # the one parser's rule (utils/parse.py)
    with pytest.raises(ConfigError, match="is not a boolean"):
        from_env(environ={"APPCONFIG__USE_3D_PATCH_EMBED": raw})


def test_env_optional_none_and_base():
    base = replace(SMOKE, num_frames=8)
    assert from_env(base, {"APPCONFIG__NUM_FRAMES": "none"}).num_frames is None
    assert from_env(base, {"OTHER": "x"}) == base


@pytest.mark.parametrize("env, message", [
    ({"APPCONFIG__TUBELET_SIZE": "two"}, "APPCONFIG__TUBELET_SIZE='two' is not an integer"),
    ({"APPCONFIG__USE_3D_PATCH_EMBED": "maybe"}, "APPCONFIG__USE_3D_PATCH_EMBED='maybe' is not a boolean"),
    ({"APPCONFIG__TUBLET_SIZE": "2"}, "APPCONFIG__TUBLET_SIZE names no ViTConfig field"),
    ({"APPCONFIG__PATCH_SIZE": "0"}, r"ViTConfig.patch_size must be an int >= 1; got 0 \(from environment"),
])
def test_env_errors_name_variable_and_value(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        from_env()


# --- attention: joint or divided, causal in time or not -------------------------------------------

ATTENTIONS = [dict(attention="joint"), dict(attention="joint", causal=True),
              dict(attention="divided"), dict(attention="divided", causal=True)]


@pytest.mark.parametrize("kw", ATTENTIONS[1:])
@pytest.mark.parametrize("t", [1, 2, 4])
def test_every_attention_takes_every_embedding(t, kw):
    model = tiny(t, **kw)
    x = clip()
    assert model.tokens(x).shape == (2, 128 // t, 16) and model(x).shape == (2, 2)
    assert model.config.attention_name.startswith(kw["attention"])


@pytest.mark.parametrize("kw", [dict(attention="joint", causal=True), dict(attention="divided", causal=True)])
@pytest.mark.parametrize("t", [1, 2])
def test_causal_attention_never_looks_at_later_frames(t, kw):
    x = clip()
    later = x.clone()
    later[:, 4:] = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(3))  # frames 4..7 change
    early = (4 // t) * 16  # tokens of the time slots before frame 4
    for causal, same in ((True, True), (False, False)):
        model = tiny(t, **{**kw, "causal": causal})
        a, b = model.tokens(x), model.tokens(later)
        assert torch.allclose(a[:, :early], b[:, :early], atol=1e-6) is same
        assert not torch.allclose(a[:, early:], b[:, early:])


def test_divided_attention_over_time_stays_at_one_patch_position():
    torch.manual_seed(0)
    block = DividedBlock(replace(SMOKE, attention="divided")).eval()
    with torch.no_grad():  # silence attention over space and the MLP: what is left is attention over time
        for p in (*block.space_attn.out_proj.parameters(), *block.mlp[-1].parameters()):
            p.zero_()
    z = torch.randn(2, 8 * 16, 16)
    moved = z.clone()
    moved.view(2, 8, 16, 16)[:, :, 5] += 1.0  # patch position 5, every frame
    delta = (block(moved, (8, 4, 4), None) - block(z, (8, 4, 4), None)).view(2, 8, 16, 16).abs().amax(dim=(0, 1, 3))
    assert delta[5] > 0.1 and torch.count_nonzero(delta) == 1


def test_bad_attention_settings_are_named():
    with pytest.raises(ConfigError, match=r"attention must be one of \['joint', 'divided'\]; got 'sparse'"):
        replace(SMOKE, attention="sparse")
    with pytest.raises(ConfigError, match="causal must be a bool; got 'yes'"):
        replace(SMOKE, causal="yes")


def test_divided_flops_count_attention_over_time_and_space():
    model = tiny(1, attention="divided")
    d, t, s, n, h = SMOKE.width, 8, 16, 128, int(SMOKE.width * SMOKE.mlp_ratio)
    embed = 2 * n * d * 3 * SMOKE.patch_size ** 2
    linear = 2 * n * (2 * 4 * d * d + 2 * d * h) + 2 * d * SMOKE.num_classes  # two attentions' qkv + out, MLP, head
    attention = 2 * 2 * (s * t * t + t * s * s) * d  # over time at each position, over space in each frame
    assert flops_per_clip(model) == embed + linear + attention < flops_per_clip(tiny(1))


def test_old_checkpoints_without_attention_fields_are_joint_and_bidirectional():
    old = {k: v for k, v in SMOKE.to_dict().items() if k not in ("attention", "causal")}
    assert ViTConfig.from_dict(old) == SMOKE and SMOKE.attention == "joint" and not SMOKE.causal


# --- checkpoints -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, dict(attention="divided", causal=True)])
def test_checkpoint_round_trip_is_self_describing(tmp_path, kw):
    model = tiny(2, **kw)
    path = save_checkpoint(tmp_path / "m.pt", model, extra={"note": "x"})
    loaded, extra = load_checkpoint(path)
    assert loaded.config == model.config and extra == {"note": "x"}
    x = clip()
    assert torch.equal(loaded(x), model(x))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_checkpoint_of_the_other_embedding_is_a_clear_error(tmp_path):
    path2d = save_checkpoint(tmp_path / "2d.pt", tiny(1))
    path3d = save_checkpoint(tmp_path / "3d.pt", tiny(2))
    with pytest.raises(CheckpointMismatch, match=r"has 2D patch embedding, model expects 3D tubelets \(t=2\)"):
        load_checkpoint(path2d, expect=tiny(2).config)
    with pytest.raises(CheckpointMismatch, match=r"has 3D tubelets \(t=2\), model expects 2D patch embedding"):
        load_weights(path3d, tiny(1))
    with pytest.raises(CheckpointMismatch, match=r"has 3D tubelets \(t=2\), model expects 3D tubelets \(t=4\)"):
        load_weights(path3d, tiny(4))
    with pytest.raises(CheckpointMismatch, match="width: checkpoint 16 vs model 32"):
        load_weights(path3d, tiny(2, width=32))
    with pytest.raises(CheckpointMismatch, match="attention: checkpoint 'joint' vs model 'divided'"):
        load_weights(path3d, tiny(2, attention="divided"))


def test_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"format": 1, "kind": "hnerv", "model": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointMismatch, match="not an action-model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


# --- inflation ---------------------------------------------------------------------------------------

def _trained_like_2d(**kw) -> LSViTForAction:
    model = tiny(1, **kw)
    with torch.no_grad():  # make the position table far from constant over time, as after training
        model.pos_embed.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    return model


@pytest.mark.parametrize("kw", ATTENTIONS)
@pytest.mark.parametrize("mode", ["central", "average"])
def test_tubelet_1_inflation_reproduces_2d_logits_on_any_clip(mode, kw):
    model2d = _trained_like_2d(**kw)
    model3d = inflate(model2d, 1, mode).eval()
    assert model3d.config.use_3d_patch_embed and model3d.num_tokens == model2d.num_tokens
    x = clip()
    torch.testing.assert_close(model3d(x), model2d(x))
    time_constant = x[:, :1].expand(-1, 8, -1, -1, -1)
    torch.testing.assert_close(model3d(time_constant), model2d(time_constant))


def _window_averaged_2d(model2d: LSViTForAction, t: int, frames: int) -> LSViTForAction:
    """The 2D model with each frame's position embedding replaced by its window's mean (repeated t times)."""
    state = dict(model2d.state_dict())
    avg = average_positions(state["pos_embed"], model2d.num_frames, t)
    if frames == model2d.num_frames:
        s, d = avg.shape[1] // (frames // t), avg.shape[2]
        avg = avg.reshape(1, frames // t, 1, s, d).expand(-1, -1, t, -1, -1).reshape(1, -1, d)
    out = LSViTForAction(model2d.config if frames == model2d.num_frames else replace(model2d.config, num_frames=frames))
    out.load_state_dict({**state, "pos_embed": avg})
    return out.eval()


@pytest.mark.parametrize("kw", [dict(attention="joint"), dict(attention="divided")])  # not causal: see inflate.py
@pytest.mark.parametrize("t", [2, 4])
@pytest.mark.parametrize("mode", ["central", "average"])
def test_tubelet_inflation_on_clips_constant_within_each_tubelet(t, mode, kw):
    model2d = _trained_like_2d(**kw)
    model3d = inflate(model2d, t, mode).eval()
    x = clip()[:, ::t].repeat_interleave(t, dim=1)  # frames constant within each window of t
    # each tubelet's patch embedding equals the 2D embedding of the frames it covers ...
    first_of_window = model2d.embed(x).reshape(2, 8 // t, t, 16, 16)[:, :, 0].reshape(2, -1, 16)
    torch.testing.assert_close(model3d.embed(x), first_of_window)
    # ... and the logits equal those of the 2D model with window-averaged position embeddings: it sees each
    # 3D token t times, and softmax attention and mean pooling do not change when a token set is duplicated
    torch.testing.assert_close(model3d(x), _window_averaged_2d(model2d, t, 8)(x), rtol=1e-4, atol=1e-5)
    assert (model3d(x) - model2d(x)).abs().max() > 1e-3  # the unmodified 2D model differs: positions vary in a window


@pytest.mark.parametrize("kw", ATTENTIONS)
@pytest.mark.parametrize("t", [2, 4])
def test_central_inflation_equals_2d_on_the_central_frames(t, kw):
    model2d = _trained_like_2d(**kw)
    model3d = inflate(model2d, t, "central").eval()
    x = clip()  # any clip, moving or not
    reference = _window_averaged_2d(model2d, t, 8 // t)
    torch.testing.assert_close(model3d(x), reference(x[:, t // 2 :: t]), rtol=1e-4, atol=1e-5)


def test_inflated_patch_weights():
    w2 = torch.randn(4, 3, 8, 8)
    central = inflate_patch_weight(w2, 4, "central")
    assert central.shape == (4, 3, 4, 8, 8) and torch.equal(central[:, :, 2], w2)
    assert central[:, :, [0, 1, 3]].abs().sum() == 0
    torch.testing.assert_close(inflate_patch_weight(w2, 4, "average").sum(dim=2), w2)
    with pytest.raises(ConfigError, match="inflation mode must be one of"):
        inflate_patch_weight(w2, 2, "zeros")
    with pytest.raises(ConfigError, match="needs a model with 2D patch embedding; got 3D tubelets"):
        inflate(tiny(2), 2)
    with pytest.raises(ConfigError, match="num_frames 8 is not divisible by tubelet_size 3"):
        inflate(tiny(1), 3)


# --- data, training, measuring -----------------------------------------------------------------------

def test_split_regions_and_windows_share_no_frame():
    regions = time_regions(132, 3, 0.55, 2)
    assert regions["train"][0] == (0, 24) and regions["test"][0] == (26, 42)
    train = {f for lo, hi in regions["train"] for f in range(lo, hi)}
    test = {f for lo, hi in regions["test"] for f in range(lo, hi)}
    assert not train & test and min(abs(a - b) for a in train for b in test) >= 3
    assert window_starts(0, 30, 15, 2, cuts=[]) == list(range(0, 16, 2))
    assert window_starts(0, 30, 15, 2, cuts=[10]) == [12, 14]  # a window may not straddle frames 10 | 11
    assert crop_lefts(57, 32, 1) == [12] and crop_lefts(57, 32, 3) == [0, 12, 25]


@pytest.fixture(scope="module")
def bunny_clips(smoke_cache):
    return arrow_of_time(ArrowOfTime(videos=("bunny",), crops=1), smoke_cache)


def test_arrow_of_time_clips_are_twins_and_split_by_time(bunny_clips, tmp_path):
    train, test = bunny_clips
    assert train.clips.shape[1:] == (8, 3, 32, 32) and train.num_frames == 8
    pairs = train.pairs()
    assert torch.equal(train.clips[pairs[:, 0]].flip(1), train.clips[pairs[:, 1]])  # reversed twin, same frames
    assert (train.labels[pairs[:, 0]] == 0).all() and (train.labels[pairs[:, 1]] == 1).all()
    frames = lambda s: {int(o[1]) + k for o in s.origin for k in range(15)}  # noqa: E731 (span 15 source frames)
    assert not frames(train) & frames(test)
    test.save(tmp_path / "test")
    back = ClipSet.load(tmp_path / "test")
    assert torch.equal(back.clips, test.clips) and back.classes == ("forward", "reversed") and back.meta == test.meta
    with pytest.raises(DataError, match="no clip set at"):
        ClipSet.load(tmp_path / "missing")


def test_fit_is_deterministic_and_needs_twins_when_paired(bunny_clips):
    train, _ = bunny_clips
    spec = TrainSpec(epochs=1, batch_size=8)
    a, b = tiny(2), tiny(2)
    ha, hb = fit(a, train, spec), fit(b, train, spec)
    assert ha["loss"] == hb["loss"] and math.isfinite(ha["loss"][0])
    shuffled = ClipSet(train.clips[1:], train.labels[1:], train.classes, train.origin[1:])
    with pytest.raises(DataError, match="paired batches need clips stored as"):
        fit(tiny(2), shuffled, spec)


def test_flops_and_memory_are_counted():
    flops = [flops_per_clip(tiny(t)) for t in (1, 2, 4)]
    assert flops[0] > flops[1] > flops[2] > 0
    model, d = tiny(1), SMOKE.width  # 8 frames x 16 patches = 128 tokens, one layer
    n, embed = model.num_tokens, 2 * model.num_tokens * d * 3 * SMOKE.patch_size ** 2
    linear = 2 * n * (4 * d * d + 2 * d * int(d * SMOKE.mlp_ratio)) + 2 * d * SMOKE.num_classes  # qkv, out, MLP, head
    attention = 2 * 2 * n * n * d  # q.k and attention x v, every token pair: a real CPU model's fused kernel hides it
    assert flops[0] == embed + linear + attention
    def two_then_one():
        a, b = torch.empty(262144), torch.empty(262144)  # 1 MiB each, alive together
        del a, b
        return torch.empty(262144)

    assert peak_tensor_mb(two_then_one) == pytest.approx(2.0)


def test_t_interval_values():
    mean, half = t_interval([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and half == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    assert math.isnan(t_interval([0.5])[1])


def test_study_trains_every_variant_and_reuses_finished_runs(bunny_clips, tmp_path):
    train, test = bunny_clips
    study = Study(ArrowOfTime(videos=("bunny",), crops=1), SMOKE,
                  TrainSpec(epochs=3, batch_size=16), finetune_epochs=1, seeds=(0,))
    runs = run_study(study, {"train": train, "test": test}, tmp_path)
    slugs = ["2d", "t2", "t4", "t2-central", "t2-average", "t2-eqflops", "t4-eqflops"]
    assert runs["slug"].tolist() == slugs and runs["tokens"].tolist() == [128, 64, 32, 64, 64, 64, 32]
    ratio = runs["gflops"].iloc[0] / runs["gflops"]  # equal FLOPs: epochs x FLOPs per clip as the 2D model's
    assert runs["epochs"].tolist()[:5] == [3, 3, 3, 4, 4] and runs["test_acc"].between(0, 1).all()
    assert runs["epochs"].tolist()[5:] == [round(3 * ratio[5]), round(3 * ratio[6])] and ratio[6] > ratio[5] > 1
    assert runs["test_acc"].tolist() == [c[-1] for c in runs["test_curve"]]  # the curve ends at the final score
    assert [len(c) for c in runs["test_curve"]] == [3, 3, 3, 1, 1, *runs["epochs"][5:]]  # per epoch (inflated: fine-tuning)
    assert runs["unseen_acc"].isna().all()  # the arrow of time has no unseen-video split
    assert not runs.drop(columns=["unseen_acc"]).isna().any().any()  # every other column is filled by a run
    files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = run_study(study, {"train": train, "test": test}, tmp_path)
    speeds = list(tube_study.SPEED_COLUMNS)
    pd.testing.assert_frame_equal(again.drop(columns=speeds), runs.drop(columns=speeds))  # speeds: timed again
    # timed once per architecture in this process: an inflated or equal-FLOPs variant has its tubelet's numbers
    assert runs.groupby("tokens")[speeds].nunique().eq(1).all().all() and (runs[speeds] > 0).all().all()
    assert not set(speeds) & set(io.load_json(study.run_dir(tmp_path) / "t2_s0.json"))  # not a run's number
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == files  # nothing retrained
    assert load_checkpoint(study.run_dir(tmp_path) / "t2-central_s0.pt")[0].config.embedding == "3D tubelets (t=2)"


def test_verdict_is_written_from_the_numbers():
    rows = []
    for name, tokens, accs in [("2D patches", 128, [0.80, 0.82, 0.84]), ("tubelet 2", 64, [0.50, 0.52, 0.48])]:
        for seed, acc in enumerate(accs):
            rows.append({"variant": name, "seed": seed, "tokens": tokens, "params": 1, "gflops": tokens / 1000,
                         "train_clips_per_s": 100.0 * 128 / tokens, "infer_clips_per_s": 400.0 * 128 / tokens,
                         "train_step_mb": tokens / 10, "epochs": 3, "test_acc": acc, "train_acc": 0.9})
    summary = summarize(pd.DataFrame(rows))
    assert summary["test acc"].tolist() == pytest.approx([0.82, 0.50])
    text = summary_verdict(summary)
    assert "tubelet 2 uses 50% of the 2D tokens and 50% of its FLOPs, infers at 2.0x" in text
    assert "Above chance (50%): 2D patches." in text
    assert "its interval does not overlap those of tubelet 2" in text


# --- command line ------------------------------------------------------------------------------------

def test_cli_train_infer_round_trip_and_embedding_mismatch(tmp_path, smoke_cache, monkeypatch, capsys):
    common = ["--epochs", "1", "--videos", "bunny", "--crops", "1", "--preset", "vit-tiny", "--cache_dir", str(smoke_cache)]
    assert main(["train", "--num_frames", "8", "--out", str(tmp_path / "r2d"), *common]) == 0
    ckpt, data = tmp_path / "r2d" / "model.pt", tmp_path / "r2d" / "data"
    assert (data / "train" / "clips.pt").is_file() and (tmp_path / "r2d" / "summary.json").is_file()
    capsys.readouterr()
    assert main(["infer", "--checkpoint", str(ckpt), "--data_root", str(data / "test"), "--num_frames", "8"]) == 0
    out = capsys.readouterr().out
    n_test = len(ClipSet.load(data / "test"))
    assert out.count("clip ") == n_test and "accuracy" in out.splitlines()[-1]

    monkeypatch.setenv("APPCONFIG__USE_3D_PATCH_EMBED", "true")
    monkeypatch.setenv("APPCONFIG__TUBELET_SIZE", "2")
    assert main(["infer", "--checkpoint", str(ckpt), "--data_root", str(data / "test")]) == 2
    assert "has 2D patch embedding, model expects 3D tubelets (t=2)" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "bad"), *common]) == 2  # 3D without --num_frames
    assert "num_frames must be specified when using 3D patch embedding" in capsys.readouterr().err
    monkeypatch.setenv("APPCONFIG__TUBELET_SIZE", "two")
    assert main(["train", "--num_frames", "8", "--out", str(tmp_path / "bad"), *common]) == 2
    assert "APPCONFIG__TUBELET_SIZE='two' is not an integer" in capsys.readouterr().err

    monkeypatch.setenv("APPCONFIG__TUBELET_SIZE", "2")  # fine-tune an inflated copy of the 2D model, same data
    args = ["train", "--num_frames", "8", "--out", str(tmp_path / "rin"), "--data_root", str(data), *common,
            "--init_from", str(ckpt)]
    assert main(args) == 0
    model, extra = load_checkpoint(tmp_path / "rin" / "model.pt")
    assert model.config.embedding == "3D tubelets (t=2)" and extra["tokens"] == 64
    assert main(["infer", "--checkpoint", str(tmp_path / "rin" / "model.pt"), "--data_root", str(data / "test")]) == 0


def test_study_seeds_run_as_local_jobs_and_are_read_back(smoke_cache, tmp_path, monkeypatch):
    """``executor: local``: one job per (study, seed), every study's submitted together (its variants in
    order, the 2D model first); afterwards each study reads every run back and trains nothing."""
    from hnerv_lib.train.launch import Launcher

    data = ArrowOfTime(videos=("bunny",), crops=1)
    study = Study(data, SMOKE, TrainSpec(epochs=1, batch_size=16), finetune_epochs=1, seeds=(0, 1),
                  variants=tuple(v for v in tube_study.VARIANTS if v.slug in ("2d", "t2-central")))
    other = replace(study, train=TrainSpec(epochs=2, batch_size=16), seeds=(0,))
    tube_study.seeds_first([study, other], tmp_path, smoke_cache,
                           Launcher(executor="local", executor_jobs=2, poll_s=0.2), progress=False)
    assert all(tube_study.seed_done(study, s, tmp_path) for s in (0, 1)) and tube_study.seed_done(other, 0, tmp_path)
    monkeypatch.setattr(tube_study, "run_one", lambda *a, **k: pytest.fail("retrained a finished seed"))
    runs = run_study(study, tube_study.cut_task(data, smoke_cache), tmp_path)
    assert runs[["slug", "seed"]].values.tolist() == [["2d", 0], ["t2-central", 0], ["2d", 1], ["t2-central", 1]]

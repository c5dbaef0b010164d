"""The ablation sweep of notebook 04: its variants, size scaling, Pareto front, driver and findings."""

from dataclasses import replace

import pandas as pd
import pytest

from hnerv_lib.models import decoder_params, fc_dim_for_factor
from hnerv_lib.studies.ablation import GROUPS, Ablation, findings, pareto_front, run_ablation
from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.run import Run
from hnerv_lib.models import get_preset
from hnerv_lib.report.params import AblationParams

BASE = get_train_preset("hnerv-tiny")


def _ids(base, ablation):
    return {(v.group, v.label): v.apply(base).run_id() for v in ablation.variants(base)}


def test_every_group_and_value_becomes_a_variant():
    ab = Ablation()
    labels = {}
    for v in ab.variants(BASE):
        labels.setdefault(v.group, []).append(v.label)
    assert tuple(labels) == GROUPS
    assert labels["clip_weight"] == ["0.0", "0.1", "0.2", "0.5", "1.0"]
    assert labels["warmup"] == ["0", "1/6", "1/3"]
    assert labels["loss"] == ["L2", "L1", "Fusion6", "Fusion4", "Fusion10"]
    assert labels["predict_clip"] == ["off", "on, lambda 0"] and len(labels["size"]) == 4


def test_coinciding_variants_share_one_run():
    base = AblationParams(profile="smoke", size=[32, 64], every=11, first_frames=12, full_model="hnerv-tiny", nerv_model="nerv-tiny",
                          patch_model="patch-tiny", ablate_epochs=6, clip_weight=0.2, loss="Fusion6",
                          clip_warmup_frac=1 / 6).base_config("full")
    ids = _ids(base, Ablation())
    assert ids["predict_clip", "on, lambda 0"] == ids["clip_weight", "0.0"]
    shared = {ids["clip_weight", "0.2"], ids["warmup", "1/6"], ids["loss", "Fusion6"], ids["size", "x1"]}
    assert shared == {base.run_id()}  # the base run is trained once for four tables
    assert ids["predict_clip", "off"] != ids["clip_weight", "0.0"]
    assert len(set(ids.values())) == 15  # 5 + 2 + 1 + 4 + 3 distinct runs


def test_warmup_fractions_scale_with_the_epochs():
    cfg = replace(get_train_preset("hnerv-tiny"), epochs=300)
    warm = [v.apply(cfg).clip_warmup_epochs for v in Ablation(groups=("warmup",)).variants(cfg)]
    assert warm == [0, 50, 100]  # the seeds' 0 / 50 / 100 of 300


@pytest.mark.parametrize("preset", ["hnerv-tiny", "patch-tiny", "hnerv-quick"])
def test_size_factors_scale_the_decoder(preset):
    base = decoder_params(get_preset(preset))
    assert fc_dim_for_factor(preset, 1.0) == get_preset(preset).fc_dim
    for factor in (0.35 / 1.5, 0.5, 2.0):
        got = decoder_params(get_preset(preset, fc_dim=fc_dim_for_factor(preset, factor)))
        assert got == pytest.approx(factor * base, rel=0.1), (factor, got, base)


def test_bad_ablation_values_are_named():
    with pytest.raises(ValueError, match="unknown ablation groups \\['lamda'\\]"):
        Ablation(groups=("lamda",))
    with pytest.raises(ValueError, match="warm-up fractions must lie in \\[0, 1\\]; got \\[1.5\\]"):
        Ablation(warmup_fracs=(1.5,))
    with pytest.raises(ValueError, match="size factor must be > 0; got 0"):
        fc_dim_for_factor("hnerv-tiny", 0)


def test_pareto_front_keeps_exactly_the_undominated_points():
    df = pd.DataFrame({"clip": [0.1, 0.5, 0.9, 0.4, 0.9], "psnr": [30, 29, 25, 28, 24]})
    assert pareto_front(df, "clip", "psnr").tolist() == [True, True, True, False, False]


def _fake_train(calls):
    def train(cfg, run_dir, progress=False, **kwargs):
        calls.append(cfg.run_id())
        Run(run_dir).begin(cfg)  # as the trainer: the directory exists before training can fail
        if cfg.loss == "L1":
            raise RuntimeError("L1 diverged on purpose")
        summary = {"psnr_train": 30 - cfg.clip_weight, "clip_val": 0.5 + cfg.clip_weight / 4, "params": 100,
                   "run_id": cfg.run_id()}
        Run(run_dir).save_summary(summary)
        return summary
    return train


def test_sweep_trains_each_distinct_run_once_isolates_failures_and_reuses(tmp_path):
    calls = []
    ab = Ablation(groups=("clip_weight", "loss"), clip_weights=(0.0, 0.2, 1.0), losses=("L2", "L1", "Fusion6"))
    base = get_train_preset("hnerv-tiny")
    bases = {"full": base}
    res = run_ablation(bases, ab, tmp_path, train_fn=_fake_train(calls), progress=False)
    assert len(calls) == len(set(calls)) == len(set(_ids(base, ab).values()))
    assert set(res["family"]) == {"full"}
    failed = res[res["status"] == "failed"]
    assert failed["label"].tolist() == ["L1"] and Run.at(tmp_path, failed["run_id"].iloc[0]).failed
    text = findings(res)
    assert "seen-frame PSNR no verdict: no interval (lambda 1.0 29 vs lambda 0 30)" in text and "1 run(s) failed" in text
    calls.clear()
    again = run_ablation(bases, ab, tmp_path, train_fn=_fake_train(calls), progress=False)
    assert len(calls) == 1  # only the failed run is tried again
    assert (again["status"] == "reused").sum() == len(again) - 1


def test_ablation_params_build_the_base_config():
    p = AblationParams(ablate_epochs=12, clip_warmup_frac=1 / 3, eval_every=50, clip_weights=[0, 1])
    cfg = p.base_config("patch")
    assert (cfg.epochs, cfg.clip_warmup_epochs, cfg.eval_every, cfg.model) == (12, 4, 12, p.patch_model)
    assert p.ablation().clip_weights == (0.0, 1.0)


def test_findings_name_a_best_value_only_where_intervals_separate():
    def row(group, label, db, half):
        return {"family": "full", "group": group, "label": label, "status": "trained", "params": 100, "psnr_train": db,
                "psnr_train_lo": db - half, "psnr_train_hi": db + half}

    res = pd.DataFrame([row("loss", "Fusion6", 26.0, 0.3), row("loss", "L1", 25.8, 0.3), row("loss", "L2", 22.6, 0.3),
                        row("warmup", "0.0", 26.1, 0.1), row("warmup", "0.333", 27.0, 0.1)])
    text = findings(res)
    assert ("full frame: among pixel losses, the highest seen-frame PSNR comes from Fusion6 (26 dB [25.7, 26.3]); "
            "no difference at this budget from L1, above L2.") in text
    assert ("full frame: among CLIP warm-ups, the highest seen-frame PSNR comes from 0.333 (27 dB [26.9, 27.1]); its "
            "interval separates from every other value.") in text


def test_findings_name_diverged_runs():
    from hnerv_lib.studies.ablation import findings

    res = pd.DataFrame([
        {"family": "full", "group": "lr", "label": "0.001", "run_id": "a", "status": "trained", "psnr_train": 25.0, "params": 1,
         "diverged": False},
        {"family": "full", "group": "lr", "label": "10", "run_id": "b", "status": "reused", "psnr_train": 6.1, "params": 1,
         "diverged": True},
    ])
    text = findings(res)
    assert "No run failed." in text and "1 run(s) diverged" in text and "lr=10." in text
    assert "diverged" not in findings(res.drop(columns="diverged"))  # summaries from before the check


def test_seeds_go_to_the_groups_that_name_winners_and_findings_judge_by_them():
    from hnerv_lib.studies.ablation import summarise

    base = replace(get_train_preset("hnerv-tiny"), epochs=6)
    one, three = Ablation(seeds=1).variants(base), Ablation(seeds=3).variants(base)
    seeded = [v for v in one if v.group != "size"]
    assert len(three) == len(one) + 2 * len(seeded)
    seeds = {(v.group, v.label): set() for v in three}
    for v in three:
        seeds[(v.group, v.label)].add(v.apply(base).seed)
    assert all(s == ({0} if g == "size" else {0, 1, 2}) for (g, _), s in seeds.items())
    with pytest.raises(ValueError, match="seeds must be >= 1; got 0"):
        Ablation(seeds=0)
    rows = [{"family": "full", "group": "loss", "label": name, "seed": s, "run_id": f"{name}{s}", "status": "trained",
             "params": 1, "psnr_train": v, "psnr_train_lo": v - 0.01, "psnr_train_hi": v + 0.01}
            for name, vals in [("L2", (20.0, 20.5, 21.0)), ("L1", (20.2, 20.6, 20.9))] for s, v in enumerate(vals)]
    table = summarise(pd.DataFrame(rows))
    assert len(table) == 2 and set(table["interval"]) == {"t over 3 seeds"}
    text = findings(table)
    assert text.startswith("Intervals: 95 %, t over 3 seeds.") and "no difference at this budget from L2" in text
    single = findings(pd.DataFrame(rows[:1] + rows[3:4]))  # one seed each: the tight frame intervals separate
    assert "its interval separates from every other value" in single

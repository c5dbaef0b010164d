"""Notebook 04's study: its plan, and table, verdict and outputs on constructed sweep results."""

import matplotlib
import pandas as pd

from hnerv_lib.report.params import AblationParams
from hnerv_lib.studies import ablation as study
from hnerv_lib.studies.outputs import Figure, Provenance, Table, Text, by_name

matplotlib.use("Agg")


def test_plan_lists_each_distinct_run_once_and_the_plan_table_every_variant():
    P = AblationParams(profile="smoke", ablate_epochs=4, ablate_families=["full"], clip_weights=[0.0, 0.2],
                       ablate_groups=["clip_weight", "warmup"], ablate_seeds=2)
    rows, runs = study.plan_table(P), study.plan(P)
    assert len(runs) == rows["run_id"].nunique() < len(rows)  # lambda 0.2 is also the warm-up group's base
    assert sorted(c.run_id() for c in runs) == sorted(rows["run_id"].unique())
    assert set(rows["seed"]) == {P.seed, P.seed + 1}


def _row(group, label, seed, db, **kw):
    return {"family": "full", "group": group, "label": label, "seed": seed, "run_id": f"{group}{label}{seed}",
            "status": "trained", "params": 100, "psnr_train": db, "psnr_train_lo": db - 0.01, "psnr_train_hi": db + 0.01,
            "psnr_val": db - 5, "loss": "L2" if group != "loss" else label, "seconds_per_epoch": 1.0, **kw}


def _results(with_size=True):
    rows = [_row("loss", name, s, v) for name, vals in [("L2", (20.0, 20.4)), ("L1", (22.0, 22.2))]
            for s, v in enumerate(vals)]
    rows += [_row("warmup", "0", 0, 21.0), _row("warmup", "1/6", 0, 21.5)]
    rows += [_row("size", f"{f}x", 0, 18.0 + f, params=int(100 * f)) for f in ((0.5, 1.0, 2.0) if with_size else ())]
    rows.append({"family": "full", "group": "loss", "label": "Fusion6", "seed": 0, "run_id": "bad", "status": "failed",
                 "error": "RuntimeError: boom"})
    curves = {f"warmup{w}0": pd.DataFrame({"epoch": [1, 2, 3], "pixel_loss": [0.3, 0.2, 0.1],
                                            "psnr_train": [float("nan"), 18.0, 20.0], "clip_active": [False, True, True]})
              for w in ("0", "1/6")}
    return study.AblationResults(plan=pd.DataFrame({"run_id": ["a", "a", "b"]}), results=pd.DataFrame(rows),
                                 curves=curves, families=["full"], loss_hw={"full": (32, 64)}, executor="inline", epochs=3,
                                 run_root="runs", provenance=Provenance("v", "t", split="6_6_10", epochs=3))


def test_table_averages_seeds_and_keeps_failures_and_the_verdict_judges_by_it():
    t = study.table(_results())
    loss = t[(t["group"] == "loss") & (t["status"] != "failed")].set_index("label")
    assert loss.loc["L1", "psnr_train"] == 22.1 and loss.loc["L1", "interval"] == "t over 2 seeds"
    assert (t["status"] == "failed").sum() == 1
    text = study.verdict(_results())
    assert "the highest seen-frame PSNR comes from L1" in text and "1 run(s) failed." in text


def test_outputs_name_failures_note_small_losses_and_draw_size_only_with_a_size_group():
    named = by_name(study.outputs(_results()))
    assert named["04_plan"][0].text.startswith("3 table rows, 2 distinct runs (3 epochs each, trained inline)")
    assert "1 of 10 runs failed" == next(o for o in named["04_failures"] if not isinstance(o, Table)).text
    failed = next(o for o in named["04_failures"] if isinstance(o, Table))
    assert list(failed.frame["run_id"]) == ["bad"] and "runs/<run_id>/" in failed.what
    assert "note" in next(o for o in named["04_loss"] if isinstance(o, Table)).frame
    assert any(isinstance(o, Figure) for o in named["04_size"])
    without = by_name(study.outputs(_results(with_size=False)))
    assert [type(o) for o in without["04_size"]] == [Text]  # a line instead of an empty table (nothing saved)
    assert without["04_size"][0].text.endswith(": not ablated in this profile (ablate_groups)")
    assert [type(o) for o in named["04_predict_clip"]] == [Text] and isinstance(named["04_size"][0], Table)
    fig = named["04_warmup_curves"][0].draw()
    assert [ln.get_label() for ln in fig.axes[0].lines if ln.get_label().startswith("warm-up")] == [
        "warm-up 0", "warm-up 1/6"]  # one pixel-loss curve per warm-up run (and a dotted line where CLIP starts)


def test_a_profile_without_the_warmup_group_gets_lines_not_empty_tables_or_figures():
    """quick ablates only the groups whose verdicts separate at its budget (lambda and loss): the warm-up
    table and its curves become one line each, and the rest of the outputs are unchanged."""
    full = _results()
    res = full.results[full.results["group"] != "warmup"].reset_index(drop=True)
    named = by_name(study.outputs(study.AblationResults(**{**full.__dict__, "results": res, "curves": {}})))
    for name in ("04_warmup", "04_warmup_curves"):
        assert [type(o) for o in named[name]] == [Text], name
        assert named[name][0].text.endswith(": not ablated in this profile (ablate_groups)")
    assert isinstance(named["04_loss"][0], Table) and isinstance(named["04_size"][0], Table)
    assert "warm-up" not in study.verdict(study.AblationResults(**{**full.__dict__, "results": res, "curves": {}}))

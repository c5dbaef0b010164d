"""A study's outputs, published: captioned with the profile and the results' provenance, saved, shown."""

import matplotlib
import pandas as pd
import pytest

from hnerv_lib.report.params import ComparisonParams
from hnerv_lib.report.publish import Publisher
from hnerv_lib.studies import comparison as study
from hnerv_lib.studies.outputs import Provenance, Table, Text, by_name

matplotlib.use("Agg")


def _results():
    rows = pd.DataFrame([{"setting": "equal parameters", "design": d, "seed": 0, "train_s": t, "s_per_epoch": t / 10,
                          "psnr_train": v, "psnr_train_lo": v - 1, "psnr_train_hi": v + 1, "psnr_val": v - 3}
                         for d, t, v in (("full frame", 20.0, 30.0), ("patch", 10.0, 28.0))])
    fair = pd.DataFrame([{"protocol": "patch", "test-time input": "(t, x, y)", "params": 10, "psnr_val": 20.0,
                          "psnr_val_lo": 19.0, "psnr_val_hi": 21.0}])
    return study.ComparisonResults(per_seed=rows, quality=pd.DataFrame({"design": ["patch"]}), fair=fair,
                                   fast="patch", slow="full frame", epochs=20, target_db=27.0, seeds=1, eval_every=5,
                                   provenance=Provenance("bunny 32x64", "ViT-B-32 random init", split="6_6_10"))


def test_show_saves_tables_and_figures_with_their_provenance_and_the_verdict(tmp_path, capsys):
    P = ComparisonParams(profile="smoke", report_dir=str(tmp_path))
    out = Publisher(P, study, _results())
    out.show("05_equal_parameters", "05_equal_time", "05_comparison")
    assert not (tmp_path / "tables" / "05_equal_parameters.csv").exists()  # shown, not saved
    md = (tmp_path / "tables" / "05_comparison.md").read_text().splitlines()[0]
    assert md.startswith("**Full frame vs patch dual-head") and all(
        w in md for w in ("video bunny 32x64", "profile smoke", "6_6_10", "CLIP teacher ViT-B-32 random init"))
    assert (tmp_path / "figures" / "05_comparison.png").stat().st_size > 0
    assert "profile smoke" in (tmp_path / "figures" / "05_comparison.txt").read_text()
    assert "patch trains 20 epochs" in capsys.readouterr().out
    text = out.verdict()
    assert pd.read_csv(tmp_path / "tables" / "05_verdict.csv")["verdict"][0] == text and text.startswith("Under equal")
    with pytest.raises(KeyError, match="no output named \\['05_nope'\\]"):
        out.show("05_nope")


def test_two_outputs_of_one_kind_may_not_share_a_name():
    frame = pd.DataFrame({"a": [1]})
    assert len(by_name([Table("x", frame, "t"), Text("x", "also x")])["x"]) == 2  # a table and a line may
    with pytest.raises(ValueError, match="two study outputs of one kind are named 'x'"):
        by_name([Table("x", frame, "t"), Table("x", frame, "u")])

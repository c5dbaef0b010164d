"""summary.md and reports/README.md are built from what the notebooks wrote, and say how it was made."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from hnerv_lib.report.figures import save_figure, save_table  # noqa: E402
from hnerv_lib.report.runner import machine  # noqa: E402
from hnerv_lib.report.summary import KEY_ITEMS, provenance_rows, write_index, write_summary  # noqa: E402


def _report(tmp_path):
    rd = tmp_path / "reports" / "quick"
    (rd / "01_full_frame_training.ipynb").parent.mkdir(parents=True)
    (rd / "01_full_frame_training.ipynb").write_text("{}")
    save_table(pd.DataFrame({"psnr_val": [29.5]}), rd, "01_full_frame", "Full-frame quality — CLIP teacher ViT-B-32 / random init (seed 0)")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, rd, "01_curves", "Training curves — profile quick")
    plt.close(fig)
    save_table(pd.DataFrame({"x": [1]}), rd, "01_not_key", "a table the summary only links")
    prov = {"profile": "quick", "git_commit": "abc1234", "cpu": "Some CPU", "cpu_cores": 2, "gpu": "none",
            "packages": {"torch": "2.15.0"}, "wall_seconds": {"01_full_frame_training.ipynb": 61.0},
            "peak_rss_mb": {"01_full_frame_training.ipynb": 900.0}}
    (rd / "provenance.json").write_text(json.dumps(prov))
    return rd


def test_summary_gathers_key_items_with_captions_and_ends_with_provenance(tmp_path):
    text = write_summary(_report(tmp_path)).read_text()
    assert "Full-frame quality — CLIP teacher ViT-B-32 / random init" in text and "29.5" in text
    assert "![01_curves](figures/01_curves.png)" in text and "*Training curves — profile quick*" in text
    assert "a table the summary only links" not in text
    assert "**The CLIP teacher was randomly initialised**" in text
    assert text.count("*Not run under this profile*") == len(KEY_ITEMS) - 1  # every notebook but 01
    tail = text[text.index("## Provenance"):]
    for item in ("`abc1234`", "Some CPU (2 cores)", "| torch | 2.15.0 |", "| 01_full_frame_training.ipynb | 61.0 | 900 |"):
        assert item in tail


def test_index_links_every_profile_summary(tmp_path):
    rd = _report(tmp_path)
    write_summary(rd)
    text = write_index(rd.parent).read_text()
    assert "[summary](quick/summary.md)" in text and "`abc1234`" in text and "| 1.0 |" in text


def test_machine_names_cpu_gpu_and_package_versions():
    m = machine()
    assert m["cpu"] and m["cpu_cores"] >= 1 and m["gpu"]
    assert m["packages"]["torch"].split("+")[0].count(".") == 2 and "open_clip_torch" in m["packages"]


def test_provenance_says_which_commit_made_each_notebook(tmp_path):
    from hnerv_lib.report.runner import _earlier_notebooks, _made_with

    old = {"git_commit": "aaa111", "made_utc": "2026-11-22 08:54", "wall_seconds": {"00_data_prep.ipynb": 50.0}}
    known = {**_earlier_notebooks(old),
             "07_rate_distortion.ipynb": _made_with("bbb222", "2026-12-04 03:00", {"precision": "bf16", "channels_last": True})}
    assert known["00_data_prep.ipynb"] == {"git_commit": "aaa111", "made_utc": "2026-11-22 08:54",
                                           "precision": "fp32 (before precision: auto)"}
    prov = {**old, "git_commit": "bbb222", "wall_seconds": {**old["wall_seconds"], "07_rate_distortion.ipynb": 9.0},
            "notebooks": known}
    rows = "\n".join(provenance_rows(prov))
    assert "| 00_data_prep.ipynb | 50.0 |  | `aaa111` | 2026-11-22 08:54 | fp32 (before precision: auto) |" in rows
    assert "`bbb222` | 2026-12-04 03:00 | bf16 + channels_last |" in rows and "made at different commits" in rows


def test_summary_leads_with_rate_distortion_and_the_fair_comparison_then_verdicts(tmp_path):
    rd = _report(tmp_path)
    for stem in ("05_comparison", "07_rate_distortion"):
        (rd / f"{stem}.ipynb").write_text("{}")
    save_table(pd.DataFrame({"design": ["patch"], "psnr_val": [20.1]}), rd, "05_comparison", "The fair comparison")
    save_table(pd.DataFrame({"verdict": ['Under equal parameters: "patch" wins.']}), rd, "05_verdict", "Verdict")
    save_table(pd.DataFrame({"verdict": ["HNeRV needs 80 % more bits."]}), rd, "07_verdict", "Verdict")
    fig, ax = plt.subplots()
    save_figure(fig, rd, "07_rate_distortion", "RD curves")
    plt.close(fig)
    text = write_summary(rd).read_text()
    order = [text.index(s) for s in ("![07_rate_distortion]", "**The fair comparison**", "## Verdicts",
                                     "**05 · Full frame vs patch, compared fairly.** Under equal parameters: \"patch\" wins.",
                                     "**07 · Rate-distortion against codecs.** HNeRV needs 80 % more bits.",
                                     "## 00 ·", "## Provenance")]
    assert order == sorted(order)
    assert text.count("**The fair comparison**") == 1 and text.count("![07_rate_distortion]") == 1  # not repeated below
    assert "| CPU flags |" in text

"""Notebook 00's study on a constructed video: the summary table, the diversity reading, the outputs."""

from types import SimpleNamespace

import matplotlib
import torch

from hnerv_lib.data.geometry import Grid, Sliding
from hnerv_lib.data.split import Split
from hnerv_lib.studies import data_prep as study
from hnerv_lib.studies.outputs import Figure, Text, by_name

matplotlib.use("Agg")


def _results(same_targets=True):
    frames = torch.randint(0, 255, (12, 3, 16, 32), dtype=torch.uint8)
    video = SimpleNamespace(frames=frames, num_frames=12, frame_hw=(16, 32), key="abc", meta={"decode_seconds": 0.5},
                            describe=lambda: "bunny 16x32")
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(1, 8, 64, generator=g), dim=-1)
    noise = torch.randn(12, 8, 64, generator=g) * (0.01 if same_targets else 3.0)
    targets = torch.nn.functional.normalize(base + noise, dim=-1)
    sliding = Sliding(size=(8, 8), stride=(4, 4))
    return study.DataPrepResults(
        video=video, split=Split.parse("6_6_10").indices(12), grid=(2, 4), grid_windows=Grid(2, 4).windows((16, 32)),
        sliding=sliding, slide_windows=sliding.windows((16, 32)), targets=targets, teacher="ViT-B-32 / random init",
        crop=None, seconds={"frames": (1.5, 0.01), "targets": (2.0, 0.02)}, speed={"device": "cpu", "patches_per_s": 20.0},
        strip_frames=4)


def test_table_says_what_was_prepared_and_the_cache_speedup():
    t = study.table(_results()).set_index("quantity")["value"]
    assert t["frames"] == 12 and t["frame size (H x W)"] == "16x32" and t["patches per frame"] == 8
    assert t["frame load, first / cached (s)"] == "1.50 / 0.010" and t["centre crop"] == "none"


def test_verdict_warns_when_targets_barely_change_and_not_otherwise():
    assert "barely change between frames" in study.verdict(_results(same_targets=True))
    assert "barely change" not in study.verdict(_results(same_targets=False))


def test_outputs_draw_without_a_teacher_where_none_is_involved():
    named = by_name(study.outputs(_results()))
    for name in ("00_frame_strip", "00_geometry", "00_split"):
        fig = next(o for o in named[name] if isinstance(o, Figure))
        assert fig.provenance.teacher == study.NO_TEACHER and fig.draw().axes
    assert named["00_target_similarity"][0].provenance is None  # the results' teacher
    assert isinstance(named["00_load"][0], Text) and "cache key abc" in named["00_load"][0].text

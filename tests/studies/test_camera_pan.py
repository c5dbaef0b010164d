"""The camera-pan clips (issue 16): the window's path, class balance, the time split and the held-out video."""

from dataclasses import replace

import pytest
import torch

from hnerv_lib.data.video import DataError, VideoSpec, load_video
from hnerv_lib.studies.tubelets.clips import PAN_CLASSES, PAN_DIRECTIONS, CameraPan, camera_pan, pan_path

SPEC = CameraPan(videos=("carphone",), holdout="bunny", num_frames=4, size=16, context=32, speeds=(1, 3),
                 train_stride=4, test_stride=8)


@pytest.fixture(scope="module")
def pan_sets(smoke_cache):
    return camera_pan(SPEC, smoke_cache)


def test_the_window_path_moves_at_the_speed_in_the_direction():
    assert pan_path(3, 1, -1, 2, x0=5, y0=9) == [(5, 9), (7, 7), (9, 5)]
    assert pan_path(3, 0, 0, 2, x0=5, y0=9) == [(5, 9)] * 3
    assert PAN_CLASSES[0] == "static" and len(PAN_CLASSES) == 9 == 1 + len(PAN_DIRECTIONS)


def test_every_clip_is_its_window_cut_from_the_resized_video(pan_sets, smoke_cache):
    train = pan_sets["train"]
    frames = load_video(VideoSpec("carphone", size=(32, 39)), smoke_cache).frames  # 176x144 -> height 32
    moves = [(0, 0)] + [(dx, dy) for _, dx, dy in PAN_DIRECTIONS]
    for i in (0, 5, 13, len(train) - 1):
        vid, start, x0, y0, speed = train.origin[i].tolist()
        dx, dy = moves[int(train.labels[i])]
        for k, (x, y) in enumerate(pan_path(4, dx, dy, speed, x0, y0)):
            assert 0 <= x and x + 16 <= 39 and 0 <= y and y + 16 <= 32
            assert torch.equal(train.clips[i, k], frames[start + k, :, y : y + 16, x : x + 16])


def test_classes_and_speeds_are_balanced_and_the_splits_share_no_frame(pan_sets):
    train, test = pan_sets["train"], pan_sets["test"]
    for s in (train, test):
        assert s.classes == PAN_CLASSES and s.clips.shape[1:] == (4, 3, 16, 16)
        counts = torch.bincount(s.labels, minlength=9)
        assert (counts == counts[0]).all() and counts[0] > 0
        assert set(s.origin[:, 4].tolist()) == {1, 3}
    frames = lambda s: {int(o[1]) + k for o in s.origin for k in range(SPEC.span)}  # noqa: E731
    assert not frames(train) & frames(test)
    unseen = pan_sets["unseen video"]
    assert (unseen.origin[:, 0] == 1).all() and unseen.meta["split"] == "unseen video"


def test_the_clips_are_reproducible(pan_sets, smoke_cache):
    again = camera_pan(SPEC, smoke_cache)
    assert all(torch.equal(again[k].clips, pan_sets[k].clips) for k in pan_sets)


def test_bad_specs_are_refused_before_any_video_is_read():
    with pytest.raises(DataError, match="does not fit in context 32; raise context to >= 37"):
        CameraPan(size=16, context=32, num_frames=8, speeds=(1, 3))
    with pytest.raises(DataError, match="holdout 'bunny' is also a train video"):
        CameraPan(videos=("bunny",), holdout="bunny")
    with pytest.raises(DataError, match="speeds must be pixel speeds >= 1"):
        CameraPan(speeds=(0, 2))


def test_without_a_holdout_there_is_no_unseen_video_split(smoke_cache):
    sets = camera_pan(CameraPan(videos=("carphone",), holdout=None, num_frames=4, size=16, context=32, speeds=(2,),
                                train_stride=8, test_stride=8), smoke_cache)
    assert sorted(sets) == ["test", "train"]


def test_draws_repeat_each_train_window_at_fresh_positions_and_leave_the_test_split_alone(pan_sets, smoke_cache):
    more = camera_pan(replace(SPEC, draws=3), smoke_cache)
    train, one = more["train"], pan_sets["train"]
    assert len(train) == 3 * len(one) and (torch.bincount(train.labels) == len(train) // 9).all()
    assert sorted(set(train.origin[:, 1].tolist())) == sorted(set(one.origin[:, 1].tolist()))  # the same frames
    per_window = {}
    for o, label in zip(train.origin.tolist(), train.labels.tolist()):
        per_window.setdefault((o[1], o[4], label), set()).add((o[2], o[3]))
    assert sum(len(p) > 1 for p in per_window.values()) > 0.9 * len(per_window)  # fresh positions, not copies
    assert len(more["test"]) == len(pan_sets["test"]) and len(more["unseen video"]) == len(pan_sets["unseen video"])
    with pytest.raises(DataError, match="CameraPan.draws must be >= 1; got 0"):
        CameraPan(draws=0)

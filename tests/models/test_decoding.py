"""decode_frames_of: one decoder of frames for every model kind, agreeing with the models' own forward passes."""

import pytest
import torch

from hnerv_lib.data import geometry as G
from hnerv_lib.models import build_model, get_preset
from hnerv_lib.models.decoding import clip_at_windows, decode_frames_of

HW = (32, 64)
WINDOWS = G.Grid(2, 4).windows(HW)


def test_hnerv_from_frames_equals_from_its_embeddings():
    torch.manual_seed(0)
    model = build_model("hnerv-tiny").eval()
    frames = torch.rand(5, 3, *HW)
    ids = torch.tensor([4, 0, 2])
    a = decode_frames_of(model, ids, 5, frames=frames)
    emb = model.embed(frames).detach()
    b = decode_frames_of(model, ids, 5, embeddings=emb)
    torch.testing.assert_close(a["rgb"], b["rgb"])
    torch.testing.assert_close(a["clip"], b["clip"])
    assert a["rgb"].shape == (3, 3, *HW) and 0 <= a["rgb"].min() and a["rgb"].max() <= 1
    assert clip_at_windows(a["clip"], WINDOWS, HW).shape == (3, 8, a["clip"].shape[1])


def test_nerv_decodes_from_the_frame_time():
    torch.manual_seed(0)
    model = build_model(get_preset("hnerv-tiny", kind="nerv", fc_hw=(2, 4))).eval()
    out = decode_frames_of(model, torch.tensor([3]), 10)
    torch.testing.assert_close(out["rgb"], model(torch.tensor([0.3]))["rgb"].clamp(0, 1))


def test_patch_model_is_decoded_window_by_window_and_stitched():
    torch.manual_seed(0)
    model = build_model("patch-tiny").eval()
    ids = torch.tensor([1, 2])
    out = decode_frames_of(model, ids, 4, windows=WINDOWS, frame_hw=HW)
    direct = model(G.coords(ids, 4, WINDOWS, HW).flatten(0, 1))
    patches = direct["rgb"].clamp(0, 1).view(2, 8, *direct["rgb"].shape[1:])
    torch.testing.assert_close(out["rgb"], G.stitch(patches, WINDOWS, HW))
    assert out["clip"].shape == (2, 8, direct["clip"].shape[-1])
    with pytest.raises(ValueError, match="patch windows"):
        decode_frames_of(model, ids, 4)

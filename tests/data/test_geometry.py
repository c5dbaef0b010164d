import pytest
import torch

from hnerv_lib.data import geometry as G


def test_grid_matches_the_seeds_layout():
    wins = G.Grid(2, 4).windows((640, 1280))
    assert len(wins) == 8 and all((w.height, w.width) == (320, 320) for w in wins)
    assert wins[3] == G.Window(0, 960, 320, 320) and wins[4] == G.Window(320, 0, 320, 320)
    # the seeds' normalized centre of patch 0 of frame 0: (x, y) = (160/1280, 160/640)
    assert G.centers(wins, (640, 1280))[0].tolist() == [0.125, 0.25]


def test_coords_are_t_x_y():
    wins = G.Grid(2, 4).windows((640, 1280))
    c = G.coords(torch.tensor([0, 96]), 192, wins, (640, 1280))
    assert c.shape == (2, 8, 3)
    assert c[1, 7].tolist() == [0.5, 0.875, 0.75]


@pytest.mark.parametrize("grid", [G.Grid(2, 4), G.Grid(4, 4), G.Grid(4, 8), G.Grid(1, 1)])
def test_grid_round_trip_is_exact(grid):
    frames = torch.randint(0, 256, (3, 3, 32, 64), dtype=torch.uint8)
    wins = grid.windows((32, 64))
    patches = G.extract(frames, wins)
    assert patches.shape[:2] == (3, len(wins))
    assert torch.equal(G.stitch(patches, wins, (32, 64)), frames)
    f = frames.float() / 255
    assert torch.equal(G.stitch(G.extract(f, wins), wins, (32, 64)), f)


@pytest.mark.parametrize("blend", ["uniform", "hann"])
def test_sliding_round_trip_of_consistent_patches(blend):
    frames = torch.rand(2, 3, 32, 64)
    sl = G.Sliding(size=(16, 16), stride=(8, 8))
    wins = sl.windows((32, 64))
    assert len(wins) == 3 * 7
    torch.testing.assert_close(G.stitch(G.extract(frames, wins), wins, (32, 64), blend=blend), frames)


def test_seeds_448_224_windows():
    wins = G.Sliding((448, 448), (224, 224)).windows((672, 1344))
    assert len(wins) == 2 * 5


def test_default_sliding_covers_the_papers_640x1280_flush_against_the_edge():
    """The seeds' 448/224 windows do not tile 640x1280; the default adds a last window against each far edge."""
    wins = G.Sliding().windows((640, 1280))
    assert sorted({w.top for w in wins}) == [0, 192] and sorted({w.left for w in wins}) == [0, 224, 448, 672, 832]
    assert len(wins) == 2 * 5 and all((w.height, w.width) == (448, 448) for w in wins)
    frames = torch.randint(0, 256, (1, 3, 640, 1280), dtype=torch.uint8)
    assert torch.equal(G.stitch(G.extract(frames, wins), wins, (640, 1280)), frames)  # uint8: exact
    small = torch.rand(2, 3, 40, 72)
    wins = G.Sliding((16, 16), (8, 8)).windows((40, 72))  # 40 - 16 = 24 (tiles); 72 - 16 = 56 (tiles)
    assert G.Sliding((16, 16), (8, 8), edge="exact").windows((40, 72)) == wins  # flush adds nothing where strides end
    wins = G.Sliding((16, 16), (10, 10)).windows((40, 72))  # 24 % 10 and 56 % 10: one flush window per axis
    assert sorted({w.top for w in wins}) == [0, 10, 20, 24] and sorted({w.left for w in wins})[-2:] == [50, 56]
    torch.testing.assert_close(G.stitch(G.extract(small, wins), wins, (40, 72), blend="hann"), small)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: G.Grid(3, 4).windows((32, 64)), r"32x64 does not divide into a 3x4 grid"),
        (lambda: G.Grid(2, 5).windows((32, 64)), r"64 % 5 = 4"),
        (lambda: G.Sliding((448, 448), (224, 224), edge="exact").windows((640, 1280)),
         r"height: windows of 448 px with stride 224 do not tile 640 px exactly .* use edge='flush'"),
        (lambda: G.Sliding((448, 448), (224, 224)).windows((320, 1280)), r"height: windows of 448 px do not fit in 320"),
        (lambda: G.Sliding(edge="flesh"), r"edge must be one of \('flush', 'exact'\), got 'flesh'"),
        (lambda: G.Grid(0, 4), r"rows=0"),
    ],
)
def test_non_dividing_geometry_is_one_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_window_at_fractional_centres():
    w = G.window_at((0.125 + 0.125, 0.25), (16, 16), (32, 64))  # patch 0 moved half a patch (8 px) right
    assert w == G.Window(0, 8, 16, 16)
    with pytest.raises(ValueError, match="leaves the 32x64 frame"):
        G.window_at((0.0, 0.0), (16, 16), (32, 64))


def test_border_mask_marks_only_inner_seams():
    wins = G.Grid(2, 2).windows((8, 8))
    m = G.border_mask(wins, (8, 8), k=1)
    assert m[3, 0] and m[4, 0] and m[0, 3] and m[0, 4]
    assert not m[0, 0] and not m[7, 7] and not m[1, 1]
    assert int(m.sum()) == 28  # two 2-px bands of 8 px, crossing in a 2x2 block: 16 + 16 - 4


def test_geometry_dict_round_trip():
    for g in (G.Grid(4, 8), G.Sliding((16, 16), (8, 8)), G.Sliding((16, 16), (8, 8), edge="exact")):
        assert G.geometry_from_dict(g.to_dict()) == g
    old = {"kind": "sliding", "size": [16, 16], "stride": [8, 8]}  # written before edge existed: exact tiling
    assert G.geometry_from_dict(old).edge == "exact"


def test_frame_time_is_the_one_definition_behind_patch_coordinates():
    ids = torch.tensor([0, 3, 9])
    t = G.frame_time(ids, 10)
    assert t.tolist() == pytest.approx([0.0, 0.3, 0.9]) and t.dtype == torch.float32
    wins = G.Grid(2, 4).windows((32, 64))
    c = G.coords(ids, 10, wins, (32, 64))
    assert c.shape == (3, 8, 3) and torch.equal(c[..., 0], t[:, None].expand(-1, 8))
    assert torch.equal(c, G.coords_at(ids, 10, G.centers(wins, (32, 64))))

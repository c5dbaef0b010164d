"""Atomic writes: all or nothing, and files others can read under the usual umask."""

import os
import stat

import pytest
import torch

from hnerv_lib.utils import io


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        io.save_json({"a": 1}, tmp_path / "x.json")
        io.torch_save({"t": torch.zeros(2)}, tmp_path / "x.pt")
    finally:
        os.umask(old)
    for name in ("x.json", "x.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="half way"):
        with io.atomic_path(tmp_path / "y.txt") as tmp:
            tmp.write_text("partial")
            raise RuntimeError("half way")
    assert list(tmp_path.iterdir()) == []

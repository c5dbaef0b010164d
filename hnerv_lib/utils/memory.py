"""Memory measurements: peak tensor bytes of a piece of work, and peak resident memory of processes.

* :func:`peak_tensor_mb` — tensors alive together while a function runs (activations, gradients), per
  operator through a dispatch mode: exact for eager PyTorch and independent of the allocator.
* :func:`peak_rss_mb` — the high-water mark of this process's resident memory (``ru_maxrss``), or of
  its largest finished child process (a notebook kernel, for the report runner).
"""

from __future__ import annotations

import resource
import sys
import weakref
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks bytes of tensor storages created under the mode and still alive; remembers the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self.live:
                    self.live[key] = size
                    self.current += size
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out


def peak_tensor_mb(fn: Callable[[], Any]) -> float:
    """Peak MiB of tensors allocated while ``fn`` runs and alive together (pre-existing weights excluded).

    Measured per operator through a dispatch mode, so it is exact for eager PyTorch and independent of
    the allocator; operators fused into one kernel count only their outputs.
    """
    with _LiveTensorBytes() as tracker:
        fn()
    return tracker.peak / 2**20


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident MiB of this process so far, or (``children``) of its largest waited-for child."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return usage.ru_maxrss * per_unit / 2**20

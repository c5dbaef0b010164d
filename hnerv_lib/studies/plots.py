"""Drawing rules every study's figures follow, so a reader needs no caption to read them.

- maps (errors, similarities) carry a colourbar with their unit, and panels that are compared share one
  fixed scale (:func:`shared_max`, :func:`map_panel`);
- CLIP similarity maps show the centred cosine beside the raw one, on the fixed scale [-1, 1]: the raw
  cosine of a random teacher's nearly constant targets is saturated (:func:`similarity_panel`);
- legends sit outside the data (:func:`legend_outside`), and axes say their unit.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import seaborn as sns
import torch

ERROR_UNIT = "RMS error (RGB in [0, 1])"


def shared_max(maps: Iterable[torch.Tensor]) -> float:
    """The largest value over every map: one colour scale for panels a reader compares."""
    values = [float(m.max()) for m in maps if m.numel()]
    return max(values) if values else 1.0


def map_panel(fig, ax, image: torch.Tensor, vmax: float, label: str = ERROR_UNIT, band: Optional[torch.Tensor] = None,
              cmap: str = "magma"):
    """A (H, W) map on [0, vmax] with its colourbar; ``band`` (bool, H x W) outlined in cyan."""
    im = ax.imshow(image.numpy(), cmap=cmap, vmin=0.0, vmax=vmax)
    if band is not None:
        ax.contour(band.numpy(), levels=[0.5], colors="c", linewidths=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    return im


def similarity_panel(ax, grid: np.ndarray, title: str, label: str) -> None:
    """A patch-grid heatmap of cosines on the fixed scale [-1, 1], annotated, with its colourbar."""
    sns.heatmap(grid, ax=ax, annot=True, fmt=".3f", vmin=-1, vmax=1, cmap="RdBu_r", cbar=True,
                cbar_kws={"label": label, "shrink": 0.8})
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("patch column")
    ax.set_ylabel("patch row")


def legend_outside(ax, source=None, **kw) -> None:
    """The axes' legend (or the legend of ``source``'s artists) to the right of its data, covering nothing."""
    handles, labels = (source or ax).get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  fontsize=kw.pop("fontsize", 7), **kw)

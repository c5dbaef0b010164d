"""Saving figures and tables that say what they show (video, profile, split, teacher, epochs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from hnerv_lib.utils import io


def caption(what: str, *, video: str, profile: str, teacher: str, split: Optional[str] = None,
            epochs: Optional[int] = None) -> str:
    """One caption line: what is shown, then the provenance every figure and table must carry."""
    parts = [f"video {video}", f"profile {profile}"]
    if split:
        parts.append(split)
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    parts.append(f"CLIP teacher {teacher}")
    return f"{what} — " + "; ".join(parts)


def save_figure(fig, report_dir: str | Path, name: str, caption_text: str) -> Path:
    """Write ``figures/<name>.png`` with the caption printed under the plot (and in ``<name>.txt``), atomically."""
    fig.text(0.5, -0.01, caption_text, ha="center", va="top", fontsize=7, wrap=True, color="0.3")  # below the axes
    target = Path(report_dir) / "figures" / f"{name}.png"
    with io.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    with io.atomic_path(target.with_suffix(".txt")) as tmp:  # the caption again, for summary.md
        tmp.write_text(caption_text + "\n")
    return target


def save_table(df, report_dir: str | Path, name: str, caption_text: str) -> Path:
    """Write ``tables/<name>.csv`` and a Markdown twin with the caption above the table."""
    base = Path(report_dir) / "tables" / name
    with io.atomic_path(base.with_suffix(".csv")) as tmp:
        df.to_csv(tmp, index=False)
    with io.atomic_path(base.with_suffix(".md")) as tmp:
        tmp.write_text(f"**{caption_text}**\n\n{df.to_markdown(index=False)}\n")
    return base.with_suffix(".csv")

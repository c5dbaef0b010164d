"""``reports/<profile>/summary.md``: the key tables and figures of a report, and how it was made.

Built only from what the notebooks wrote (``tables/*.md`` with their captions, ``figures/*.png`` with
``<name>.txt`` captions, ``provenance.json``), so it can never disagree with them. A notebook that has
not run under the profile is listed as such. ``reports/README.md`` is rewritten to link every summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hnerv_lib.utils import io

# Per notebook: its title, the tables and the figures the summary shows (the rest stay one link away).
KEY_ITEMS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "00_data_prep": ("Data, geometry and CLIP targets", ("00_data_prep", "00_target_diversity"),
                     ("00_frame_strip", "00_geometry", "00_target_similarity")),
    "01_full_frame_training": ("Full-frame HNeRV + CLIP map", ("01_full_frame", "01_clip_verification", "01_verdict"),
                               ("01_reconstructions", "01_curves", "01_embedding_space")),
    "02_patch_training": ("Patch dual-head", ("02_summary", "02_clip_metrics", "02_seams", "02_continuous_queries", "02_verdict"),
                          ("02_reconstructions", "02_continuous_queries")),
    "03_tubelet_embedding": ("2D patches vs 3D tubelets", ("03_pan_summary", "03_tubelets_summary", "03_claims", "03_verdict"),
                             ("03_pan", "03_pan_curves", "03_tubelets")),
    "04_ablations": ("Ablations", ("04_clip_weight", "04_warmup", "04_loss", "04_predict_clip", "04_size",
                                   "04_failures", "04_verdict"), ("04_pareto", "04_warmup_curves", "04_size")),
    "05_comparison": ("Full frame vs patch, compared fairly",
                      ("05_comparison", "05_unseen_fair", "05_time_to_quality", "05_verdict"),
                      ("05_comparison", "05_unseen_fair")),
    "06_semantic_search": ("Semantic search", ("06_search_agreement", "06_verdict"), ("06_ranking_agreement", "06_search_results")),
    "07_rate_distortion": ("Rate-distortion against codecs", ("07_bd_rate", "07_clip_cost", "07_verdict"),
                           ("07_rate_distortion",)),
}


# What a reader sees first: the codec question (rate-distortion against real codecs) and the fair
# comparison, then every generated verdict (each states its intervals), then the figures that carry the
# most information; the per-notebook sections below repeat none of them.
LEAD_FIGURES = ("07_rate_distortion", "05_unseen_fair")
LEAD_TABLES = ("05_comparison", "05_unseen_fair", "07_bd_rate")
INFORMATIVE_FIGURES = ("05_comparison", "00_target_similarity", "01_per_frame", "01_clip_map", "02_error_maps",
                       "02_clip_map", "02_continuous_queries", "04_pareto")


def _verdict(report_dir: Path, stem: str) -> list[str]:
    """The notebook's generated verdict as a paragraph (its text, without the table around it)."""
    csv = report_dir / "tables" / f"{stem[:2]}_verdict.csv"
    if not csv.is_file():
        return []
    text = str(pd.read_csv(csv).iloc[0, 0])
    return [f"**{stem[:2]} · {KEY_ITEMS[stem][0]}.** {text}", ""]


def _figure(report_dir: Path, name: str) -> list[str]:
    png = report_dir / "figures" / f"{name}.png"
    if not png.is_file():
        return []
    txt = png.with_suffix(".txt")
    cap = txt.read_text().strip() if txt.is_file() else name
    return [f"![{name}](figures/{name}.png)", "", f"*{cap}*", ""]


def _table(report_dir: Path, name: str) -> list[str]:
    md = report_dir / "tables" / f"{name}.md"
    return [md.read_text().strip(), ""] if md.is_file() else []


def _teacher_line(report_dir: Path) -> str:
    caps = " ".join(p.read_text() for p in (report_dir / "tables").glob("*.md")) if (report_dir / "tables").is_dir() else ""
    if "random init" in caps:
        return ("> **The CLIP teacher was randomly initialised** (no CLIP weights were given, or none could be "
                "obtained where this report was made). Its targets are deterministic but carry no semantics: CLIP "
                "similarities show that the networks fit the targets, not that they understand the video.")
    return "> The CLIP teacher is named in every caption."


def provenance_rows(prov: dict[str, Any]) -> list[str]:
    """The provenance table: commit, machine, package versions, wall time and peak memory per notebook."""
    rows = ["| item | value |", "|---|---|",
            f"| git commit | `{prov.get('git_commit', '?')}` |", f"| made (UTC) | {prov.get('made_utc', '?')} |",
            f"| CPU | {prov.get('cpu', '?')} ({prov.get('cpu_cores', '?')} cores) |",
            f"| CPU flags | {prov.get('cpu_flags', 'not recorded')} |", f"| GPU | {prov.get('gpu', 'none')} |",
            f"| platform | {prov.get('platform', '?')} |", f"| python | {prov.get('python', '?')} |"]
    hw = prov.get("hardware")
    if hw:
        rows.append(f"| training precision | {hw['precision']}{' + channels_last' if hw['channels_last'] else ''} "
                    f"(asked: {hw.get('asked', '?')}; {hw['reason']}) |")
    rows += [f"| {name} | {version} |" for name, version in sorted(prov.get("packages", {}).items())]
    walls, peaks, made = prov.get("wall_seconds", {}), prov.get("peak_rss_mb", {}), prov.get("notebooks", {})
    rows += ["", "| notebook | wall time (s) | peak kernel memory (MiB) | git commit | made (UTC) | training precision |",
             "|---|---|---|---|---|---|"]
    for nb in sorted(walls):
        peak, m = peaks.get(nb), made.get(nb, {})
        rows.append(f"| {nb} | {walls[nb]:.1f} | {'' if peak is None else f'{peak:.0f}'} | `{m.get('git_commit', '?')}` | "
                    f"{m.get('made_utc', '?')} | {m.get('precision', '?')} |")
    rows.append(f"| **total** | **{sum(walls.values()):.1f}** ({sum(walls.values()) / 60:.1f} min) | "
                f"**{max(peaks.values(), default=0):.0f}** | | | |")
    if len({m.get("git_commit") for m in made.values()}) > 1:
        rows += ["", "> The notebooks of this report were made at different commits (table above): the top rows "
                 "name the latest run only."]
    return rows


def write_summary(report_dir: str | Path) -> Path:
    """Write ``report_dir/summary.md`` from the report's tables, figures and provenance."""
    report_dir = Path(report_dir)
    prov = io.load_json(report_dir / "provenance.json") if (report_dir / "provenance.json").is_file() else {}
    profile = prov.get("profile", report_dir.name)
    lines = [f"# Report summary — profile `{profile}`", "",
             "The codec question and the fair comparison first, then every generated verdict, the most informative "
             "figures, and the key tables of each notebook; each executed notebook (`.ipynb`, `.html`) and every "
             "table (`tables/`, CSV + Markdown) sits beside this file.", "", _teacher_line(report_dir), "",
             "## Rate-distortion and the fair comparison", ""]
    lines += [x for name in LEAD_FIGURES for x in _figure(report_dir, name)]
    lines += [x for name in LEAD_TABLES for x in _table(report_dir, name)]
    lines += ["## Verdicts (generated from the numbers; a winner only where 95 % intervals separate)", ""]
    lines += [x for stem in KEY_ITEMS for x in _verdict(report_dir, stem)]
    lines += ["## Figures", ""]
    lines += [x for name in INFORMATIVE_FIGURES for x in _figure(report_dir, name)]
    shown = {*LEAD_TABLES, *(f"{stem[:2]}_verdict" for stem in KEY_ITEMS)}
    drawn = {*LEAD_FIGURES, *INFORMATIVE_FIGURES}
    for stem, (title, tables, figures) in KEY_ITEMS.items():
        lines += [f"## {stem[:2]} · {title}", ""]
        if not (report_dir / f"{stem}.ipynb").is_file():
            lines += [f"*Not run under this profile* (`{stem}.ipynb`).", ""]
            continue
        lines += [f"Notebook: [{stem}.html]({stem}.html)", ""]
        for name in tables:
            lines += [] if name in shown else _table(report_dir, name)
        for name in figures:
            lines += [] if name in drawn else _figure(report_dir, name)
    lines += ["## Provenance", "", *provenance_rows(prov), ""]
    target = report_dir / "summary.md"
    with io.atomic_path(target) as tmp:
        tmp.write_text("\n".join(lines))
    return target


def write_index(reports_root: str | Path) -> Path:
    """Rewrite ``reports_root/README.md``: one line per profile folder, linking its summary."""
    root = Path(reports_root)
    rows = []
    for summary in sorted(root.glob("*/summary.md")):
        prov_path = summary.parent / "provenance.json"
        prov = io.load_json(prov_path) if prov_path.is_file() else {}
        walls = prov.get("wall_seconds", {})
        rows.append(f"| `{summary.parent.name}` | [summary]({summary.parent.name}/summary.md) | {len(walls)} | "
                    f"{sum(walls.values()) / 60:.1f} | `{prov.get('git_commit', '?')}` | {prov.get('cpu', '?')} | "
                    f"{prov.get('gpu', 'none')} |")
    text = "\n".join([
        "# reports/", "",
        "One folder per profile, written by `make report PROFILE=<profile>` (or `python -m hnerv_lib.report "
        "--profile <profile>`): the executed notebooks (`.ipynb` and `.html`), `figures/`, `tables/` (CSV + "
        "Markdown with captions), `provenance.json` and `summary.md`. This page is rewritten by every report run.",
        "", "| profile | summary | notebooks | wall time (min) | git commit | CPU | GPU |", "|---|---|---|---|---|---|---|",
        *rows, "",
        "Every caption names the video, profile, split, epochs and the CLIP teacher. A teacher described as "
        "\"random init\" means no CLIP weights were given or could be obtained where the report was made: such "
        "targets are deterministic but carry no semantics. A teacher read from a file is named by the file's "
        "basename and the first 12 hex digits of its sha256.", "",
    ])
    target = root / "README.md"
    with io.atomic_path(target) as tmp:
        tmp.write_text(text)
    return target

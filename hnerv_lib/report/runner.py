"""Run the numbered notebooks of a profile with papermill into ``reports/<profile>/``.

    python -m hnerv_lib.report --profile smoke --only 00

Each notebook ``notebooks/NN_name.ipynb`` is executed with the profile's parameters into
``reports/<profile>/NN_name.ipynb`` and exported to HTML beside it. The run stops at the first
failing notebook and names it. Nothing is written outside the report dir, the runs dir and the cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from hnerv_lib import __version__
from hnerv_lib.data.teacher import WeightsUnavailableError
from hnerv_lib.report.params import NOTEBOOK_PARAMS, from_namespace, load_profile, parse_params
from hnerv_lib.report.summary import write_index, write_summary
from hnerv_lib.train.config import legacy_bf16
from hnerv_lib.train.launch import EXECUTORS
from hnerv_lib.utils import io
from hnerv_lib.utils.cli import add_debug_flag, guarded
from hnerv_lib.utils.memory import peak_rss_mb
from hnerv_lib.utils.parse import assignments
from hnerv_lib.utils.precision import cpu_flags, cpu_model, describe, resolve

REPO = Path(__file__).resolve().parents[2]


class NotebookFailed(RuntimeError):
    """A notebook of the report raised; the message names it and where its executed copy is."""


@dataclass
class ReportRun:
    """What to run and where it goes."""

    profile: str = "quick"  # params/<profile>.yaml
    only: Optional[list[str]] = None  # notebook number prefixes ("00", "01"); None = all
    reports_root: Path = REPO / "reports"  # report goes to reports_root/<profile>/
    cache_dir: Path = REPO / "data" / "cache"  # decoded frames and CLIP targets
    run_root: Path = REPO / "runs"  # training runs
    notebooks_dir: Path = REPO / "notebooks"
    params_dir: Path = REPO / "params"
    overrides: dict[str, Any] = field(default_factory=dict)  # extra -p key=value parameters (strings are parsed)
    html: bool = True  # export each executed notebook to HTML


def notebooks(notebooks_dir: Path, only: Optional[Sequence[str]] = None) -> list[Path]:
    """Numbered notebooks in order, optionally filtered by number prefix."""
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {str(o).zfill(2) for o in only}
        found = [p for p in found if p.name[:2] in wanted]
        missing = wanted - {p.name[:2] for p in found}
        if missing:
            raise ValueError(f"--only names notebooks that do not exist: {sorted(missing)}")
    return found


def _export_html(executed: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    target = executed.with_suffix(".html")
    with io.atomic_path(target) as tmp:
        tmp.write_text(body)
    return target


def _for_notebook(stem: str, params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The profile keys this notebook declares, plus every explicit override (so a typo still fails)."""
    cls = NOTEBOOK_PARAMS.get(stem)
    if cls is None:
        return params
    names = {f.name for f in fields(cls)}
    return {**{k: v for k, v in params.items() if k in names}, **overrides}


def _git_commit() -> str:
    """Short commit of the checkout, with ``+dirty`` when tracked files outside reports/ differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               cwd=REPO, capture_output=True, text=True)  # a report's own files do not count
        return (head.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def run_report(cfg: ReportRun) -> dict[str, float]:
    """Execute the notebooks; returns wall seconds per notebook. Raises NotebookFailed on the first failure."""
    import papermill as pm

    report_dir = Path(cfg.reports_root) / Path(cfg.profile).stem
    overrides = parse_params(cfg.overrides, where="-p ")
    params = {
        **load_profile(cfg.profile, cfg.params_dir),
        "report_dir": str(report_dir), "cache_dir": str(cfg.cache_dir), "run_root": str(cfg.run_root),
        **overrides,
    }
    chosen = notebooks(cfg.notebooks_dir, cfg.only)
    for nb in chosen:  # every notebook's parameters (and the teacher) are checked before anything is written
        cls = NOTEBOOK_PARAMS.get(nb.stem)
        if cls is not None:
            from_namespace(cls, _for_notebook(nb.stem, params, overrides))
    # The kernel must be this interpreter (the venv), whatever `python` on PATH is.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    report_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for nb in chosen:
        executed = report_dir / nb.name
        start = time.perf_counter()
        print(f"[report] {cfg.profile}: running {nb.name} ...", flush=True)
        try:
            pm.execute_notebook(str(nb), str(executed), parameters=_for_notebook(nb.stem, params, overrides),
                                kernel_name="python3",
                                cwd=str(REPO), progress_bar=False)
        except Exception as err:
            raise NotebookFailed(f"notebook {nb.name} failed ({type(err).__name__}); executed copy with the "
                                 f"traceback: {executed}\n{err}") from err
        timings[nb.name] = round(time.perf_counter() - start, 1)
        peaks[nb.name] = round(peak_rss_mb(children=True), 1)  # the kernel has exited and been waited for
        if cfg.html:
            _export_html(executed)
        print(f"[report] {nb.name} done in {timings[nb.name]} s", flush=True)
    _write_provenance(report_dir, cfg, params, timings, peaks)
    write_summary(report_dir)
    write_index(report_dir.parent)
    return timings


PACKAGES = ("torch", "torchvision", "open_clip_torch", "numpy", "pandas", "av", "pytorch-msssim", "papermill",
            "matplotlib", "seaborn")  # versions recorded in every report's provenance


def machine() -> dict[str, Any]:
    """CPU model and cores, GPU model (or "none"), platform, python and package versions."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpu_cores": os.cpu_count(), "gpu": gpu, "platform": platform.platform(),
            "python": platform.python_version(), "packages": {n: ver(n) for n in PACKAGES}}


def hardware(params: dict[str, Any]) -> dict[str, Any]:
    """What the profile's ``precision`` / ``channels_last`` resolve to on this machine, and why."""
    params = legacy_bf16(params)
    asked = (params.get("precision", "auto"), params.get("channels_last", "auto"))
    hw = resolve(*asked, params.get("device", "cpu"))
    return {**describe(hw), "asked": f"precision={asked[0]}, channels_last={str(asked[1]).lower()}"}


def _made_with(commit: str, made: str, hw: Optional[dict]) -> dict[str, str]:
    """How one notebook's outputs were made: commit, time and training precision."""
    precision = f"{hw['precision']}{' + channels_last' if hw['channels_last'] else ''}" if hw else "fp32 (before precision: auto)"
    return {"git_commit": commit, "made_utc": made, "precision": precision}


def _earlier_notebooks(old: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per-notebook records of an existing provenance file; notebooks run before these records existed
    inherit that file's top-level commit, time and precision (what made them)."""
    known = dict(old.get("notebooks", {}))
    for nb in old.get("wall_seconds", {}):
        known.setdefault(nb, _made_with(old.get("git_commit", "?"), old.get("made_utc", "?"), old.get("hardware")))
    return known


def _write_provenance(report_dir: Path, cfg: ReportRun, params: dict, timings: dict[str, float],
                      peaks: dict[str, float]) -> None:
    path = report_dir / "provenance.json"
    old = io.load_json(path) if path.is_file() else {}
    commit, made, hw = _git_commit(), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"), hardware(params)
    record = {
        "profile": cfg.profile, "git_commit": commit, "hnerv_lib": __version__,
        "made_utc": made, **machine(), "parameters": params,
        "hardware": hw,
        "wall_seconds": {**old.get("wall_seconds", {}), **timings},
        "peak_rss_mb": {**old.get("peak_rss_mb", {}), **peaks},
        "notebooks": {**_earlier_notebooks(old), **{nb: _made_with(commit, made, hw) for nb in timings}},
        "peak_rss_note": "largest resident memory of any notebook kernel finished so far in the run (a running "
                         "maximum: a notebook's own peak is at most its value, and equal to it where it rose)",
    }
    io.save_json(record, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m hnerv_lib.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick", help="params/<profile>.yaml (smoke, quick, cpu, paper)")
    ap.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 00,01")
    ap.add_argument("-p", "--param", action="append", default=[], help="override a parameter: key=value")
    ap.add_argument("--reports-root", default=str(REPO / "reports"))
    ap.add_argument("--no-html", action="store_true", help="skip the HTML export")
    ap.add_argument("--executor", choices=list(EXECUTORS), default=None,
                    help="where the training notebooks' runs train (the profile's executor unless given): "
                         "inline, local processes or slurm jobs; same as -p executor=...")
    ap.add_argument("--jobs", type=int, default=None, help="runs at a time (-p executor_jobs=...)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    return guarded("python -m hnerv_lib.report", lambda: _run(args), args,
                   user_errors=(WeightsUnavailableError,), failures=(NotebookFailed,))


def _run(args: argparse.Namespace) -> int:
    overrides = assignments(args.param, "-p")
    if args.executor is not None:
        overrides["executor"] = args.executor
    if args.jobs is not None:
        overrides["executor_jobs"] = args.jobs
    cfg = ReportRun(profile=args.profile, only=args.only.split(",") if args.only else None,
                    reports_root=Path(args.reports_root), overrides=overrides, html=not args.no_html)
    timings = run_report(cfg)
    print(f"[report] {cfg.profile}: {len(timings)} notebooks, {sum(timings.values()):.1f} s: {timings}")
    return 0

if __name__ == "__main__":
    sys.exit(main())

"""Notebook conventions, and each notebook executed end to end under the smoke profile."""

import ast
import json
import typing
from dataclasses import fields
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from hnerv_lib.report.params import DEPRECATED, NOTEBOOK_PARAMS
from hnerv_lib.report.runner import ReportRun, run_report
from hnerv_lib.utils.parse import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _param_cells(nb):
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_matching_its_dataclass(path):
    nb = nbformat.read(path, as_version=4)
    cells = _param_cells(nb)
    assert len(cells) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    tree = ast.parse(cells[0].source)
    assert all(isinstance(node, ast.AnnAssign) for node in tree.body), "flat typed literals only: name: type = value"
    names = [node.target.id for node in tree.body]
    assert all(isinstance(ast.literal_eval(node.value), (int, float, str, list, tuple, type(None))) for node in tree.body)
    for line in cells[0].source.splitlines():
        assert line.startswith("#") or "  # " in line, f"{path.name}: parameter line without a comment: {line!r}"
    # papermill's own reading of the cell (its help and the injected-parameter check) must see every line;
    # its regex gives up on a line whose comment holds "=" and then warns "Passed unknown parameter"
    from papermill.translators import PythonTranslator

    seen = {p.name for p in PythonTranslator.inspect(cells[0])}
    assigned = {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    assert seen == assigned, f"{path.name}: papermill cannot parse the lines of {sorted(assigned - seen)}"
    cls = NOTEBOOK_PARAMS[path.stem]
    assert sorted(names) == sorted(f.name for f in fields(cls) if f.name not in DEPRECATED)
    # names, types and default values: the cell shows exactly what the dataclass (or TrainConfig) declares
    hints, defaults = typing.get_type_hints(cls), cls()
    for node in tree.body:
        name = node.target.id
        # builtins, or a quoted Optional/Union: papermill's parameter regex does not read "X | None"
        text = node.annotation.value if isinstance(node.annotation, ast.Constant) else ast.unparse(node.annotation)
        assert "|" not in text, f"{path.name}: {name}: write Optional[...] / Union[...] in quotes, papermill misses '|'"
        cell_type = eval(text, {"Optional": typing.Optional, "Union": typing.Union})
        assert cell_type == hints[name], f"{path.name}: {name} is {ast.unparse(node.annotation)} in the cell, {hints[name]} in {cls.__name__}"
        value = ast.literal_eval(node.value)
        assert value == getattr(defaults, name) and type(value) is type(getattr(defaults, name)), \
            f"{path.name}: {name} = {value!r} in the cell, {getattr(defaults, name)!r} in {cls.__name__}"
    nxt = nb.cells[nb.cells.index(cells[0]) + 1].source
    assert f"from_namespace({cls.__name__}, globals())" in nxt


def _smoke(tmp_path, only, **overrides):
    cfg = ReportRun(profile="smoke", only=only, reports_root=tmp_path / "reports", cache_dir=tmp_path / "cache",
                    run_root=tmp_path / "runs", overrides=overrides)
    return cfg, run_report(cfg)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_smoke(tmp_path, path):
    cfg, timings = _smoke(tmp_path, [path.name[:2]])
    out = tmp_path / "reports" / "smoke"
    assert (out / path.name).is_file() and (out / path.with_suffix(".html").name).is_file()
    assert list(timings) == [path.name]
    assert any((out / "figures").glob("*.png")) and any((out / "tables").glob("*.md"))
    summary = (out / "summary.md").read_text()  # the runner gathers the report and says how it was made
    assert "## Provenance" in summary and f"| {path.name} |" in summary
    assert json.loads((out / "provenance.json").read_text())["peak_rss_mb"][path.name] > 0
    assert "[summary](smoke/summary.md)" in (tmp_path / "reports" / "README.md").read_text()
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()}
    assert written <= {"reports", "cache", "runs"}
    for table in (out / "tables").glob("*.csv"):
        assert not unseen_without_input(pd.read_csv(table)), f"{table.name} has unseen-frame numbers but no test-time input"


def unseen_without_input(df: "pd.DataFrame") -> bool:
    """Whether a table reports a number on unseen frames without saying what the model saw of them."""
    says = any("test-time input" in str(c) for c in df.columns) or \
        ("quantity" in df and df["quantity"].astype(str).str.contains("test-time input").any())
    unseen = any(str(c).startswith(("psnr_val", "clip_centred_val", "ssim_val", "PSNR val")) for c in df.columns) or \
        any(c in df and (df[c] == "val").any() for c in ("split", "frames")) or \
        ("quantity" in df and df["quantity"].astype(str).str.startswith("psnr_val").any())
    return unseen and not says


def test_unknown_parameter_is_refused_before_any_notebook_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['epochz'\]"):
        _smoke(tmp_path, ["00"], epochz=3)
    assert not (tmp_path / "reports").exists()


def test_papermill_alone_fails_the_notebook_on_an_unknown_or_mistyped_parameter(tmp_path):
    import papermill as pm  # what a user running papermill by hand gets: the notebook's second cell refuses

    for params, message in [({"epochz": 3}, "unknown key epochz=3"), ({"split": 91010}, "split=91010 is not a tuple")]:
        with pytest.raises(pm.PapermillExecutionError, match=message):
            pm.execute_notebook(str(NOTEBOOKS[0]), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="python3",
                                cwd=str(ROOT), progress_bar=False)


def test_rerunning_data_prep_recomputes_no_target(tmp_path):
    _smoke(tmp_path, ["00"])
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert any("targets" in p.parts for p in before)
    _smoke(tmp_path, ["00"])
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert after == before  # no cache file was rewritten or added


# Notebooks orchestrate; experiment logic lives in hnerv_lib.studies (issue 32). Code lines outside the
# parameters cell (blank lines and comment-only lines not counted) must stay at or under MAX_CODE_LINES.
MAX_CODE_LINES = 40


def code_lines(nb) -> int:
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    return sum(1 for c in cells for line in c.source.splitlines() if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_only_orchestrates(path):
    n = code_lines(nbformat.read(path, as_version=4))
    assert n <= MAX_CODE_LINES, (f"{path.name}: {n} code lines outside the parameters cell (at most {MAX_CODE_LINES}); "
                                 "move the logic to a study module in hnerv_lib.studies")


def test_the_ablation_sweep_runs_as_local_jobs_and_a_rerun_submits_nothing(tmp_path, monkeypatch):
    """Notebook 04 under smoke with ``executor: local`` (2 processes): every run lands in its directory,
    the plan says where they trained, and the same report again reuses every run."""
    few = dict(executor="local", executor_jobs=2, ablate_families=["full"], ablate_groups=["clip_weight"],
               clip_weights=[0.0, 0.5])  # two runs: the plumbing, not the science
    _smoke(tmp_path, ["04"], **few)
    runs = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert runs and all((p / "summary.json").is_file() for p in runs)
    assert any((tmp_path / "runs" / ".submitit").iterdir())  # the jobs' logs
    assert "trained local" in (tmp_path / "reports" / "smoke" / "04_ablations.ipynb").read_text()
    before = {p.name: (p / "summary.json").stat().st_mtime for p in runs}
    _smoke(tmp_path, ["04"], **few)
    assert len(runs) == 2 and {p.name: (p / "summary.json").stat().st_mtime for p in runs} == before


def test_the_tubelet_notebook_runs_with_the_camera_pan_alone(tmp_path):
    """quick studies only the camera pan (the arrow of time put no variant above chance at its size):
    notebook 03 then shows the pan's tables and figures and says nothing of the other task."""
    _smoke(tmp_path, ["03"], tube_tasks=["camera pan"])
    out = tmp_path / "reports" / "smoke"
    assert (out / "tables" / "03_pan_summary.md").is_file() and (out / "figures" / "03_pan.png").is_file()
    assert not list((out / "tables").glob("03_tubelet*")) and not (out / "tables" / "03_clip_split.md").is_file()
    verdict = (out / "tables" / "03_verdict.md").read_text()
    assert "Camera pan" in verdict and "Arrow of time" not in verdict

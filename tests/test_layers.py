"""The package's layering: a folder imports only from folders below it, and never inside a function.

Ranks follow the map in ``hnerv_lib/__init__.py``. A module may import its own folder; anything else must
rank strictly lower. Function-local ``hnerv_lib`` imports are refused everywhere: they are how cycles hide.
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hnerv_lib"
RANK = {"utils": 0, "data": 1, "models": 2, "eval": 3, "codec": 4, "train": 5, "studies": 6, "report": 7}
TOP = 8  # bench.py, compress.py, action.py, __init__.py


def _layer(module: str) -> str:
    """``hnerv_lib.train.config`` -> ``train``; top-level modules -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else ""


def _rank(module: str) -> int:
    if module == "hnerv_lib":
        return -1  # the package root holds only __version__ and imports nothing (checked below)
    layer = _layer(module)
    return RANK[layer] if layer else TOP


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Resolve ``from ..x import y`` inside ``module`` to the absolute module name it names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(tree: ast.AST, module: str = "", is_package: bool = False):
    """(imported module, lineno, inside a function?) for every hnerv_lib import in a module."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                source = _absolute(module, is_package, child)
                if source.startswith("hnerv_lib"):
                    found.append((source, child.lineno, nested))
            elif isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names if a.name.startswith("hnerv_lib"))
            visit(child, nested)

    visit(tree, False)
    return found


def violations(root: Path = PKG) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        for target, line, in_function in _imports(tree, module, path.name == "__init__.py"):
            where = f"{path.relative_to(root.parent)}:{line}"
            if in_function:
                out.append(f"{where}: function-local import of {target}")
            elif _rank(target) > _rank(module):
                out.append(f"{where}: {module} ({_layer(module) or 'top'}) imports upward {target}")
    return out


def test_no_upward_or_function_local_imports():
    assert violations() == []


def test_package_root_imports_nothing():
    tree = ast.parse((PKG / "__init__.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_every_folder_has_a_rank():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(RANK), f"unranked or missing folders: {folders ^ set(RANK)}"


@pytest.mark.parametrize("source, expected", [
    ("from hnerv_lib.report.figures import save_figure\n", "imports upward hnerv_lib.report.figures"),
    ("def f():\n    from hnerv_lib.utils.io import atomic_write\n", "function-local import"),
    ("from ..report import params\n", "imports upward hnerv_lib.report"),
])
def test_the_checker_catches_a_planted_violation(tmp_path, source, expected):
    pkg = tmp_path / "hnerv_lib"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "bad.py").write_text(source)
    found = violations(pkg)
    assert len(found) == 1 and expected in found[0], found


def test_tests_mirror_the_package_folders():
    tests = Path(__file__).resolve().parent
    folders = {p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders <= set(RANK), f"test folders with no package folder: {sorted(folders - set(RANK))}"
    assert set(RANK) <= folders, f"package folders without tests: {sorted(set(RANK) - folders)}"


def import_cycles(root: Path = PKG) -> list[list[str]]:
    """Cycles in the graph of module-level ``hnerv_lib`` imports (a ``from pkg import sub`` is an edge to sub)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(module, path.name == "__init__.py", node)
                subs = {f"{source}.{a.name}" for a in node.names} & set(modules)
                edges |= subs or ({source} & set(modules))
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names} & set(modules)
        graph[module] = edges - {module}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycles():
    assert import_cycles() == []


def test_the_cycle_finder_catches_a_planted_cycle(tmp_path):
    pkg = tmp_path / "hnerv_lib"
    (pkg / "train").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "a.py").write_text("from hnerv_lib.train.b import x\n")
    (pkg / "train" / "b.py").write_text("from hnerv_lib.train import a\n")
    assert import_cycles(pkg) == [["hnerv_lib.train.a", "hnerv_lib.train.b", "hnerv_lib.train.a"]]


def test_test_file_names_are_unique():
    """pytest imports test modules by basename (no __init__.py here): two equal names break collection."""
    tests = Path(__file__).resolve().parent
    names = [p.name for p in tests.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []

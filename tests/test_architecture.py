"""The package's shape: no import cycles, no lower layer importing a higher one, one place that renames files.

The import graph is built from the source with ``ast`` (every ``import`` / ``from ... import``, also those
inside functions, so a lazy import counts as much as a top-level one). Layers are those of
``docs/architecture.md``; a module's layer is that of the longest matching prefix below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ignite_cv"

#: Layer of each module prefix (dotted, relative to ``ignite_cv``); the longest prefix wins.
LAYERS = {
    "utils": 0,
    "config": 1,
    "data": 1,
    "models": 1,
    "pipeline": 1,
    "task": 1,
    "roc": 1,
    "binary": 1,
    "defaults": 1,
    "weights": 1,
    "training_state": 1,
    "prune": 1,  # the package's __init__ (a docstring); its modules have their own layers
    "profile": 1,
    "prune.history": 1,
    "prune.options": 1,
    "profile.options": 1,
    "metrics": 2,
    "engine": 2,
    "handlers": 2,
    "phases": 2,
    "report": 2,
    "figures": 2,
    "image_grid": 2,
    "run_folder": 2,
    "profile.model": 2,
    "profile.report": 2,
    "profile.ignite_profilers": 2,
    "prune.core": 2,
    "prune.report": 2,
    "training": 3,
    "evaluation": 3,
    "prune.workflow": 3,
    "profile.run": 3,
    "inference": 3,
    "studies": 3,
    "explain": 3,
    "explain.options": 1,
    "ensemble": 3,
    "features": 3,
    "tuning": 3,  # the search (Optuna): pruning hook, study, results, refit, command line
    "tuning.space": 1,
    "tuning.options": 1,
    "cli": 4,
    "recipe_loader": 4,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The ignite_cv modules ``path`` imports (``from a.b import c`` is ``a.b.c`` when c is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if _is_module(n) else node.module for n in names]
        else:
            continue
        found |= {n for n in names if n.startswith("ignite_cv.")}
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The layer of ``ignite_cv.x.y``; None for the package itself (``ignite_cv/__init__.py``)."""
    relative = module.removeprefix("ignite_cv").lstrip(".")
    if not relative:
        return None
    matches = [p for p in LAYERS if relative == p or relative.startswith(p + ".")]
    if not matches:
        raise AssertionError(f"{module} has no layer: add it to LAYERS here and to docs/architecture.md")
    return LAYERS[max(matches, key=len)]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None, " → ".join(find_cycle(import_graph()))


def test_no_module_imports_a_higher_layer():
    wrong = []
    for module, imported in import_graph().items():
        own = layer_of(module)
        for other in imported:
            theirs = layer_of(other)
            if own is not None and theirs is not None and theirs > own:
                wrong.append(f"{module} (layer {own}) imports {other} (layer {theirs})")
    assert wrong == []


def test_the_bottom_layer_imports_nothing_else_of_ours():
    graph = import_graph()
    outside = {
        f"{m} → {i}" for m, imported in graph.items() if m.startswith("ignite_cv.utils") for i in imported
    }
    assert {edge for edge in outside if "ignite_cv.utils" not in edge.split(" → ")[1]} == set()


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("ignite_cv.prune.history") == 1 and layer_of("ignite_cv.prune.workflow") == 3
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("ignite_cv.nowhere")


def test_only_the_atomic_write_module_renames_files_into_place():
    renaming = sorted(
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if "os.replace(" in p.read_text() or ".rename(" in p.read_text()
    )
    assert renaming == ["ignite_cv.utils.atomic"]

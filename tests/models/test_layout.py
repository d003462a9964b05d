"""The layout of ``lstm_madness.models``: imports between its modules run one way (no
cycle, counting imports inside functions), no module imports another's private names, and
no module is longer than 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import lstm_madness.models

PACKAGE = "lstm_madness.models"
ROOT = Path(lstm_madness.models.__file__).parent
MAX_LINES = 600


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(ROOT.glob("*.py"))
        if path.stem != "__init__"
    }


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """Every import anywhere in the module: (module imported from, names)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the package it imports (``from lstm_madness.models import
    x`` counts as importing ``x``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for source, names in _imports(tree):
            if source == PACKAGE:
                graph[name] |= {n for n in names if n in modules}
            elif source.startswith(PACKAGE + "."):
                graph[name].add(source.removeprefix(PACKAGE + ".").split(".")[0])
    return graph


def test_imports_inside_models_have_no_cycle():
    graph = import_graph()
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join([*path, node])}"
        state[node] = "open"
        for dep in sorted(graph[node]):
            visit(dep, [*path, node])
        state[node] = "done"
        order.append(node)

    for node in sorted(graph):
        visit(node, [])
    # the trainers sit between the estimator and the protocol
    assert graph["lstm"] >= {"training", "protocol"}
    assert graph["training"] >= {"torch_trainer", "batched", "compiled"}
    for engine in ("torch_trainer", "batched", "compiled", "protocol", "network"):
        assert not graph[engine] & {"lstm", "training"}, engine


def test_no_private_names_are_imported_across_modules():
    tests = Path(__file__).parent
    trees = dict(_modules())
    trees |= {f"tests/{p.name}": ast.parse(p.read_text()) for p in tests.glob("test_*.py")}
    private = [
        (name, source, imported)
        for name, tree in trees.items()
        for source, names in _imports(tree)
        if source.startswith(PACKAGE)
        for imported in names
        if imported.startswith("_")
    ]
    assert private == []


def test_modules_are_at_most_600_lines():
    long = {
        path.name: n
        for path in ROOT.glob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}

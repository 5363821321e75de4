"""No module of the package imports, directly or through others, a module that imports it back.

Every ``import`` counts, including one deferred into a function: a deferred import only hides a
cycle from the interpreter (the modules still depend on each other both ways); the layers lean
on it solely to open the notebook layer from a convenience method, which is no cycle.
Imports are read from the source, relative and absolute alike, so a cycle is found even in
code no test runs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "charrnn_magic"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its source."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from . import checkpoint` imports a submodule; `from .train import run` a module.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                       else source for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` runs a and a.b too; the nearest module of the package is the edge.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the list of its modules, first repeated at the end; None."""
    state: dict[str, str] = {}          # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_of_the_package_is_part_of_an_import_cycle():
    graph = import_graph()
    assert len(graph) >= 30
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": set(), "c": {"c2"}, "c2": {"c"}}, ["c", "c2", "c"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None),
])
def test_the_cycle_finder_names_a_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_deferred_and_relative_imports_are_read():
    """The reader sees an import inside a function and resolves ``..`` and ``from . import x``."""
    modules = package_modules()
    graph = import_graph()
    assert "charrnn_magic.notebook.panel" in graph["charrnn_magic.charrnn"]      # deferred
    assert "charrnn_magic.checkpoint" in graph["charrnn_magic.charrnn"]   # from . import x
    assert "charrnn_magic.charrnn" in graph["charrnn_magic.notebook.magic_base"]   # from ..charrnn
    assert set(graph) == set(modules)

"""The package's three layers import only downwards: engine <- notebook <- entry.

- The engine (the modules at the top of ``charrnn_magic``) imports neither the notebook layer
  nor IPython, ipywidgets, traitlets or ipykernel: it works in a plain Python process.
- The notebook layer (``charrnn_magic.notebook``) imports engine modules, never the entry
  (``charrnn_magic/__init__.py``), so the entry can re-export from both.

Imports are read from the source (every ``import``, also inside functions), so a lazy import
that breaks the rule is caught even when no test runs it.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "charrnn_magic"
FRONT_END = {"IPython", "ipywidgets", "traitlets", "ipykernel"}
#: Where the engine may reach up, and why: a convenience method that opens the notebook layer
#: only when a user calls it.
ALLOWED_UPWARD = {("charrnn.py", "charrnn_magic.notebook.panel"),
                  ("charrnn.py", "charrnn_magic.notebook.inspector")}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            if node.module or not node.level:
                found.add(name)
            else:                     # `from .. import progress`: the submodules themselves
                found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_engine_imports_no_front_end():
    engine = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(engine) >= 10
    for path in engine:
        for name in imports(path):
            if (path.name, name) in ALLOWED_UPWARD:
                continue
            assert top(name) not in FRONT_END, f"{path.name} imports {name}"
            assert not name.startswith("charrnn_magic.notebook"), f"{path.name} imports {name}"


def test_the_notebook_layer_imports_engine_modules_not_the_entry():
    notebook = list((PACKAGE / "notebook").glob("*.py"))
    assert len(notebook) >= 5
    for path in notebook:
        for name in imports(path):
            if name.startswith("charrnn_magic"):
                assert name != "charrnn_magic" and not name.startswith("charrnn_magic.__"), (
                    f"notebook/{path.name} imports the entry ({name}): import the engine module")


def test_importing_the_api_loads_no_front_end():
    code = ("import sys, charrnn_magic, charrnn_magic.__main__; "
            f"print(sorted({FRONT_END!r} & set(m.split('.')[0] for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""Layer 3: every demo notebook runs top to bottom in a fresh Jupyter kernel (nbclient + ipykernel).

Notebooks are found by glob (``demo_notebooks/*.ipynb``), so a new one is covered as soon as it
is added. Each runs in a copy inside a temporary folder (whatever it writes stays there), with
this checkout first on ``PYTHONPATH``; a cell that raises fails the test with its traceback.
A few notebooks also get a check of what they are there to show.

The committed notebooks carry their outputs (text, pictures and widget state). After changing
one, refresh its outputs with::

    python tests/test_notebooks.py                       # every demo notebook
    python tests/test_notebooks.py demo_notebooks/poem.ipynb
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "demo_notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Seconds one cell may take; the slowest demo cell trains for well under a minute.
CELL_TIMEOUT = 600


def kernel_env(tmp: Path) -> dict:
    """Environment for the kernel: this checkout importable, IPython's profile kept in ``tmp``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    return env


def execute(path: Path, cwd: Path, tmp: Path):
    """Run the notebook at ``path`` in a fresh python3 kernel started in ``cwd``; return it.

    Widget state is stored in the notebook's metadata, as JupyterLab does on save, so a reader
    sees the final state of progress bars, loss curves and panels without running anything.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT, startup_timeout=120,
                            record_timing=False, store_widget_state=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=kernel_env(tmp))
    return nb


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", ())
                   if o.get("output_type") == "stream")


def all_text(cell) -> str:
    """Everything a reader sees of a cell's outputs as text: streams and text/plain results."""
    parts = []
    for o in cell.get("outputs", ()):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") in ("execute_result", "display_data"):
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def cell_with(nb, needle: str):
    """The first code cell whose source contains ``needle``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and needle in cell.source:
            return cell
    raise AssertionError(f"no code cell contains {needle!r}")


def check(name: str, nb) -> None:
    """What a notebook is there to show, beyond 'it ran without errors'."""
    widgets = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    if name == "poem":
        out = stream_text(cell_with(nb, "reproduced ="))
        assert "reproduced exactly: True" in out, out
    elif name == "quickstart":
        out = stream_text(cell_with(nb, "%%charrnn_train"))
        assert re.search(r"charrnn: [\d,]+ steps in", out) and "learns all of it" in out, out
        assert cell_with(nb, "%charrnn_panel").outputs, "the panel shows nothing"
        assert any(s.get("model_name") == "TextareaModel" and s["state"].get("value")
                   for s in widgets.values()), "the saved panel has no sample"
    elif name == "names":
        out = stream_text(cell_with(nb, "invented ="))
        assert re.search(r"[1-9]\d* different new names among 200 samples", out), out
    elif name == "file_training":
        out = stream_text(cell_with(nb, "signal.SIGINT"))
        assert "stopped at step" in out and "the model keeps what it learned" in out, out
        # 3,000 steps, or fewer when validation stopped improving (early stopping).
        resumed = stream_text(cell_with(nb, "docs --resume"))
        assert re.search(r"docs: [\d,]+ steps in .*; [\d,]+ steps in all", resumed), resumed
        # Same samples after loading, and again after both trained 200 more steps.
        assert all_text(cell_with(nb, "docs_copy.fit")).split() == ["True", "True"]
    elif name == "background":
        assert "training in the background" in stream_text(cell_with(nb, "--background"))
    elif name == "share":
        out = stream_text(cell_with(nb, "%charrnn_export"))
        assert re.search(r"exported verse to .*verse\.html \([\d,]+ kB\)", out), out
        page = cell_with(nb, "verse.page(").outputs[0]["data"]["text/html"]
        assert page.startswith('<iframe class="charrnn-page" srcdoc="') and "charrnn-model" in page
    elif name == "inside":
        quote = re.search(r"in_quotes: layer \d+ \w\[\d+\] r=([-+]\d\.\d+)",
                          stream_text(cell_with(nb, "quote = ")))
        assert quote and abs(float(quote.group(1))) >= 0.5, "no unit follows the quotes"
        panels = [s for s in widgets.values() if s.get("model_name") == "HTMLModel"
                  and "charrnn-inside" in s["state"].get("value", "")]
        assert len(panels) >= 5, "the inspector panels show no coloured text"
        timeline = stream_text(cell_with(nb, "town.at_step"))
        assert re.search(r"Timeline\(\d+ snapshots, .* MB\)", timeline), timeline
        early, late = timeline.split("--- step ")[1:][0], timeline.split("--- step ")[-1]
        assert early != late


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_demo_notebook_runs_top_to_bottom(path, tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    work = tmp_path / "notebooks"
    work.mkdir()
    copy = work / path.name
    shutil.copy(path, copy)
    start = time.perf_counter()
    nb = execute(copy, work, tmp_path)        # a cell error raises CellExecutionError
    seconds = time.perf_counter() - start
    check(path.stem, nb)
    # Each demo is meant to take about a minute on two cores; fail long before CI would.
    assert seconds < 300, f"{path.name} took {seconds:.0f} s"


def test_there_are_demo_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"quickstart", "names", "poem", "file_training", "background"} <= names, names


def test_committed_notebooks_have_outputs_and_read_no_outside_data():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), (
            f"{path.name} is not committed executed top to bottom: "
            "run python tests/test_notebooks.py")
        assert any(c.outputs for c in code), f"{path.name} has no outputs"
        for cell in code:
            assert "shared/data" not in cell.source, f"{path.name} reads outside data"
            assert not [o for o in cell.outputs if o.output_type == "error"], path.name


def main(argv: list[str]) -> int:
    """Execute the given notebooks (default: all) in place, keeping their outputs."""
    import tempfile

    import nbformat

    paths = [Path(a).resolve() for a in argv] or NOTEBOOKS
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            work = tmp / "notebooks"
            work.mkdir()
            start = time.perf_counter()
            nb = execute(path, work, tmp)
            nbformat.write(nb, path)
            print(f"{path.relative_to(REPO)}: {time.perf_counter() - start:.0f} s")
            check(path.stem, nb)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

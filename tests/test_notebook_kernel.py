"""A small notebook run top to bottom in a real Jupyter kernel (nbclient + ipykernel).

It checks what only a kernel shows: progress as widgets, a sample printed once (not echoed as
``Out``), a mistake shown as a one-line UsageError, and the kernel's interrupt (SIGINT to the
kernel process, as the stop button sends) ending a training cell cleanly, also while the second
half of each batch runs in the model's child process.
"""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parent.parent
TEXT = """the lamps are lit along the quay,
the boats come home across the bay.
""" * 8
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_notebook_in_a_real_kernel(tmp_path, monkeypatch):
    # The kernel imports this checkout, and keeps its IPython profile out of the home folder.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))

    new = nbformat.v4.new_code_cell
    cells = [
        new("%load_ext charrnn_magic"),
        new("%%charrnn_train --steps 40 --hidden 16 --layers 1 --seed 0 --sample-every 20\n"
            + TEXT),
        new("x = %charrnn_sample -n 60 --random-seed 1\nlen(x)"),
        new("%charrnn_sample -n 30 --random-seed 2"),
        new("%charrnn_sample nope", metadata={"tags": ["raises-exception"]}),
        # Two workers: the second half of each batch in the model's child process.
        new("from charrnn_magic import CharRNN, second_worker\nCharRNN.workers = 2"),
        new("%%charrnn_train slow --minutes 0.5 --hidden 16 --layers 1 --batch-size 8 --seed 0\n"
            + TEXT),
        new("print(slow.step > 0, slow.history.interrupted, slow.is_trained)"),
        # The interrupt reached only the kernel: the same child serves the next training.
        new(f"children = second_worker._children\n"
            f"child = children[slow._net].process\nbefore = slow.step\n"
            f"slow.fit({TEXT!r}, steps=3)\n"
            f"print(slow.step - before, children[slow._net].process is child, child.poll())"),
        new("%charrnn_list"),
    ]
    INTERRUPTED = 6
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}

    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    timers = []

    def interrupt_soon(cell, cell_index, **_):
        if cell_index == INTERRUPTED:
            pid = client.km.provisioner.pid
            timer = threading.Timer(3.0, os.kill, (pid, signal.SIGINT))
            timer.start()
            timers.append(timer)

    client.on_cell_execute = interrupt_soon
    try:
        client.execute()
    finally:
        for timer in timers:
            timer.cancel()

    train, assign, bare, mistake, _, slow, check, again, listing = nb.cells[1:]

    # Training: progress widgets, previews inside them, and the summary as text.
    assert any(WIDGET_VIEW in o.get("data", {}) for o in train.outputs
               if o.output_type == "display_data")
    assert "charrnn: 40 steps in" in stream_text(train)

    # `x = %charrnn_sample` prints the sample; the next line shows its length.
    printed = stream_text(assign)
    results = [o for o in assign.outputs if o.output_type == "execute_result"]
    assert results[0].data["text/plain"] == "60" and len(printed.rstrip("\n")) >= 1

    # A bare %charrnn_sample prints the text once, and no Out[...] repeats it.
    assert stream_text(bare).strip()
    assert not [o for o in bare.outputs if o.output_type == "execute_result"]

    # A mistake: IPython shows a UsageError as one line on stderr, without a traceback.
    assert [(o.output_type, o.get("name"), o.get("text")) for o in mistake.outputs] == [
        ("stream", "stderr", "UsageError: there is no model 'nope'; the models here: charrnn\n")]

    # The interrupt ended the 30-second training cleanly, and the model was kept.
    assert not [o for o in slow.outputs if o.output_type == "error"]
    assert "slow: stopped at step " in stream_text(slow)
    assert "the model keeps what it learned" in stream_text(slow)
    assert stream_text(check).strip() == "True True True"
    assert stream_text(again).strip() == "3 True None"

    listed = stream_text(listing)
    assert "charrnn" in listed and "slow" in listed

"""The sampler panel in an ipywidgets-7 front end: classic Notebook 6.5 with widgetsnbextension 3.6.

The same flow as ``tests/test_browser.py`` (its server, its notebook and its checks, run by its
``panel_flow``): the quickstart runs top to bottom, the panel shows a sample, dragging the
temperature and length sliders with the mouse changes it, the confidence colours show, and the
background-training dashboard draws its loss curve while the panel follows. Only the page differs:
Notebook 6 has its own cells and prompts, and ipywidgets 7 draws sliders with jQuery UI.

This folder is not part of the default test run (which has ipywidgets 8): ``.ci/widgets7.sh``
makes a virtual environment with ipywidgets 7.8 and Notebook 6.5 and runs it there. Where it is
run, it must run: a missing browser, Notebook 6, ipywidgets 7 or Playwright fails the test.
"""
from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, Dom, FrontEnd, JupyterServer, panel_flow, serving

pytestmark = pytest.mark.browser

NOTEBOOK6 = FrontEnd(
    "Notebook 6", "notebook", "notebook", 6, "/notebooks/{name}",
    # Command mode keeps the arrow keys for moving between cells: sliders by mouse only.
    keyboard_sliders=False,
    dom=Dom(notebook="#notebook-container", cell="#notebook-container .cell",
            code_cell="code_cell", prompt=".input_prompt", editor=".input_area",
            slider_handle=".ui-slider-handle"))

#: The Python packages of the ipywidgets-7 front end, and the major version each must have.
MAJORS = {"notebook": 6, "widgetsnbextension": 3, "ipywidgets": 7}


class Notebook6Server(JupyterServer):
    """Notebook 6's own server (``NotebookApp``, not jupyter_server's ``ServerApp``), started as
    ``python -m notebook`` so that no other ``jupyter-notebook`` on the PATH answers instead."""

    def command(self, home: Path) -> list[str]:
        return [sys.executable, "-m", "notebook", "--no-browser", f"--port={self.port}",
                "--allow-root", "--NotebookApp.token=", "--NotebookApp.password=",
                "--NotebookApp.ip=127.0.0.1", "--NotebookApp.port_retries=0",
                f"--NotebookApp.notebook_dir={self.root}"]


def missing() -> list[str]:
    """What this test needs and does not find."""
    gaps = [] if os.access(CHROMIUM, os.X_OK) else [f"Chromium at {CHROMIUM}"]
    for package, major in {**MAJORS, "playwright": None}.items():
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            gaps.append(f"the Python package {package!r}")
            continue
        if major is not None and int(version.split(".")[0]) != major:
            gaps.append(f"{package} {major}.x (found {version})")
    return gaps


@pytest.fixture
def notebook6(tmp_path):
    gaps = missing()
    if gaps:
        pytest.fail(f"the ipywidgets-7 browser test needs {', '.join(gaps)}: run it through "
                    "`bash .ci/widgets7.sh`, which installs them", pytrace=False)
    with serving(NOTEBOOK6, tmp_path, Notebook6Server) as server:
        yield server


def test_panel_in_notebook6_with_ipywidgets7(notebook6, tmp_path, capsys):
    shots = panel_flow(notebook6, tmp_path / "screenshots")
    with capsys.disabled():
        print(f"\nNotebook 6 + ipywidgets 7: screenshots in {shots['panel'].parent}")

"""Layer 4: the sampler panel in a real browser.

Starts JupyterLab on localhost (no token, its own config and runtime folders), opens a copy of
``demo_notebooks/quickstart.ipynb`` (outputs cleared, one background-training cell appended) in
headless Chromium driven by Playwright, runs it top to bottom, moves the temperature and length
sliders with the keyboard and checks that the displayed sample changes, that after a quick run
of key presses it shows the sample for the newest slider value, and that the confidence heat-map
shows; then trains the quickstart's model in the background and checks that the panel follows.
Saves screenshots of the panel to ``docs/panel.png`` and ``docs/panel-heatmap.png`` for the
README.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the test extras
(``pip install -e ".[test]"``: jupyterlab, playwright). Never ``playwright install``: the test
drives the system browser. Without them the test is skipped, unless ``CHARRNN_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where it fails.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = REPO / "docs" / "panel.png"
HEATMAP_SCREENSHOT = REPO / "docs" / "panel-heatmap.png"
INSTALL_HINT = ('install the browser with `apt-get install chromium` and the test extras with '
                '`pip install -e ".[test]"`')

#: The notebook the test runs: a copy of the quickstart, without its saved outputs.
QUICKSTART = REPO / "demo_notebooks" / "quickstart.ipynb"
#: Appended to the copy, and run after the slider checks: the quickstart's model (bound to
#: ``charrnn`` by its %%charrnn_train cell) trains on in the background while the panel follows.
BACKGROUND_CELL = """\
from charrnn_magic.notebook import train_in_background

text = {text!r}
run = train_in_background(charrnn, text, steps=100_000, sample_every=0.3)
run"""


def _missing(what: str) -> None:
    message = f"the browser test needs {what}: {INSTALL_HINT}"
    if os.environ.get("CHARRNN_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (CHARRNN_REQUIRE_BROWSER=1: required here)", pytrace=False)
    pytest.skip(message)


def _requirements():
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"Chromium at {CHROMIUM}")
    try:
        import jupyterlab  # noqa: F401
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"the Python package {exc.name!r}")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_notebook(path: Path) -> int:
    """Write the quickstart, outputs cleared, plus the background-training cell, to ``path``.

    Returns the number of the appended cell. The saved outputs and widget state go, so that
    every panel on the page is one this run made.
    """
    nb = json.loads(QUICKSTART.read_text(encoding="utf-8"))
    nb["metadata"].pop("widgets", None)
    train = None
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            source = "".join(cell["source"])
            if train is None and source.startswith("%%charrnn_train"):
                train = source.split("\n", 1)[1]        # the text the cell magic trains on
    assert train, f"{QUICKSTART.name} has no %%charrnn_train cell"
    assert any("%charrnn_panel" in "".join(c["source"]) for c in nb["cells"]), (
        f"{QUICKSTART.name} has no %charrnn_panel cell")
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "browser-background",
                        "metadata": {}, "outputs": [],
                        "source": BACKGROUND_CELL.format(text=train)})
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return len(nb["cells"]) - 1


class JupyterLab:
    """A JupyterLab server in its own process group, with private config/runtime folders."""

    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = root.parent / "jupyter-home"
        config = home / "config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        # No "Would you like to receive Jupyter news?" toast over the screenshot.
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            IPYTHONDIR=str(home / "ipython"),
            # The kernel imports the package from this checkout, installed or not.
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            # A shared 2-core machine: one BLAS thread is plenty for a tiny model.
            OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
        )
        self.log_path = root.parent / "jupyterlab.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}",
             "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.ip=127.0.0.1",
             "--ServerApp.port_retries=0", "--allow-root", f"--ServerApp.root_dir={root}",
             f"--LabApp.workspaces_dir={home / 'workspaces'}"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=root,
            start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        # SIGTERM: the server shuts its kernels down; then make sure the whole group is gone.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def lab(tmp_path):
    _requirements()
    root = tmp_path / "notebooks"
    root.mkdir()
    server = JupyterLab(root)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _wait_idle(page, timeout_ms: int) -> None:
    page.wait_for_function(
        "() => { const s = document.querySelector('#jp-main-statusbar');"
        " return s && /\\|\\s*Idle/.test(s.textContent); }", timeout=timeout_ms)


def test_panel_sliders_change_the_sample_in_jupyterlab(lab):
    sync_playwright = _requirements()
    from playwright.sync_api import expect

    background = _prepare_notebook(lab.root / "quickstart.ipynb")
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.set_default_timeout(60_000)
            page.goto(f"{lab.url}/lab/tree/quickstart.ipynb")
            page.wait_for_selector(".jp-Notebook")
            _wait_idle(page, 90_000)                      # the kernel has started

            # Run the quickstart top to bottom (select the first cell, then Shift+Enter on each
            # cell in command mode); the appended background cell comes later.
            cells = page.locator(".jp-Notebook .jp-Cell")
            expect(cells).to_have_count(background + 1)   # JupyterLab adds the cells in batches
            cells.nth(0).click()
            page.keyboard.press("Escape")
            for _ in range(background):
                page.keyboard.press("Shift+Enter")

            panel = page.locator(".charrnn-panel").first
            sample = panel.locator(".widget-textarea textarea").first
            expect(sample).not_to_have_value("", timeout=90_000)
            _wait_idle(page, 90_000)

            # Four steps of 0.05 for the temperature: a model that knows its short text well
            # can give the very same sample at two temperatures one step apart.
            for name, presses in (("temperature", 4), ("length", 1)):
                before = sample.input_value()
                slider = panel.locator(".widget-slider", has_text=name).first
                slider.locator(".noUi-handle").first.focus()
                for _ in range(presses):
                    page.keyboard.press("ArrowRight")
                try:
                    expect(sample).not_to_have_value(before, timeout=30_000)
                except AssertionError as exc:
                    raise AssertionError(
                        f"moving the {name} slider did not change the sample\n"
                        f"browser console errors: {console_errors[-5:]}\n"
                        f"server log:\n{lab.log_tail()}") from exc

            # A quick drag (many key presses at once): the panel must end on the newest length.
            length = panel.locator(".widget-slider", has_text="length").first
            length.locator(".noUi-handle").first.focus()
            for _ in range(15):
                page.keyboard.press("ArrowRight")
            readout = length.locator(".widget-readout").first
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                wanted = int(readout.text_content().strip() or 0)
                if len(sample.input_value()) == wanted:
                    break
                time.sleep(0.1)
            assert len(sample.input_value()) == wanted, (
                f"after a quick drag the sample has {len(sample.input_value())} characters, "
                f"the length slider says {wanted}")

            SCREENSHOT.parent.mkdir(exist_ok=True)
            panel.scroll_into_view_if_needed()
            panel.screenshot(path=str(SCREENSHOT))

            # The confidence heat-map replaces the plain text with coloured HTML.
            panel.locator("button", has_text="confidence colours").first.click()
            heat = panel.locator(".charrnn-heat").first
            expect(heat).to_be_visible(timeout=30_000)
            expect(sample).to_be_hidden()
            assert heat.locator("span[title]").count() >= wanted
            panel.screenshot(path=str(HEATMAP_SCREENSHOT))

            # Background training: the dashboard shows up and the panel follows the training
            # by itself (the probabilities in the heat-map change as the weights do).
            before = heat.inner_html()
            cells.nth(background).locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")
            dashboard = page.locator(".charrnn-training").first
            expect(dashboard).to_contain_text("step", timeout=60_000)
            expect(heat).not_to_have_js_property("innerHTML", before, timeout=30_000)
            dashboard.locator("button", has_text="Stop").first.click()
            expect(dashboard).to_contain_text("stopped", timeout=30_000)
            expect(dashboard.locator("button", has_text="Stop").first).to_be_disabled()
            before = heat.inner_html()
            panel.locator("button", has_text="new sample").first.click()   # still works
            expect(heat).not_to_have_js_property("innerHTML", before, timeout=30_000)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 1000

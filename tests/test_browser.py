"""Layer 4: the sampler panel in a real browser, in JupyterLab and in Notebook 7.

For each front end, starts its server on localhost (no token, its own config and runtime
folders), opens a copy of ``demo_notebooks/quickstart.ipynb`` (outputs cleared, one
background-training cell appended) in headless Chromium driven by Playwright, runs it top to
bottom, moves the temperature and length sliders with the keyboard and checks that the displayed
sample changes, that after a quick run of key presses it shows the sample for the newest slider
value, and that the confidence heat-map shows; then trains the quickstart's model in the
background and checks that the dashboard and its loss curve render and that the panel follows.
Both front ends get the same checks: Notebook 7 is built from JupyterLab's components, so the
notebook, its cells and the widgets have the same DOM; only the page URL differs, and the test
uses no front-end-specific kernel status indicator (it waits on the server's kernel state and
on the cells' execution counts).

The screenshots of the panel go to the test's temporary folder (printed). The README's
pictures, ``docs/panel.png`` and ``docs/panel-heatmap.png``, are refreshed by
``python docs/make_pictures.py``, which runs the same flow.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the test extras
(``pip install -e ".[test]"``: jupyterlab, notebook, playwright). Never ``playwright install``:
the test drives the system browser. Without them the test is skipped, unless
``CHARRNN_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where it fails.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_HINT = ('install the browser with `apt-get install chromium` and the test extras with '
                '`pip install -e ".[test]"`')
NOTEBOOK = "quickstart.ipynb"

#: The notebook the test runs: a copy of the quickstart, without its saved outputs.
QUICKSTART = REPO / "demo_notebooks" / NOTEBOOK
#: Appended to the copy, and run after the slider checks: the quickstart's model (bound to
#: ``charrnn`` by its %%charrnn_train cell) trains on in the background while the panel follows.
BACKGROUND_CELL = """\
from charrnn_magic.notebook import train_in_background

text = {text!r}
run = train_in_background(charrnn, text, steps=100_000, sample_every=0.3)
run"""


@dataclass(frozen=True)
class Dom:
    """Where a front end's page puts what the test looks for (CSS selectors and a class)."""
    notebook: str = ".jp-Notebook"                #: the notebook
    cell: str = ".jp-Notebook .jp-Cell"           #: every cell, in order
    code_cell: str = "jp-CodeCell"                #: the class a code cell has
    prompt: str = ".jp-InputPrompt"               #: a cell's input prompt, ``[3]:`` once run
    editor: str = ".jp-InputArea-editor"          #: a cell's editor
    slider_handle: str = ".noUi-handle"           #: a slider's handle (ipywidgets 8)


@dataclass(frozen=True)
class FrontEnd:
    name: str           #: shown in test ids and messages
    command: str        #: ``jupyter COMMAND`` starts it
    module: str         #: the Python package that provides it
    min_major: int      #: its lowest major version (Notebook 6 is another front end entirely)
    path: str           #: the URL path that opens a notebook, with ``{name}`` for its file name
    #: Whether the arrow keys move a focused slider. Notebook 7 handles key presses before the
    #: page's widgets do (JupyterLab lets them go first), so there ArrowRight on a slider runs
    #: the notebook's own command-mode shortcut (move to the next heading) instead; its sliders
    #: are checked with the mouse only.
    keyboard_sliders: bool
    dom: Dom = Dom()    #: JupyterLab's, which Notebook 7 shares


FRONT_ENDS = {
    "jupyterlab": FrontEnd("JupyterLab", "lab", "jupyterlab", 4, "/lab/tree/{name}", True),
    "notebook7": FrontEnd("Notebook 7", "notebook", "notebook", 7, "/notebooks/{name}", False),
}


class Missing(Exception):
    """Something the browser test needs is not installed."""


class KernelNotIdle(RuntimeError):
    """The page's kernel did not report itself idle in time."""


def requirements(front: FrontEnd):
    """Check the browser, the front end and Playwright; return ``sync_playwright``."""
    if not os.access(CHROMIUM, os.X_OK):
        raise Missing(f"Chromium at {CHROMIUM}")
    from importlib import metadata

    try:
        version = metadata.version(front.module)
    except metadata.PackageNotFoundError:
        raise Missing(f"the Python package {front.module!r} ({front.name})") from None
    if int(version.split(".")[0]) < front.min_major:
        raise Missing(f"{front.module}>={front.min_major} for {front.name} (found {version})")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise Missing(f"the Python package {exc.name!r}") from None
    return sync_playwright


def _required(front: FrontEnd):
    try:
        return requirements(front)
    except Missing as exc:
        missing(f"the browser test in {front.name} needs {exc}: {INSTALL_HINT}")


def missing(message: str):
    """Skip a browser test that cannot run here, saying what to install; fail it instead with
    ``CHARRNN_REQUIRE_BROWSER=1`` (CI), where it must run."""
    if os.environ.get("CHARRNN_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (CHARRNN_REQUIRE_BROWSER=1: required here)", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_notebook(path: Path) -> int:
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


class JupyterServer:
    """A Jupyter server with one front end, in its own process group, with private folders."""

    def __init__(self, front: FrontEnd, root: Path):
        self.front = front
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = root.parent / "jupyter-home"
        config = home / "config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        # No "Would you like to receive Jupyter news?" toast over the screenshot (both front
        # ends read labconfig/page_config.json).
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
        self.log_path = root.parent / f"jupyter-{front.command}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(home), stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, cwd=root,
                                     start_new_session=True)

    def command(self, home: Path) -> list[str]:
        """The server's command line: no token or password, localhost only, this port or none,
        ``root`` as its folder, ``home`` for its workspaces."""
        return [sys.executable, "-m", "jupyter", self.front.command, "--no-browser",
                f"--port={self.port}", "--allow-root", "--ServerApp.token=",
                "--ServerApp.password=", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={self.root}",
                f"--LabServerApp.workspaces_dir={home / 'workspaces'}"]

    def page_url(self, name: str) -> str:
        return self.url + self.front.path.format(name=name)

    def _get(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as r:
            return json.loads(r.read() or b"null")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.front.name} exited early:\n{self.log_tail()}")
            try:
                self._get("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.front.name} did not answer within {timeout} s:\n"
                           f"{self.log_tail()}")

    def wait_kernel_idle(self, name: str, timeout: float = 90.0) -> None:
        """Wait until the page opened on ``name`` has a session whose kernel is idle.

        The server's own record (``/api/sessions``), the same for every front end: the status
        indicators of JupyterLab and Notebook 7 differ, and both say "Idle" before any kernel
        has started.
        """
        deadline = time.monotonic() + timeout
        states = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.front.name} exited:\n{self.log_tail()}")
            states = [(s.get("path"), (s.get("kernel") or {}).get("execution_state"))
                      for s in self._get("/api/sessions")]
            if (name, "idle") in states:
                return
            time.sleep(0.3)
        raise KernelNotIdle(f"no idle kernel for {name} within {timeout} s (sessions: {states})\n"
                            f"{self.log_tail()}")

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


#: True once every code cell before number ``n`` shows an execution count (``[3]:``): queued
#: and running cells show ``[*]:``, cells never run ``[ ]:``. Every front end draws these
#: prompts; the argument is ``[n, cell, code_cell, prompt]`` from its :class:`Dom`.
CELLS_DONE = """([n, cell, codeCell, prompt]) => {
    const cells = Array.from(document.querySelectorAll(cell)).slice(0, n);
    const code = cells.filter(c => c.classList.contains(codeCell));
    return code.length > 0 && code.every(c => {
        const p = c.querySelector(prompt);
        return p && /\\[\\d+\\]/.test(p.textContent);
    });
}"""


def wait_cells_done(page, dom: Dom, n: int, timeout: float) -> None:
    """Wait (``timeout`` in ms) until the first ``n`` cells of the page have all run."""
    page.wait_for_function(CELLS_DONE, arg=[n, dom.cell, dom.code_cell, dom.prompt],
                           timeout=timeout)


def _drag(page, handle, dx: float, steps: int = 5) -> None:
    """Drag a slider's handle ``dx`` pixels to the right with the mouse, as a user does."""
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    assert box, "the slider's handle is not on the page"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=steps)
    page.mouse.up()


def panel_flow(server: JupyterServer, pictures: Path, log=print) -> dict[str, Path]:
    """Everything a user does and sees, in ``server``'s front end; returns the screenshots.

    Raises AssertionError (with the browser's console errors and the server's log) when the
    page does not show what it should.
    """
    sync_playwright = requirements(server.front)
    from playwright.sync_api import expect

    dom = server.front.dom

    background = prepare_notebook(server.root / NOTEBOOK)
    pictures.mkdir(parents=True, exist_ok=True)
    shots = {"panel": pictures / "panel.png", "heatmap": pictures / "panel-heatmap.png"}
    console_errors: list[str] = []

    def context(what: str) -> str:
        """The failure message: what went wrong, and where to look."""
        failure = pictures / "failure.png"
        try:
            page.screenshot(path=str(failure), full_page=True)
        except Exception as exc:                          # the message matters more
            failure = f"none ({exc})"
        return (f"{what} ({server.front.name})\nscreenshot of the page: {failure}\n"
                f"browser console errors: {console_errors[-5:]}\n"
                f"server log:\n{server.log_tail()}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.set_default_timeout(60_000)
            page.goto(server.page_url(NOTEBOOK))
            page.wait_for_selector(dom.notebook)
            try:
                server.wait_kernel_idle(NOTEBOOK, timeout=30)     # the kernel has started
            except KernelNotIdle:
                # Classic Notebook 6 now and then never hears its new kernel's first status (4 of
                # 8 runs of the ipywidgets-7 tests here; never JupyterLab or Notebook 7), before
                # any cell runs: reload the page once, as its user would.
                print(f"{server.front.name}: the kernel was not idle after 30 s; reloading")
                page.reload()
                page.wait_for_selector(dom.notebook)
                server.wait_kernel_idle(NOTEBOOK)

            # Run the quickstart top to bottom (select the first cell, then Shift+Enter on each
            # cell in command mode); the appended background cell comes later.
            cells = page.locator(dom.cell)
            expect(cells).to_have_count(background + 1)   # the cells are added in batches
            cells.nth(0).click()
            page.keyboard.press("Escape")
            for _ in range(background):
                page.keyboard.press("Shift+Enter")

            panel = page.locator(".charrnn-panel").first
            sample = panel.locator(".widget-textarea textarea").first
            try:
                expect(sample).not_to_have_value("", timeout=90_000)
                wait_cells_done(page, dom, background, timeout=90_000)
            except AssertionError as exc:
                raise AssertionError(context("the panel showed no sample")) from exc
            log(f"{server.front.name}: the quickstart ran; the panel shows a sample")

            def slider(name: str):
                return panel.locator(".widget-slider", has_text=name).first

            def handle(name: str):
                return slider(name).locator(dom.slider_handle).first

            def readout(name: str):
                return slider(name).locator(".widget-readout").first

            def changes_the_sample(what: str, move) -> None:
                before = sample.input_value()
                move()
                try:
                    expect(sample).not_to_have_value(before, timeout=30_000)
                except AssertionError as exc:
                    raise AssertionError(context(f"{what} did not change the sample")) from exc

            def ends_on_the_newest_length(what: str) -> int:
                """After many quick changes of the length: the sample has the length shown."""
                try:
                    page.wait_for_function(
                        "([r, t]) => t.value.length === parseInt(r.textContent.trim(), 10)",
                        arg=[readout("length").element_handle(), sample.element_handle()],
                        timeout=30_000)
                except Exception:
                    pass                                  # the assertion below says what is wrong
                wanted = int(readout("length").text_content().strip())
                got = len(sample.input_value())
                assert got == wanted, context(
                    f"{what} the sample has {got} characters, the length slider says {wanted}")
                return wanted

            # With the mouse, in every front end. 40 px are several steps of either slider: a
            # model that knows its short text well can give the very same sample at two
            # temperatures one step (0.05) apart.
            for name in ("temperature", "length"):
                shown = readout(name).text_content()
                changes_the_sample(f"dragging the {name} slider",
                                   lambda name=name: _drag(page, handle(name), 40))
                expect(readout(name)).not_to_have_text(shown)
            # A long drag goes through many lengths: the panel must end on the newest one.
            _drag(page, handle("length"), 80, steps=20)
            wanted = ends_on_the_newest_length("after a long drag")

            if server.front.keyboard_sliders:
                # With the keyboard: four steps back down for the temperature (the pictures
                # show a calmer sample), then a quick run of presses on the length.
                shown = float(readout("temperature").text_content())
                assert shown >= 0.2, f"the temperature drag went the wrong way: {shown}"

                def four_steps():
                    handle("temperature").focus()
                    for _ in range(4):
                        page.keyboard.press("ArrowLeft")

                changes_the_sample("ArrowLeft on the temperature slider", four_steps)
                expect(readout("temperature")).to_have_text(f"{shown - 0.2:.2f}")
                handle("length").focus()
                for _ in range(15):
                    page.keyboard.press("ArrowRight")
                wanted = ends_on_the_newest_length("after 15 quick presses of ArrowRight")
            log(f"{server.front.name}: moving the sliders changes the sample")

            panel.scroll_into_view_if_needed()
            panel.screenshot(path=str(shots["panel"]))

            # The confidence heat-map replaces the plain text with coloured HTML.
            panel.locator("button", has_text="confidence colours").first.click()
            heat = panel.locator(".charrnn-heat").first
            expect(heat).to_be_visible(timeout=30_000)
            expect(sample).to_be_hidden()
            assert heat.locator("span[title]").count() >= wanted
            panel.screenshot(path=str(shots["heatmap"]))

            # Background training: the dashboard and its loss curve show up, the curve grows,
            # and the panel follows the training by itself (the probabilities in the heat-map
            # change as the weights do).
            before = heat.inner_html()
            cells.nth(background).locator(dom.editor).click()
            page.keyboard.press("Control+Enter")
            dashboard = page.locator(".charrnn-training").first
            try:
                expect(dashboard).to_contain_text("step", timeout=60_000)
                curve = dashboard.get_by_role("img", name="loss curve").first
                expect(curve).to_be_visible()
                expect(curve.locator("polyline")).not_to_have_count(0)
                drawn = curve.inner_html()
                expect(curve).not_to_have_js_property("innerHTML", drawn, timeout=30_000)
                expect(heat).not_to_have_js_property("innerHTML", before, timeout=30_000)
            except AssertionError as exc:
                raise AssertionError(context("background training did not show")) from exc
            log(f"{server.front.name}: the dashboard and the loss curve render; "
                f"the panel follows the training")
            dashboard.locator("button", has_text="Stop").first.click()
            expect(dashboard).to_contain_text("stopped", timeout=30_000)
            expect(dashboard.locator("button", has_text="Stop").first).to_be_disabled()
            before = heat.inner_html()
            panel.locator("button", has_text="new sample").first.click()   # still works
            expect(heat).not_to_have_js_property("innerHTML", before, timeout=30_000)
        finally:
            browser.close()
    for shot in shots.values():
        assert shot.stat().st_size > 1000, f"{shot} is (nearly) empty"
    return shots


@contextlib.contextmanager
def serving(front_end, tmp_path, server_class=None):
    """A running server of ``front_end`` (a FRONT_ENDS key, or a ``FrontEnd``) over a new folder
    of ``tmp_path``; ``server_class``: a ``JupyterServer`` of another command line."""
    front = FRONT_ENDS[front_end] if isinstance(front_end, str) else front_end
    _required(front)
    root = tmp_path / "notebooks"
    root.mkdir()
    running = (server_class or JupyterServer)(front, root)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(params=list(FRONT_ENDS), ids=list(FRONT_ENDS))
def server(request, tmp_path):
    with serving(request.param, tmp_path) as running:
        yield running


def test_panel_sliders_change_the_sample(server, tmp_path, capsys):
    shots = panel_flow(server, tmp_path / "screenshots")
    with capsys.disabled():
        print(f"\n{server.front.name}: screenshots in {shots['panel'].parent}")

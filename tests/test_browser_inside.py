"""The inspector panel and the training-step slider in a real browser.

Opens a copy of ``demo_notebooks/inside.ipynb`` (outputs and widget state cleared) in JupyterLab
in headless Chromium (the server, the browser and the skip rules of ``tests/test_browser.py``),
runs it top to bottom, then: moves the unit slider of the first inspector panel with the keyboard
and checks that the characters' colours change to those of the next unit; checks that a
character's hover text holds the unit's value and five predictions, and that the *predictions
under text* toggle puts five of them under every character; and moves the sampler panel's
training-step slider and checks that the sample changes. Screenshots go to the test's own
temporary folder (the path is printed), never into the checkout.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    _required,
    serving,
    wait_cells_done,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

INSIDE = REPO / "demo_notebooks" / "inside.ipynb"
#: The colours and hover texts of the characters a panel shows.
SPANS_JS = """el => Array.from(el.querySelectorAll('.charrnn-inside span[title]'))
                   .map(s => [s.style.background, s.getAttribute('title')])"""


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server (``tests/test_browser.py``'s) serving a folder of ``tmp_path``."""
    with serving("jupyterlab", tmp_path) as running:
        yield running


def _prepare(path: Path) -> int:
    """Write inside.ipynb, outputs and widget state cleared, to ``path``; return its cells."""
    nb = json.loads(INSIDE.read_text(encoding="utf-8"))
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return len(nb["cells"])


def _until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_inspector_unit_slider_and_predictions_in_jupyterlab(lab, tmp_path):
    sync_playwright = _required(lab.front)
    from playwright.sync_api import expect

    n_cells = _prepare(lab.root / "inside.ipynb")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.set_default_timeout(60_000)
            page.goto(lab.page_url("inside.ipynb"))
            page.wait_for_selector(".jp-Notebook")
            lab.wait_kernel_idle("inside.ipynb")

            cells = page.locator(".jp-Notebook .jp-Cell")
            expect(cells).to_have_count(n_cells)
            cells.nth(0).click()
            page.keyboard.press("Escape")
            for _ in range(n_cells):
                page.keyboard.press("Shift+Enter")
            views = page.locator(".charrnn-inside")
            wait_cells_done(page, lab.front.dom, n_cells, timeout=240_000)
            expect(views).to_have_count(6)                     # six inspector panels
            lab.wait_kernel_idle("inside.ipynb")

            # The first panel: the line-position unit. Its output area holds the whole panel.
            panel = page.locator(".jp-OutputArea-output", has=views.first).first
            panel.scroll_into_view_if_needed()
            before = panel.evaluate(SPANS_JS)
            assert len(before) == 350, f"the first page shows {len(before)} characters"
            unit = re.search(r"\[(\d+)\] = ", before[0][1])
            assert unit, before[0][1]
            old = int(unit.group(1))
            panel.screenshot(path=str(shots / "inspector-line-unit.png"))

            slider = panel.locator(".widget-slider", has_text="unit").first
            slider.locator(".noUi-handle").first.focus()
            page.keyboard.press("ArrowRight")
            new = old + 1
            after = _until(lambda: (lambda s: s if s[0][1].startswith(f"{before[0][1][0]}[{new}]")
                                    else None)(panel.evaluate(SPANS_JS)))
            assert after, (f"moving the unit slider did not show unit {new}\n"
                           f"browser console errors: {console_errors[-5:]}\n"
                           f"server log:\n{lab.log_tail()}")
            assert [c for c, _ in after] != [c for c, _ in before], "the colours did not change"
            assert slider.locator(".widget-readout").first.text_content().strip() == str(new)
            panel.screenshot(path=str(shots / "inspector-next-unit.png"))

            # Hover text: the unit's value, then the five likeliest next characters.
            span = panel.locator(".charrnn-inside span[title]").nth(5)
            span.hover()
            title = span.get_attribute("title")
            value_line, next_line = title.split("\n")
            assert re.fullmatch(rf"\w\[{new}\] = [-+]\d\.\d{{3}}", value_line), title
            guesses = next_line.removeprefix("next: ").split("  ")
            assert len(guesses) == 5, title
            assert all(re.fullmatch(r".+ \d\.\d\d", g) for g in guesses), title

            # The toggle puts the five guesses under every character.
            panel.locator("button", has_text="predictions under text").first.click()
            columns = panel.locator(".charrnn-inside span.k")
            expect(columns).to_have_count(350, timeout=30_000)
            for k in (0, 100, 349):
                expect(columns.nth(k).locator("i")).to_have_count(5)
            panel.screenshot(path=str(shots / "inspector-predictions.png"))

            # The sampler panel's training-step slider: an earlier snapshot, another sample.
            sampler = page.locator(".charrnn-panel").first
            sampler.scroll_into_view_if_needed()
            sample = sampler.locator(".widget-textarea textarea").first
            expect(sample).not_to_have_value("", timeout=30_000)
            before_text = sample.input_value()
            step = sampler.locator(".widget-slider", has_text="training step").first
            readout = step.locator(".widget-readout").first
            before_step = readout.text_content().strip()
            step.locator(".noUi-handle").first.focus()
            page.keyboard.press("End")                 # the last position: "now"
            expect(readout).to_have_text("now", timeout=30_000)
            expect(sample).not_to_have_value(before_text, timeout=30_000)
            assert before_step != "now"
            sampler.screenshot(path=str(shots / "sampler-step-now.png"))
        finally:
            browser.close()
    print(f"screenshots in {shots}")
    for name in ("inspector-line-unit", "inspector-next-unit", "inspector-predictions",
                 "sampler-step-now"):
        assert (shots / f"{name}.png").stat().st_size > 1000

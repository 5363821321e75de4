"""Refresh the README's picture of the exported web page: ``docs/page.png``.

Trains a 2x96 GRU on the built-in verse corpus (as ``demo_notebooks/share.ipynb`` does), exports
its page, opens it in headless Chromium, clicks a finder's unit and hovers a character, and
keeps a screenshot.

    python docs/make_page_picture.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    from playwright.sync_api import sync_playwright

    from charrnn_magic import CharRNN
    from charrnn_magic.corpora import load_corpus
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    model = CharRNN("gru", 96, 2)
    model.fit(load_corpus("verse"), steps=600, seed=0)
    path = model.export_html(Path(tempfile.mkdtemp()) / "verse.html", name="verse",
                             title="Verse, as one web page")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 1500})
        page.goto(path.as_uri())
        deadline = time.monotonic() + 60
        while not page.evaluate("() => document.querySelectorAll('#inside span').length > 0"):
            if time.monotonic() > deadline:
                raise SystemExit("the page never showed its inside view")
            page.wait_for_timeout(50)
        page.locator("#units button").nth(2).click()
        page.locator("#inside span").nth(40).hover()
        out = REPO / "docs" / "page.png"
        page.screenshot(path=str(out), full_page=False)
        browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

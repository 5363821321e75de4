"""The model as a web page (``model.export_html``, ``%charrnn_export``, ``model.page()``), in
headless Chromium: the JavaScript engine against the NumPy engine (parity of probabilities,
states and greedy samples), the page as a user meets it, a hostile model, a notebook's saved
page, and the refusals.

One Chromium for the whole module (the ``browser`` fixture); each page is opened from
``file://`` with every network request blocked and counted. The screenshots go to a temporary
folder whose path is printed. Needs Debian's ``chromium`` and Playwright for Python (the test
extra); without them these tests fail.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from IPython.core.error import UsageError

from charrnn_magic import CharRNN
from charrnn_magic.corpora import load_corpus
from charrnn_magic.web.export import Page, estimated_bytes
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, INSTALL_HINT, missing
from tests.test_engine import POEM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VERSE = load_corpus("verse")
PARITY_TEXT = VERSE[:2000]


# ------------------------------------------------------------------ the browser
@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"the web page tests need Chromium at {CHROMIUM}: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing(f"the web page tests need Playwright for Python: {INSTALL_HINT}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    """The folder the screenshots are kept in, named on the terminal (past pytest's capture)."""
    folder = tmp_path_factory.mktemp("web-screenshots")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nscreenshots of the web page in {folder}")
    return folder


class Opened:
    """A page opened from ``file://``: every request but the page's own is blocked and kept in
    ``requests``; console errors and page errors in ``errors``, dialogs in ``dialogs``."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1100, "height": 1300})
        self.url = path.resolve().as_uri()
        self.requests, self.errors, self.dialogs = [], [], []
        self.context.on("request", lambda r: r.url != self.url and self.requests.append(r.url))
        self.context.route("**/*", lambda route: route.continue_() if route.request.url == self.url
                           else route.abort())
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(self.url)
        wait_until(self.page, "() => window.charrnn && window.charrnn.ready === true")

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def close(self):
        self.context.close()


def wait_until(page, expression: str, arg=None, seconds: float = 30.0) -> None:
    """Poll ``expression`` (a JavaScript function of ``arg``) until it is true. Playwright's
    ``wait_for_function`` evaluates strings, which the page's Content-Security-Policy forbids."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {seconds:.0f} s: {expression}")
        page.wait_for_timeout(30)


def open_page(browser, model, tmp_path, name="page.html", **options) -> Opened:
    path = model.export_html(tmp_path / name, **options)
    return Opened(browser, path)


# ------------------------------------------------------------------ models
@pytest.fixture(scope="module")
def models():
    """Small models of every cell with one and two layers, 60 steps each: far from good, but
    their weights have moved from the start, which float16 rounding errors grow with."""
    out = {}
    for cell in ("rnn", "lstm", "gru"):
        for layers in (1, 2):
            model = CharRNN(cell, 32, layers)
            model.fit(VERSE, steps=60, seed=1)
            out[cell, layers] = model
    return out


def page_losses(probs, ids):
    """Per character after the first, -log p(it) from the page's probabilities."""
    return -np.log(probs[np.arange(len(ids) - 1), ids[1:]])


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_probabilities_and_states_match_the_engine(browser, models, tmp_path, cell, layers):
    model = models[cell, layers]
    trace = model.trace(PARITY_TEXT)
    for float32, tolerance in ((True, 1e-5), (False, 2e-3)):
        opened = open_page(browser, model, tmp_path, float32=float32)
        try:
            probs = np.array(opened.js("t => charrnn.probabilities(t)", PARITY_TEXT))
            assert probs.shape == trace.probs.shape
            error = np.abs(probs - trace.probs).max()
            assert error <= tolerance, f"{cell} {layers} layer(s), float32={float32}: {error}"
            loss = page_losses(probs, trace.ids).mean()
            assert abs(loss - trace.mean_loss) <= (1e-5 if float32 else 0.005)
            for layer in range(layers):
                for kind in trace.kinds:
                    states = np.array(opened.js("([t, l, k]) => charrnn.states(t, l, k)",
                                                [PARITY_TEXT, layer, kind]))
                    expected = trace.state(layer, kind)
                    # An LSTM's cell state is unbounded (|c| reached 13 to 50 here): the
                    # engine's own float32 rounding is relative to it, and so is the error.
                    scale = max(1.0, float(np.abs(expected).max()))
                    error = np.abs(states - expected).max() / scale
                    assert error <= tolerance, (f"{cell} layer {layer} {kind}, "
                                                f"float32={float32}: {error} (scale {scale})")
            assert opened.requests == [] and opened.errors == []
        finally:
            opened.close()


@pytest.fixture(scope="module")
def poem_model():
    model = CharRNN(hidden_size=30)
    model.fit(POEM, steps=3000, seq_length=5, val_fraction=0, seed=0)
    return model


def test_greedy_samples_equal_the_engine_and_a_poem_is_recited(browser, models, poem_model,
                                                               tmp_path):
    model = CharRNN("gru", 48, 2)
    model.fit(VERSE, steps=60, seed=2)
    opened = open_page(browser, model, tmp_path, float32=True)
    try:
        for prime in (None, "The "):
            page = opened.js("p => charrnn.sample({length: 300, temperature: 0, prime: p})",
                             prime)
            assert page == model.sample(300, temperature=0, prime=prime)
        top_1 = opened.js("() => charrnn.sample({length: 300, temperature: 1.3, topK: 1})")
        assert top_1 == model.sample(300, temperature=0)
        top_p = opened.js("() => charrnn.sample({length: 300, temperature: 1.3, topP: 1e-9})")
        assert top_p == top_1                 # the smallest set holding 1e-9: the likeliest
    finally:
        opened.close()
    opened = open_page(browser, poem_model, tmp_path, name="poem.html", float32=True)
    try:
        recited = opened.js("n => charrnn.sample({length: n, temperature: 0, seedChar: 'H'})",
                            len(POEM))
        assert recited == POEM
    finally:
        opened.close()


def test_lines_mode_samples_end_at_the_line_end(browser, tmp_path):
    names = "\n".join(["anna", "bella", "carla", "dora", "emma", "flora", "greta"] * 30) + "\n"
    model = CharRNN("lstm", 24, 1)
    model.fit(names, steps=40, mode="lines", seed=0)
    opened = open_page(browser, model, tmp_path, float32=True)
    try:
        assert opened.js("() => charrnn.sample({length: 50, temperature: 0})") == \
            model.sample(50, temperature=0)
        for seed in range(5):
            name = opened.js("s => charrnn.sample({length: 50, seed: s})", seed)
            assert "\n" not in name and len(name) < 50
    finally:
        opened.close()


def test_same_seed_same_sample_and_astral_characters_whole(browser, tmp_path):
    text = "🙂 hello 🐍 world 𠀀 and 🎉 again.\n" * 40
    model = CharRNN("gru", 32, 1)
    model.fit(text, steps=20, seed=0)
    opened = open_page(browser, model, tmp_path)
    try:
        options = {"length": 400, "temperature": 1.5, "seed": 7}
        first = opened.js("o => charrnn.sample(o)", options)
        assert opened.js("o => charrnn.sample(o)", options) == first
        assert opened.js("o => charrnn.sample(o)", {**options, "seed": 8}) != first
        assert len(first) == 400              # code points, as Python counts them
        first.encode("utf-8")                 # no lone surrogate (a half of a pair)
        assert set(first) <= set(model.vocab.chars)
        assert set(first) & {"🙂", "🐍", "𠀀", "🎉"}
        assert opened.js("() => charrnn.vocab") == model.vocab.chars
        probs = opened.js("t => charrnn.probabilities(t)", "🙂🐍 h")
        assert len(probs) == 4 and all(len(p) == len(model.vocab) for p in probs)
        assert abs(sum(probs[0]) - 1) < 1e-9
    finally:
        opened.close()


# ------------------------------------------------------------------ as a user meets it
@pytest.fixture(scope="module")
def verse_model():
    model = CharRNN("gru", 64, 2)
    model.fit(VERSE, steps=80, seed=3)
    return model


def sample_text(page) -> str:
    return page.locator("#samples").inner_text()


def test_the_page_as_a_user_meets_it(browser, verse_model, tmp_path, shots):
    opened = open_page(browser, verse_model, tmp_path, name="verse.html")
    page = opened.page
    try:
        wait_until(page, "() => document.querySelector('#samples').dataset.state === 'done'")
        assert len(sample_text(page)) >= 200
        assert page.locator("#title").inner_text().startswith("A character-level GRU")
        assert "80 steps" in page.locator("#card").inner_text()
        page.screenshot(path=str(shots / "page.png"), full_page=True)

        # Moving the temperature slider samples again.
        before = sample_text(page)
        page.locator("#temperature").focus()
        for _ in range(8):
            page.keyboard.press("ArrowRight")
        wait_until(page, "() => document.querySelector('#temperature-value').textContent"
                               " === '1.20'")
        wait_until(page, "b => document.querySelector('#samples').innerText !== b"
                         " && document.querySelector('#samples').dataset.state === 'done'",
                   before)
        assert sample_text(page) != before
        # What shows is the newest request's sample: the seven before it were dropped.
        newest = opened.js("() => charrnn.sample({length: 200, temperature: 1.2, seed: 1})")
        assert page.locator("#samples pre").text_content() == newest

        # Steer mode: a click on one of the five likeliest appends it.
        wait_until(page, "() => document.querySelectorAll('#steer-choices button').length === 5")
        text = page.locator("#steer-text").text_content()
        choice = page.locator("#steer-choices button").nth(2)
        char = choice.get_attribute("data-char")
        choice.click()
        assert page.locator("#steer-text").text_content() == text + char
        page.screenshot(path=str(shots / "steer.png"))

        # The inside view: typing recolours; hovering shows five predictions.
        inside = page.locator("#inside span")
        wait_until(page, "() => document.querySelectorAll('#inside span').length > 100")
        colours = inside.evaluate_all("s => s.map(x => x.style.backgroundColor)")
        assert len(set(colours)) > 3
        box = page.locator("#probe")
        box.fill("")
        box.type("the lamps")
        wait_until(page, "() => document.querySelector('#inside').textContent === 'the lamps'")
        typed = inside.evaluate_all("s => s.map(x => x.style.backgroundColor)")
        assert len(typed) == 9 and all(typed)
        box.type(" are lit")
        wait_until(page, "() => document.querySelectorAll('#inside span').length === 17")
        by_unit = inside.evaluate_all("s => s.map(x => x.style.backgroundColor)")
        assert by_unit[:9] == typed           # the text before what was typed kept its colours
        page.locator("#state").select_option("surprise")
        surprise = inside.evaluate_all("s => s.map(x => x.style.backgroundColor)")
        assert len(surprise) == 17 and surprise != by_unit
        inside.nth(4).hover()
        wait_until(page, "() => document.querySelectorAll('#hover .prediction').length === 5")
        shown = page.locator("#hover .prediction .p").all_inner_texts()
        assert len(shown) == 5
        percents = [float(p.rstrip(" %")) for p in shown]
        assert percents == sorted(percents, reverse=True) and percents[0] > 0
        # A finder's unit is one click away.
        first = page.locator("#units button").first
        first.click()
        assert page.locator("#state").input_value() in ("h", "r", "z", "n")
        page.screenshot(path=str(shots / "inside.png"), full_page=True)
        assert opened.requests == [], f"network requests: {opened.requests}"
        assert opened.errors == [], f"console errors: {opened.errors}"
    finally:
        opened.close()


# ------------------------------------------------------------------ the hostile page
HOSTILE = ("say </script><script>alert(1)</script> and <img src=x onerror=alert(2)> "
           "'single' \"double\" back\\slash\u2028line\u2029para\x00nul <!-- c --> &amp;\n")


def test_a_hostile_model_runs_none_of_its_text(browser, tmp_path, shots):
    model = CharRNN("gru", 16, 1)
    model.fit(HOSTILE * 20, steps=3, seed=0, raw_text=True)
    title = "</script><script>alert(3)</script><img src=x onerror=alert(4)>"
    name = "<img src=x onerror=alert(5)>"
    opened = open_page(browser, model, tmp_path, name="hostile.html", probe=HOSTILE, title=title)
    page = opened.page
    try:
        assert page.title() == title
        assert page.locator("#title").text_content() == title
        assert page.locator("#probe").input_value() == HOSTILE
        wait_until(page, "() => document.querySelectorAll('#inside span').length > 10")
        assert page.locator("#inside").text_content() == HOSTILE
        assert opened.js("() => charrnn.vocab") == model.vocab.chars
        assert opened.js("() => document.querySelectorAll('img').length") == 0
        assert opened.js("() => document.querySelectorAll('script').length") == 3
        page.wait_for_timeout(300)
        assert opened.dialogs == [] and opened.requests == [] and opened.errors == []
        page.screenshot(path=str(shots / "hostile.png"), full_page=True)
    finally:
        opened.close()
    html = model.page(name=name, probe=HOSTILE, title=title).html
    assert "<img" not in html and html.count("</script>") == 3 and "\x00" not in html


# ------------------------------------------------------------------ in a notebook
NOTEBOOK_CELLS = [
    "from charrnn_magic import CharRNN\n"
    "from charrnn_magic.corpora import load_corpus\n"
    "model = CharRNN('gru', 24, 1)\n"
    "model.fit(load_corpus('verse'), steps=5, seed=0)",
    "model.page(title='in a notebook')",
]


@pytest.mark.slow
def test_page_in_a_saved_notebook_converted_to_html(browser, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    env_path = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"], old = env_path, os.environ.get("PYTHONPATH")
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    saved = tmp_path / "page.ipynb"
    nbformat.write(nb, saved)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(saved)],
                   check=True, capture_output=True, timeout=300)
    converted = tmp_path / "page.html"
    assert "srcdoc=" in converted.read_text(encoding="utf-8")
    context = browser.new_context()
    requests = []
    context.on("request", lambda r: r.url.startswith("http") and requests.append(r.url))
    page = context.new_page()
    try:
        page.goto(converted.resolve().as_uri())
        frame = page.frame_locator("iframe.charrnn-page")
        frame.locator("#samples pre").first.wait_for()
        sample = None
        for f in page.frames:
            if f != page.main_frame:
                wait_until(f, "() => window.charrnn && window.charrnn.ready === true")
                sample = f.evaluate("charrnn.sample({length: 50, seed: 1})")
                assert f.evaluate("document.title") == "in a notebook"
        assert isinstance(sample, str) and len(sample) == 50
    finally:
        context.close()


# ------------------------------------------------------------------ refusals
def test_refusals_are_one_line(models, tmp_path):
    with pytest.raises(ValueError, match="not trained yet") as error:
        CharRNN("gru", 8, 1).export_html(tmp_path / "x.html")
    assert "\n" not in str(error.value)
    model = models["gru", 1]
    with pytest.raises(ValueError, match="does not exist") as error:
        model.export_html(tmp_path / "missing" / "x.html")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "missing").exists()
    limit = estimated_bytes(model.n_params, False) - 1
    with pytest.raises(ValueError, match=r"MB \([\d,]+ weights x 2 bytes \(float16\) x 4/3 "
                                         r"for base64\), above the") as error:
        model.export_html(tmp_path / "x.html", max_bytes=limit)
    assert "\n" not in str(error.value) and not (tmp_path / "x.html").exists()
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        model.export_html(tmp_path / "x.html", probe="§§")


def test_export_magic(ip, models, tmp_path, capsys):
    ip.user_ns["tiny"] = models["gru", 1]
    path = tmp_path / "tiny.html"
    ip.run_line_magic("charrnn_export", f"tiny {path} --title 'Tiny verse' --float32")
    out = capsys.readouterr().out
    assert str(path) in out and "kB" in out
    html = path.read_text(encoding="utf-8")
    assert '"dtype":"float32"' in html and '"title":"Tiny verse"' in html
    shown = ip.run_line_magic("charrnn_export", "tiny --inline")
    assert isinstance(shown, Page) and shown._repr_html_().startswith("<iframe")
    assert '"' not in shown._repr_html_().split('srcdoc="', 1)[1].split('" sandbox')[0]
    for line, message in ((f"tiny {tmp_path}/nope/x.html", "does not exist"),
                          ("", "give the PATH"), ("tiny", "give the PATH"),
                          ("nobody x.html", "no model 'nobody'")):
        with pytest.raises(UsageError, match=message) as error:
            ip.run_line_magic("charrnn_export", line)
        assert "\n" not in str(error.value)
    ip.user_ns["raw"] = CharRNN()
    with pytest.raises(UsageError, match="not trained yet"):
        ip.run_line_magic("charrnn_export", f"raw {path}")


def test_a_loaded_model_exports_with_a_sampled_probe(models, tmp_path):
    model = CharRNN.load(models["gru", 2].save(tmp_path / "m.safetensors"))
    assert model.training_text is None
    page = model.page().html
    data = json.loads(page.split('id="charrnn-model">', 1)[1].split("</script>", 1)[0])
    assert len(data["probe"]) >= 100 and set(data["probe"]) <= set(model.vocab.chars)


def test_the_page_json_is_inert(models):
    page = models["rnn", 1].page(probe=None).html
    data = page.split('id="charrnn-model">', 1)[1].split("</script>", 1)[0]
    assert not set(data) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(data)["cell"] == "rnn"
    assert math.isfinite(json.loads(data)["card"]["train_loss"])

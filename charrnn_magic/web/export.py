"""A trained model as one self-contained web page: ``model.export_html(path)`` / ``model.page()``.

The page holds the model (vocabulary, architecture, weights in base64, a model card), the
JavaScript engine of ``engine.js`` (the same equations as ``cells.py`` and ``network.py``), the
sampler and inside view of ``page.js`` and the style of ``page.css``: it samples and colours text
by any unit with no Python, no server and no network (its Content-Security-Policy forbids every
request).

Safety: everything that comes from the model or the user (vocabulary, probe text, name, title,
the finder's feature names) reaches the page only as data, in one
``<script type="application/json">`` block where ``<``, ``>``, ``&``, U+2028 and U+2029 are
written as ``\\uXXXX`` escapes; the page reads it with ``JSON.parse`` and shows it with
``textContent`` only. No text of the model can close the block or become markup or code.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..text import normalize
from ..version import __version__
from ..vocab import describe_chars

#: The largest page ``export_html`` writes, in bytes: a browser decodes a page this big in a few
#: seconds; a bigger model belongs in a checkpoint.
MAX_BYTES = 50_000_000
#: The most characters of the inside view's probe text, taken from the training text by default.
PROBE_CHARS = 1_500
#: Units the finder offers per built-in feature.
UNITS_PER_FEATURE = 2
#: The sizes of a weight in the page, per ``float32`` choice.
_WEIGHT = {False: ("float16", "<f2"), True: ("float32", "<f4")}
#: Escapes that keep JSON inert inside a <script> element (and valid JavaScript everywhere).
_INERT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
          "\u2029": "\\u2029"}


def _asset(name: str) -> str:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise RuntimeError(f"{name} must not contain a closing </script> or </style> tag")
    return text


def inert_json(data) -> str:
    """``data`` as JSON that can sit inside ``<script type="application/json">``: no ``<``,
    ``>`` or ``&`` (so no ``</script>`` and no comment opener), and no U+2028/U+2029."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in _INERT.items():
        text = text.replace(char, escape)
    return text


def estimated_bytes(n_params: int, float32: bool) -> int:
    """The weights' share of a page: base64 of ``n_params`` float16 (or float32) numbers."""
    itemsize = 4 if float32 else 2
    return (n_params * itemsize + 2) // 3 * 4


def check_exportable(model, float32: bool, max_bytes: int = MAX_BYTES) -> None:
    """ValueError for a model with no page: untrained, or a page above ``max_bytes``."""
    if not model.is_trained:
        raise ValueError("the model is not trained yet: train it (fit(text)) before exporting "
                         "a page")
    size = estimated_bytes(model.n_params, float32)
    if size > max_bytes:
        dtype, _ = _WEIGHT[bool(float32)]
        itemsize = 4 if float32 else 2
        smaller = "" if not float32 else "float16 weights (leave out --float32/float32=True) or "
        raise ValueError(f"the page would be {size / 1e6:,.1f} MB ({model.n_params:,} weights x "
                         f"{itemsize} bytes ({dtype}) x 4/3 for base64), above the "
                         f"{max_bytes / 1e6:,.0f} MB limit: use {smaller}a smaller model")


def default_probe(model) -> str:
    """The inside view's text: ``PROBE_CHARS`` characters of the training text from the start of
    a line near its middle, or a sample when the model no longer has its training text."""
    text = model.training_text
    if not text:
        return model.sample(PROBE_CHARS // 2, temperature=0.8, seed=0)
    start = max(0, len(text) // 2 - PROBE_CHARS // 2)
    line = text.rfind("\n", max(0, start - 400), start)
    start = line + 1 if line >= 0 else start
    return text[start : start + PROBE_CHARS]


def _probe(model, probe) -> str:
    if probe is None:
        return default_probe(model)
    if not isinstance(probe, str):
        raise ValueError(f"probe must be a str, not {type(probe).__name__}")
    text = probe if model._settings.get("raw_text") else normalize(probe)
    if model._settings.get("lower"):
        text = text.lower()
    if not text:
        raise ValueError("the probe is empty: give some text the model knows, or leave it out")
    missing = model.vocab.missing(text)
    if missing:
        raise ValueError(f"the probe has character(s) outside the model's vocabulary: "
                         f"{describe_chars(missing)}; remove them or give another probe")
    return text[:20_000]


def _units(model, probe: str) -> list[dict]:
    """The finder's best units for the built-in features over the probe, as one-click choices."""
    if len(probe) < 2:
        return []
    matches = model.find_units(probe, top=UNITS_PER_FEATURE)
    return [{"feature": m.feature, "layer": m.layer, "state": m.state, "unit": m.unit,
             "r": round(m.r, 3)} for m in matches]


def card(model, dtype: str, name: str | None) -> dict:
    """The model card the page shows: what the model is and how it was trained."""

    h, s = model.history, model._settings
    seen = model.step * s.get("batch_size", 0) * s.get("seq_length", 0)
    return {
        "name": name, "cell": model.cell, "hidden_size": model.hidden_size,
        "layers": model.layers, "vocab_size": len(model.vocab), "parameters": model.n_params,
        "steps": model.step, "characters_seen": seen if s.get("mode") == "stream" else None,
        "training_text_chars": len(model.training_text) if model.training_text else None,
        "train_loss": _rounded(h.last_loss), "val_loss": _rounded(h.best_val_loss
                                                                 if h.best_val_loss is not None
                                                                 else h.last_val_loss),
        "mode": s.get("mode"), "weights": dtype,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
    }


def _rounded(x):
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def model_data(model, *, float32: bool = False, probe: str | None = None,
               title: str | None = None, name: str | None = None) -> dict:
    """Everything the page knows of the model, JSON-able (see ``engine.js``'s ``Network``)."""
    net = model._net
    with model._lock:
        flat = net.flat.copy()
    dtype, code = _WEIGHT[bool(float32)]
    weights = flat.astype(code).tobytes()
    probe = _probe(model, probe)
    return {
        "format": 1, "cell": model.cell, "hidden_size": model.hidden_size,
        "layers": model.layers, "vocab": list(model.vocab.chars),
        "mode": model.mode, "lower": bool(model._settings.get("lower")),
        "raw_text": bool(model._settings.get("raw_text")),
        "tensors": [[k, list(v)] for k, v in net.shapes.items()],
        "dtype": dtype, "weights": base64.b64encode(weights).decode("ascii"),
        "title": str(title) if title else (f"{name}: a character-level {model.cell.upper()}"
                                           if name else "A character-level "
                                           f"{model.cell.upper()}"),
        "probe": probe, "units": _units(model, probe), "card": card(model, dtype, name),
    }


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>charrnn_magic</title>
<style>
{css}
</style>
</head>
<body>
<noscript>This page runs its model in JavaScript: turn JavaScript on to use it.</noscript>
<main id="charrnn-app"></main>
<script type="application/json" id="charrnn-model">{data}</script>
<script>
{engine}
</script>
<script>
{page}
</script>
</body>
</html>
"""


def page_html(model, *, float32: bool = False, probe: str | None = None,
              title: str | None = None, name: str | None = None,
              max_bytes: int = MAX_BYTES) -> str:
    """The page of ``model`` as one HTML string (see the module docstring)."""
    check_exportable(model, float32, max_bytes)
    data = model_data(model, float32=float32, probe=probe, title=title, name=name)
    page = PAGE.format(css=_asset("page.css"), data=inert_json(data), engine=_asset("engine.js"),
                       page=_asset("page.js"))
    size = len(page.encode("utf-8"))
    if size > max_bytes:
        raise ValueError(f"the page would be {size / 1e6:,.1f} MB, above the "
                         f"{max_bytes / 1e6:,.0f} MB limit: give a shorter probe or export a "
                         "smaller model")
    return page


def export_html(model, path, *, float32: bool = False, probe: str | None = None,
                title: str | None = None, name: str | None = None,
                max_bytes: int = MAX_BYTES) -> Path:
    """Write the page to ``path`` (its folder must exist; written next to it, then renamed).
    Returns the path written."""
    path = Path(os.path.expanduser(os.fspath(path)))
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"the folder {str(folder)!r} does not exist: create it first or write "
                         "the page elsewhere")
    page = page_html(model, float32=float32, probe=probe, title=title, name=name,
                     max_bytes=max_bytes)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, path)
    return path


class Page:
    """A model's page, shown in a notebook as a live ``<iframe srcdoc>``: it runs in the saved
    notebook, in ``jupyter nbconvert --to html`` and in nbviewer, with no kernel.

    ``html``: the page itself; ``save(path)`` writes it; ``height``: of the frame, in pixels."""

    def __init__(self, page: str, height: int = 820):
        self.html = page
        self.height = height

    def __repr__(self) -> str:
        return f"Page({len(self.html.encode('utf-8')):,} bytes of HTML)"

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        return (f'<iframe class="charrnn-page" srcdoc="{html.escape(self.html, quote=True)}" '
                f'sandbox="allow-scripts" title="charrnn_magic page" '
                f'style="width: 100%; height: {int(self.height)}px; border: 1px solid #ccc">'
                "</iframe>")


def page(model, **options) -> Page:
    """``model.page(...)``: the page as a ``Page`` (options as ``page_html``'s)."""
    return Page(page_html(model, **options))

"""Look inside a model from a notebook: the text coloured by any unit, the model's predictions,
the units that track features of the text, gate saturation, and where it beats an n-gram.

::

    panel = model.inspect(text)                  # or: inspector_panel(model, text)
    panel                                        # last expression of a cell: the panel shows
    panel = model.inspect(text, train_text=corpus)   # adds "RNN vs n-gram" (a 4-gram of corpus)
    panel = model.at_step(500).inspect(text)     # the model as it was at training step 500
    %charrnn_inspect --file notes.txt            # the magic (see its help: %charrnn_inspect?)

Core ipywidgets only, no JavaScript: every view is HTML or SVG text written into an
``ipywidgets.HTML`` widget's ``.value``, so code (and tests) drive the panel by setting control
values, and read what it shows from ``panel.view.value``.

Controls (attributes):

``colour``      what colours the text: ``"activation"`` (one unit: blue below 0, white at 0,
                red above; the cell state ``c`` is scaled by its largest value over the text,
                every other state is already within -1..1), ``"surprise"`` (the probability the
                model gave each character: red = surprised, green = expected) or ``"vs n-gram"``
                (n-gram loss minus RNN loss per character: green where the RNN does better, red
                where the n-gram does; needs ``train_text``).
``layer``, ``state``, ``unit``   the unit shown (``state``: ``h``, ``c``, or a gate).
``page``        which window of ``window`` characters (at most 3,000) is shown.
``predictions`` show the model's 5 likeliest next characters as a column under each character
                (they are always in each character's hover text, with the unit's value).
``finder``      the units most correlated with features of the text (``model.find_units``):
                choosing one shows it.
``view``        the coloured text (HTML); ``saturation`` the gate saturation scatter (SVG);
                ``status`` what is shown and how long the last recolouring took.
"""
from __future__ import annotations

import html
import math
import time

import ipywidgets as W
import numpy as np

from ..ngram import NGram
from ..trace import GATES
from ..unit_finder import find_units, gate_saturation
from .widget_compat import widget_bundle

__all__ = ["InspectorPanel", "inspector_panel", "activation_colours", "saturation_svg"]

#: The most characters one page shows: the HTML of a page stays a few hundred KB.
MAX_WINDOW = 3000
MODES = ("activation", "surprise", "vs n-gram")
#: One colour per layer in the saturation plot.
LAYER_COLOURS = ("#1f77b4", "#e8710a", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
_SHORT = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}
_LEVELS = 100                           # colour steps on each side of 0


def _diverging(negative: str, positive: str, levels: int = _LEVELS) -> list[str]:
    """2 * levels + 1 colours for -1 .. 1: white at 0, full ``negative`` / ``positive`` (each
    "rgb" letters saturated, e.g. "b" blue, "r" red, "g" green) at -1 / 1."""
    out = []
    for i in range(-levels, levels + 1):
        fade = f"{round(255 * (1 - abs(i) / levels)):02x}"
        full = negative if i < 0 else positive
        out.append("#" + "".join("ff" if channel in full else fade for channel in "rgb"))
    return out


_BLUE_WHITE_RED = _diverging("b", "r")
# Loss difference -1 .. 1 (scaled): red (n-gram better), white, green (RNN better).
_RED_WHITE_GREEN = _diverging("r", "g")
# Probability 0 .. 1: red (surprise) to green (expected), as the sampler's heatmap.
_RED_GREEN = [f"hsl({120 * i / _LEVELS:.0f},80%,82%)" for i in range(_LEVELS + 1)]


def activation_colours(values: np.ndarray, scale: float = 1.0) -> list[str]:
    """The background colour of each value: ``values / scale`` clipped to -1..1, blue below 0,
    white at 0, red above (201 steps)."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64) / scale), -1.0, 1.0)
    idx = np.rint(v * _LEVELS).astype(np.int64) + _LEVELS                  # (n,) 0 .. 200
    table = _BLUE_WHITE_RED
    return [table[i] for i in idx.tolist()]


def inspector_panel(model, text: str, **options) -> "InspectorPanel":
    """A panel that shows what ``model`` does on ``text`` (see the module help).

    ``options``: ``train_text`` (the n-gram baseline is counted on it; without it there is no
    "vs n-gram" colouring), ``n`` (the n-gram's order, default 4), ``window`` (characters per
    page, at most 3,000; default 2,000), ``max_chars`` (longest ``text``, see ``model.trace``),
    ``features`` and ``top`` (for the unit finder), and the starting ``layer``, ``state``,
    ``unit`` and ``colour``.
    """
    return InspectorPanel(model, text, **options)


class InspectorPanel:
    """The panel: ``.widget`` is the whole panel; the controls are attributes (module help)."""

    def __init__(self, model, text: str, *, train_text: str | None = None, n: int = 4,
                 window: int = 2000, max_chars: int | None = None, features=None, top: int = 5,
                 layer: int = 0, state: str = "h", unit: int = 0, colour: str = "activation"):
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window={window!r} is out of range: use 1 to {MAX_WINDOW:,} "
                             "characters")
        if colour not in MODES:
            raise ValueError(f"colour={colour!r} is not a colouring: use one of {', '.join(MODES)}")
        if colour == "vs n-gram" and train_text is None:
            raise ValueError("colour='vs n-gram' needs the n-gram's training text: "
                             "pass train_text=")
        self.model = model
        trace_options = {} if max_chars is None else {"max_chars": max_chars}
        self.trace = tr = model.trace(text, **trace_options)
        if not 0 <= layer < tr.n_layers or state not in tr.kinds or not 0 <= unit < tr.hidden_size:
            tr.unit(layer, state, unit)                       # raises the one-line ValueError
        self.window = window
        self.matches = find_units(tr, features, top)
        self.ngram = NGram(train_text, n=n, vocab=model.vocab) if train_text is not None else None
        # (T,) n-gram loss minus RNN loss for each character (NaN for the first).
        self.advantage = None
        if self.ngram is not None:
            self.advantage = np.full(len(tr), np.nan)
            if len(tr) > 1:
                self.advantage[1:] = self.ngram.loss(tr.text) - tr.loss
        self._rnn_loss = np.concatenate(([np.nan], tr.loss))                   # (T,)
        self._chars = [html.escape(_SHORT.get(c, c) if c in "\t\r" else c) for c in tr.text]
        self._top_ids, self._top_p = tr.top(5)
        self._pred_cache: dict[int, list[str]] = {}
        self._c_scale = {}
        self._quiet = False
        self.last_ms: float | None = None

        wide = {"description_width": "initial"}
        self.colour = W.ToggleButtons(options=list(MODES) if self.ngram else list(MODES[:2]),
                                      value=colour,
                                      description="colour by", style=wide)
        self.layer = W.IntSlider(value=layer, min=0, max=max(tr.n_layers - 1, 0),
                                 description="layer", disabled=tr.n_layers == 1, style=wide,
                                 continuous_update=True)
        self.state = W.ToggleButtons(options=list(tr.kinds), value=state, description="state",
                                     style=wide)
        self.unit = W.IntSlider(value=unit, min=0, max=tr.hidden_size - 1, description="unit",
                                style=wide, continuous_update=True,
                                layout=W.Layout(width="60%"))
        pages = max(1, -(-len(tr) // window))
        self.page = W.IntSlider(value=0, min=0, max=pages - 1, description="page",
                                disabled=pages == 1, style=wide, continuous_update=True)
        self.predictions = W.ToggleButton(value=False, description="predictions under text",
                                          icon="list", tooltip="show the 5 likeliest next "
                                          "characters under each character",
                                          layout=W.Layout(width="200px"))
        labels = [("(units that track features of the text)", -1)] + [
            (f"{m.feature}: layer {m.layer} {m.state}[{m.unit}]  r = {m.r:+.3f}", i)
            for i, m in enumerate(self.matches)]
        self.finder = W.Dropdown(options=labels, value=-1, description="unit finder",
                                 style=wide, layout=W.Layout(width="100%"))
        self.view = W.HTML(value="", layout=W.Layout(width="100%"))
        self.status = W.HTML(value="")
        self.saturation = W.HTML(value=self._saturation_html())
        self.title = W.HTML(value=f"<b>Inside</b> · {html.escape(model.summary())} · "
                                  f"{len(tr):,} characters, mean loss {tr.mean_loss:.3f} nats")
        self.widget = W.VBox([
            self.title, self.colour,
            W.HBox([self.layer, self.state]), self.unit,
            W.HBox([self.page, self.predictions, self.status],
                   layout=W.Layout(align_items="center")),
            self.view, self.finder, self.saturation,
        ], layout=W.Layout(width="100%", max_width="1000px"))
        controls = (self.colour, self.layer, self.state, self.unit, self.page, self.predictions)
        for control in controls:
            control.observe(self._on_change, names="value")
        self.finder.observe(self._on_finder, names="value")
        self.render()

    # ---- what users and tests call ---------------------------------------------------------
    @property
    def span(self) -> tuple[int, int]:
        """(start, stop) of the characters on the current page."""
        start = self.page.value * self.window
        return start, min(start + self.window, len(self.trace))

    def show_unit(self, layer: int, state: str, unit: int) -> None:
        """Colour the text by one unit (the sliders move to it)."""
        self.trace.unit(layer, state, unit)                   # one-line ValueError if unknown
        self._quiet = True
        try:
            self.colour.value = "activation"
            self.layer.value, self.state.value, self.unit.value = layer, state, unit
        finally:
            self._quiet = False
        self.render()

    def render(self) -> None:
        """Redraw the coloured text for the current controls."""
        start_time = time.perf_counter()
        start, stop = self.span
        mode = self.colour.value
        if mode == "activation":
            values = self.trace.unit(self.layer.value, self.state.value, self.unit.value)
            page = values[start:stop]                                        # (n,)
            scale = self._scale(self.layer.value, self.state.value, self.unit.value)
            colours = activation_colours(page, scale)
            name = f"{self.state.value}[{self.unit.value}]"
            notes = [f"{name} = {v:+.3f}" for v in page.tolist()]
            legend = _legend(_BLUE_WHITE_RED, [-scale, 0, scale], "activation")
        elif mode == "surprise":
            p = self.trace.char_probs[start:stop]
            idx = np.rint(np.nan_to_num(p, nan=1.0) * _LEVELS).astype(np.int64)
            colours = [_RED_GREEN[i] for i in idx.tolist()]
            notes = ["first character: no prediction" if q != q else f"p = {q:.3f}"
                     for q in p.tolist()]
            legend = _legend(_RED_GREEN, [0, 0.5, 1], "probability the model gave it")
        else:
            d = self.advantage[start:stop]                                   # (n,) nats
            rnn = self._rnn_loss[start:stop]
            v = np.clip(np.nan_to_num(d) / 3.0, -1, 1)
            idx = np.rint(v * _LEVELS).astype(np.int64) + _LEVELS
            colours = [_RED_WHITE_GREEN[i] for i in idx.tolist()]
            n = self.ngram.n
            notes = ["first character: no prediction" if x != x else
                     f"RNN {r:.2f} nats, {n}-gram {r + x:.2f} nats"
                     for x, r in zip(d.tolist(), rnn.tolist(), strict=True)]
            mean = float(np.nanmean(self.advantage)) if len(self.trace) > 1 else math.nan
            legend = _legend(_RED_WHITE_GREEN, [-3, 0, 3], f"n-gram loss − RNN loss (nats); "
                             f"mean {mean:+.3f}, {self.ngram.n}-gram")
        predictions = self._predictions(start)
        if self.predictions.value:
            body = self._columns(start, stop, colours, notes, predictions)
        else:
            chars = self._chars
            body = "".join(
                f'<span style="background:{c}" title="{note}&#10;next: {pred}">'
                f'{"↵" + chr(10) if chars[t] == chr(10) else chars[t]}</span>'
                for t, c, note, pred in zip(range(start, stop), colours, notes, predictions,
                                            strict=True))
        # tex2jax_ignore / mathjax_ignore: a '$' in the text must not start a formula.
        self.view.value = ('<div class="charrnn-inside tex2jax_ignore mathjax_ignore" style="'
                           'font-family:var(--jp-code-font-family, monospace);font-size:13px;'
                           'white-space:pre-wrap;line-height:1.6;max-height:30em;overflow:auto;'
                           f'border:1px solid #ccc;padding:4px">{body}</div>{legend}')
        self.last_ms = (time.perf_counter() - start_time) * 1000
        self.status.value = (f'<span style="color:#666">characters {start:,}–{stop:,} of '
                             f"{len(self.trace):,} · {self.last_ms:.0f} ms</span>")

    def close(self) -> None:
        from .widget_tools import close_tree
        close_tree(self.widget)

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        return f"<InspectorPanel for {self.model.summary()}: {len(self.trace):,} characters>"

    # ---- events ----------------------------------------------------------------------------
    def _on_change(self, change) -> None:
        if not self._quiet:
            self.render()

    def _on_finder(self, change) -> None:
        i = change["new"]
        if i is not None and i >= 0:
            m = self.matches[i]
            self.show_unit(m.layer, m.state, m.unit)

    # ---- pieces ----------------------------------------------------------------------------
    def _scale(self, layer: int, state: str, unit: int) -> float:
        """1 for states within -1..1; for the cell state, its largest |value| over the text."""
        if state != "c":
            return 1.0
        key = (layer, unit)
        if key not in self._c_scale:
            top = float(np.abs(self.trace.unit(layer, state, unit)).max())
            self._c_scale[key] = top if top > 0 else 1.0
        return self._c_scale[key]

    def _predictions(self, start: int) -> list[str]:
        """Hover text of the 5 likeliest next characters after each character of the page
        starting at ``start`` (computed once per page)."""
        if start not in self._pred_cache:
            stop = min(start + self.window, len(self.trace))
            chars = self.trace.chars
            ids, p = self._top_ids[start:stop].tolist(), self._top_p[start:stop].tolist()
            self._pred_cache[start] = [
                "  ".join(f"{html.escape(_SHORT.get(chars[i], chars[i]))} {q:.2f}"
                          for i, q in zip(row, qs, strict=True))
                for row, qs in zip(ids, p, strict=True)]
        return self._pred_cache[start]

    def _columns(self, start, stop, colours, notes, predictions) -> str:
        """Each character over a column of its 5 likeliest successors, shaded by probability
        in 4 steps (classes of one <style>, so a page of 3,000 columns stays near 0.5 MB)."""
        chars, labels = self.trace.chars, self._chars
        short = [html.escape(_SHORT.get(c, c)) for c in chars]
        ids = self._top_ids[start:stop].tolist()
        shade = np.minimum((self._top_p[start:stop] * 4).astype(np.int64), 3).tolist()  # (n, 5)
        parts = [_COLUMN_STYLE]
        for t, c, note, row, qs in zip(range(start, stop), colours, notes, ids, shade,
                                       strict=True):
            shown = "↵" if labels[t] == "\n" else "&nbsp;" if labels[t] == " " else labels[t]
            below = "".join(f'<i class="q{q}">{short[i]}</i>'
                            for i, q in zip(row, qs, strict=True))
            parts.append(f'<span class="k" title="{note}"><b style="background:{c}">{shown}</b>'
                         f"{below}</span>")
            if labels[t] == "\n":
                parts.append("<br>")
        return "".join(parts)

    def _saturation_html(self) -> str:
        if not GATES[self.trace.cell]:
            return ('<div style="color:#666;font-size:12px">gate saturation: a vanilla RNN has '
                    "no gates</div>")
        return saturation_svg(gate_saturation(self.trace))


_COLUMN_STYLE = """<style>
.charrnn-inside .k { display:inline-block; vertical-align:top; text-align:center;
  min-width:0.8em; margin:0 1px 6px 0; white-space:pre; }
.charrnn-inside .k b { display:block; font-weight:normal; }
.charrnn-inside .k i { display:block; font-style:normal; font-size:10px; color:#333; }
.charrnn-inside .q0 { opacity:0.3 } .charrnn-inside .q1 { opacity:0.5 }
.charrnn-inside .q2 { opacity:0.75 } .charrnn-inside .q3 { opacity:1 }
</style>"""


def _legend(table, ticks, label: str) -> str:
    stops = ", ".join(table[i] for i in np.linspace(0, len(table) - 1, 9).astype(int))
    marks = " ".join(f"{t:g}" for t in ticks)
    return (f'<div style="font-size:11px;color:#666;margin-top:2px">{html.escape(label)}: '
            f'<span style="display:inline-block;width:120px;height:10px;vertical-align:middle;'
            f'background:linear-gradient(to right, {stops})"></span> {html.escape(marks)}</div>')


def saturation_svg(saturations, width: int = 720, height: int = 230) -> str:
    """The paper's gate-saturation figure as SVG: one panel per gate, one point per unit at
    (share of time below 0.1, share of time above 0.9), one colour per layer.
    ``saturations``: ``charrnn_magic.unit_finder.gate_saturation(trace)``."""
    gates = list(dict.fromkeys(s.gate for s in saturations))
    layers = sorted({s.layer for s in saturations})
    n = max(len(gates), 1)
    gap, left, bottom, top = 18, 36, 30, 22
    side = min((width - left - gap * (n - 1) - 10) / n, height - top - bottom)
    names = {"i": "input gate", "f": "forget gate", "o": "output gate", "r": "reset gate",
             "z": "update gate"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="gate saturation">']
    font = 'font-family="sans-serif" font-size="11" fill="#555"'
    for k, gate in enumerate(gates):
        x0 = left + k * (side + gap)
        parts.append(f'<text x="{x0 + side / 2:.1f}" y="14" text-anchor="middle" {font}>'
                     f"{names.get(gate, gate)}</text>")
        parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{side:.1f}" height="{side:.1f}" '
                     'fill="none" stroke="#888"/>')
        # Every point lies on or below left + right = 1 (a unit cannot be both at once).
        parts.append(f'<line x1="{x0:.1f}" y1="{top}" x2="{x0 + side:.1f}" y2="{top + side:.1f}" '
                     'stroke="#ddd"/>')
        for t in (0, 0.5, 1):
            parts.append(f'<text x="{x0 + t * side:.1f}" y="{top + side + 12:.1f}" '
                         f'text-anchor="middle" {font}>{t:g}</text>')
            if k == 0:
                parts.append(f'<text x="{x0 - 4:.1f}" y="{top + side - t * side + 4:.1f}" '
                             f'text-anchor="end" {font}>{t:g}</text>')
        parts.append(f'<text x="{x0 + side / 2:.1f}" y="{top + side + 25:.1f}" '
                     f'text-anchor="middle" {font}>share of time &lt; 0.1</text>')
        for s in saturations:
            if s.gate != gate:
                continue
            colour = LAYER_COLOURS[s.layer % len(LAYER_COLOURS)]
            xs = x0 + np.asarray(s.left) * side
            ys = top + side - np.asarray(s.right) * side
            parts.extend(f'<circle class="unit layer{s.layer}" cx="{x:.1f}" cy="{y:.1f}" r="2.5" '
                         f'fill="{colour}" fill-opacity="0.6"><title>layer {s.layer} {gate}[{j}]: '
                         f"{a:.2f} below 0.1, {b:.2f} above 0.9</title></circle>"
                         for j, (x, y, a, b) in enumerate(zip(xs.tolist(), ys.tolist(),
                                                              s.left.tolist(), s.right.tolist(),
                                                              strict=True)))
    parts.append(f'<text x="10" y="{top + side / 2:.1f}" {font} text-anchor="middle" '
                 f'transform="rotate(-90 10 {top + side / 2:.1f})">share of time &gt; 0.9</text>')
    lx = left + n * (side + gap)
    for i, layer in enumerate(layers):
        colour = LAYER_COLOURS[layer % len(LAYER_COLOURS)]
        y = top + 10 + 16 * i
        if lx + 60 > width:                   # no room on the right: over the first panel
            lx = left + 6
        parts.append(f'<circle cx="{lx:.1f}" cy="{y - 4}" r="4" fill="{colour}"/>'
                     f'<text x="{lx + 8:.1f}" y="{y}" {font}>layer {layer}</text>')
    parts.append("</svg>")
    return "".join(parts)

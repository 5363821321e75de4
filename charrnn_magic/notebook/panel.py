"""The live sampler panel: play with a trained model from sliders.

::

    panel = model.panel()          # or: from charrnn_magic.notebook import sampler_panel
    panel                          # last expression of a cell: the panel shows up

Controls (each is an attribute, so code can drive the panel too: ``panel.temperature.value = 0.5``):

``temperature``   0 to 2. Low: safe, repetitive text; high: adventurous, misspelled text;
                  0: greedy (always the most likely next character).
``length``        characters to generate (in lines mode: the longest line allowed).
``seed_char``     the character the sample starts with, or "(none)": let the model choose the
                  first character (for a lines-mode model, "start of line").
``prime``         text fed through the model first (the sample continues it; it overrides
                  ``seed_char``).
``top_k``         sample only among the k most likely characters; 0 = all of them.
``count``         how many samples (lines-mode models: one line each).
``seed``          the random seed: the same settings and seed give the same text. "new sample"
                  moves to the next seed.
``heatmap``       colour every generated character by the probability the model gave it:
                  red = surprising to the model, green = what it expected.
``step``          the training step to sample from: "now" (the model as it is, the default)
                  or any step of ``model.timeline`` (the weight snapshots taken while it
                  trained), to scrub through what it wrote at step 100, 500, 2000. While the
                  model trains in the background, new snapshots join the slider as they come.
``output``        the sample, as plain text (a Textarea: ``panel.output.value`` is the text).
``heat``          the coloured version (an HTML widget), shown when ``heatmap`` is on.
``status``        how long the sample took, or what went wrong (the title line above the
                  controls shows the model's steps and loss).

Any change regenerates the sample. When the model trains in the background
(:func:`train_in_background`), the panel also regenerates about once a second, so you
watch the model learn.

How stale requests are dropped
------------------------------
The kernel handles widget messages one at a time, in order, on its main thread. If the slider's
observer generated the sample itself, every value the slider passed through while being dragged
would wait in that queue and be generated in turn, long after the user let go; a long sample
would also block the kernel for other work. JupyterLab's widget front end already sends at most
one update per widget until the kernel goes idle (newer values are merged while one is in
flight), but that throttle is per widget and per front end, and does not help when the
generation is slower than a round trip.

So, inside a kernel, an observer does no sampling. It takes a snapshot of all control values
and puts it in a one-slot mailbox (:class:`LatestOnly`), replacing any snapshot still waiting
there, then returns at once, so the kernel goes idle and the browser sends the next slider value
immediately. One worker thread per panel takes the newest snapshot, samples, writes the text,
and takes the next newest: while a slider is dragged the panel keeps generating for the latest
position, and every position it had no time for is dropped, never queued. With a single worker,
results are written in request order, so an older sample can never overwrite a newer one.

Outside a kernel (a script, a test) the panel samples synchronously inside the observer, so
setting ``panel.temperature.value`` changes ``panel.output.value`` before the assignment
returns. Force either behaviour with ``sampler_panel(model, threaded=True/False)``; with a
threaded panel, :meth:`SamplerPanel.wait` waits until the newest request is shown.
"""
from __future__ import annotations

import dataclasses
import html
import itertools
import threading
import time
import weakref

import ipywidgets as W

from .background import BackgroundTraining, train_in_background, watch_training
from .widget_compat import tooltip, widget_bundle
from .widget_tools import close_tree, in_kernel

__all__ = ["SamplerPanel", "sampler_panel", "train_in_background", "BackgroundTraining",
           "LatestOnly", "heatmap_html"]

#: Shown in the seed-character slider for "no seed character".
_NO_SEED = ""
#: The training-step slider's value for "the model as it is now".
NOW = -1

# Core widgets have no font setting for a Textarea; a <style> in an HTML widget (no JavaScript)
# makes the sample monospace, so columns of generated text line up as in the training text.
_STYLE = """<style>
.charrnn-sample textarea { font-family: var(--jp-code-font-family, monospace) !important;
  font-size: var(--jp-code-font-size, 13px); line-height: 1.35; }
</style>"""


def sampler_panel(model, **options) -> "SamplerPanel":
    """A live sampling panel for ``model`` (a :class:`charrnn_magic.CharRNN`); see the module help.

    ``options``: ``temperature``, ``length``, ``count``, ``top_k``, ``seed`` (initial values) and
    ``threaded`` (``None``: in a kernel yes, elsewhere no).
    """
    return SamplerPanel(model, **options)


@dataclasses.dataclass(frozen=True)
class _Request:
    """One snapshot of the controls: everything a regeneration needs, nothing read later."""
    number: int
    length: int
    temperature: float
    seed_char: str | None
    prime: str | None
    top_k: int | None
    count: int
    seed: int
    heatmap: bool
    step: int = NOW


class SamplerPanel:
    """The panel: ``.widget`` is the whole panel; the controls are attributes (see module help)."""

    def __init__(self, model, *, temperature: float = 0.8, length: int | None = None,
                 count: int | None = None, top_k: int = 0, seed: int = 0,
                 threaded: bool | None = None):
        self.model = model
        lines = getattr(model, "mode", None) == "lines"
        if threaded is None:
            threaded = in_kernel()
        self.threaded = bool(threaded)
        #: Set False to stop this panel from regenerating while the model trains in the background.
        self.follow_training = True
        self._closed = False

        wide = {"description_width": "initial"}
        self.temperature = W.FloatSlider(
            value=temperature, min=0.0, max=2.0, step=0.05, description="temperature",
            readout_format=".2f", continuous_update=True, style=wide,
            layout=W.Layout(width="50%"))
        # Ranges stretch to take any start value given (e.g. %charrnn_panel -n 5000).
        length = length or (80 if lines else 300)
        count = count or (10 if lines else 1)
        self.length = W.IntSlider(
            value=length, min=min(length, 5 if lines else 10),
            max=max(length, 300 if lines else 2000), step=5 if lines else 10,
            description="max line length" if lines else "length", continuous_update=True,
            style=wide, layout=W.Layout(width="50%"))
        self.seed_char = W.SelectionSlider(
            options=[("(none)", _NO_SEED)], value=_NO_SEED, description="seed character",
            continuous_update=True, style=wide, layout=W.Layout(width="100%"))
        self.prime = W.Text(
            value="", description="prime", placeholder="text the sample continues (optional)",
            continuous_update=True, style=wide, layout=W.Layout(width="40%"))
        self.top_k = W.IntSlider(
            value=top_k, min=0, max=max(top_k, 1), description="top-k (0 = all)",
            continuous_update=True, style=wide, layout=W.Layout(width="32%"))
        self.count = W.IntSlider(
            value=count, min=1, max=max(count, 50), description="samples",
            continuous_update=True, style=wide, layout=W.Layout(width="28%"))
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="random seed",
                                     style=wide, layout=W.Layout(width="180px"))
        self.new_sample = W.Button(description="new sample", icon="refresh",
                                   tooltip="next random seed", layout=W.Layout(width="130px"))
        self.heatmap = W.ToggleButton(value=False, description="confidence colours", icon="tint",
                                      tooltip="colour each character by the probability the "
                                              "model gave it", layout=W.Layout(width="170px"))
        self.status = W.HTML(value="", layout=W.Layout(margin="0 0 0 12px"))
        self.output = W.Textarea(value="", rows=12, layout=W.Layout(width="100%"))
        self.output.add_class("charrnn-sample")
        self.heat = W.HTML(value="", layout=W.Layout(width="100%", display="none"))
        self.title = W.HTML(value="")
        self.step = W.SelectionSlider(
            options=[("now", NOW)], value=NOW, description="training step",
            continuous_update=True, style=wide, layout=W.Layout(width="100%"),
            **tooltip(W.SelectionSlider,
                      "sample from the model as it was at this step of its training"))
        self._steps_quiet = False
        self._at: tuple[int, object] | None = None        # (step, model of that snapshot)
        self._update_steps()

        self.widget = W.VBox([
            W.HTML(_STYLE), self.title,
            W.HBox([self.temperature, self.length]),
            self.seed_char,
            W.HBox([self.prime, self.top_k, self.count]),
            self.step,
            W.HBox([self.seed, self.new_sample, self.heatmap, self.status],
                   layout=W.Layout(align_items="center")),
            self.output, self.heat,
        ], layout=W.Layout(width="100%", max_width="1000px"))
        self.widget.add_class("charrnn-panel")

        self._numbers = itertools.count(1).__next__       # request numbers, in submission order
        self._written = 0                                  # number of the request on screen
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()                 # unthreaded: one generation at a time
        self._vocab_ready = False
        self._worker = LatestOnly(self._render, name="charrnn-sampler") if self.threaded else None
        self.last_seconds: float | None = None             # time the last generation took

        self._setup_vocab()
        for control in (self.temperature, self.length, self.seed_char, self.prime, self.top_k,
                        self.count, self.seed, self.heatmap, self.step):
            control.observe(self._on_change, names="value")
        self.new_sample.on_click(self._on_new_sample)
        self.heatmap.observe(self._on_heatmap, names="value")
        watch_training(model, self)
        _replace_earlier_panels_of_this_cell(self)
        # The first sample is drawn right here, so the panel never shows up empty.
        self._render(self._snapshot())

    # ---- what users and tests call -------------------------------------------------------
    @property
    def text(self) -> str:
        """The text on screen (same as ``panel.output.value``)."""
        return self.output.value

    def refresh(self) -> None:
        """Regenerate with the current controls (e.g. after the model trained more); the
        training-step slider takes in the snapshots taken since."""
        self._update_steps()
        self._submit(self._snapshot())

    def regenerate(self) -> str:
        """Regenerate now, in the calling thread, and return the text (benchmarks use this)."""
        self._render(self._snapshot())
        return self.output.value

    def wait(self, timeout: float | None = 10.0) -> bool:
        """Wait until the newest request is on screen; False on timeout (threaded panels)."""
        return True if self._worker is None else self._worker.wait_idle(timeout)

    def close(self) -> None:
        """Close the widgets and stop the worker thread."""
        self.follow_training = False
        self._closed = True
        if self._worker is not None:
            self._worker.close()
        close_tree(self.widget)

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        return f"<SamplerPanel for {self.model.summary()}>"

    # ---- events --------------------------------------------------------------------------
    def _on_change(self, change) -> None:
        if not self._steps_quiet:
            self._submit(self._snapshot())

    def _update_steps(self) -> None:
        """Give the training-step slider the model's snapshot steps (the step the model is at
        is "now"); keep the chosen step, or the nearest one left if it was thinned away."""
        timeline = getattr(self.model, "timeline", ())
        current = getattr(self.model, "step", 0)
        steps = [s.step for s in timeline if s.step != current]
        options = tuple((f"{s:,}", s) for s in steps) + (("now", NOW),)
        self.step.disabled = not steps
        if options == tuple(self.step.options):
            return
        chosen = self.step.value
        if chosen != NOW and chosen not in steps:
            chosen = min(steps, key=lambda s: abs(s - chosen)) if steps else NOW
        self._steps_quiet = True
        try:
            self.step.options = options
            self.step.value = chosen
        finally:
            self._steps_quiet = False

    def _source(self, step: int):
        """The model to sample: the model itself, or a model of its snapshot of ``step``."""
        if step == NOW:
            return self.model
        if self._at is None or self._at[0] != step:
            self._at = (step, self.model.at_step(step))
        return self._at[1]

    def _on_new_sample(self, _button) -> None:
        self.seed.value = self.seed.value + 1          # the observer on seed regenerates

    def _on_heatmap(self, change) -> None:
        self.output.layout.display = "none" if change["new"] else None
        self.heat.layout.display = None if change["new"] else "none"

    def _submit(self, request: _Request) -> None:
        if self._closed:
            return
        if self._worker is not None:
            self._worker.submit(request)
        else:
            with self._sync_lock:
                self._render(request)

    def _snapshot(self) -> _Request:
        prime = self.prime.value
        self.seed_char.disabled = bool(prime)          # the engine takes a prime or a seed char
        return _Request(
            number=self._numbers(), length=int(self.length.value),
            temperature=float(self.temperature.value),
            seed_char=None if prime or self.seed_char.value == _NO_SEED else self.seed_char.value,
            prime=prime or None, top_k=int(self.top_k.value) or None, count=int(self.count.value),
            seed=int(self.seed.value), heatmap=bool(self.heatmap.value),
            step=int(self.step.value))

    # ---- generation ----------------------------------------------------------------------
    def _setup_vocab(self) -> bool:
        """Fill the vocabulary-dependent controls once the model has a vocabulary."""
        if self._vocab_ready:
            return True
        vocab = getattr(self.model, "vocab", None)
        if vocab is None:
            self.title.value = f"<b>CharRNN sampler</b> · {html.escape(self.model.summary())}"
            return False
        lines = getattr(self.model, "mode", None) == "lines"
        none_label = "(none: start of line)" if lines else "(none)"
        options = [(none_label, _NO_SEED)] + [(vocab.label(c), c) for c in vocab.chars]
        self._vocab_ready = True                       # before the option change fires observers
        self.seed_char.options = options
        self.seed_char.value = _NO_SEED
        self.top_k.max = max(len(vocab.chars), self.top_k.value)
        return True

    def _render(self, request: _Request) -> None:
        """Generate for ``request`` and show it, unless a newer request is already on screen."""
        try:
            if not self._setup_vocab():
                self._show(request, None, None, "the model is not trained yet: train it and the "
                           "panel fills in (it follows background training)", error=True)
                return
            start = time.perf_counter()
            texts, probs = self._generate(request)
            seconds = time.perf_counter() - start
            self.last_seconds = seconds
        except Exception as exc:                       # shown in the panel, never kills the worker
            self._show(request, None, None, f"{type(exc).__name__}: {exc}", error=True)
            return
        self._show(request, texts, probs, f"{seconds * 1000:.0f} ms")

    def _generate(self, r: _Request):
        args = dict(length=r.length, temperature=r.temperature, prime=r.prime,
                    seed_char=r.seed_char, top_k=r.top_k)
        model = self._source(r.step)
        if not r.heatmap:
            out = model.sample(count=r.count, seed=r.seed, **args)
            return ([out] if r.count == 1 else list(out)), None
        # sample_with_probs draws one sample per call: sample i uses seed + i.
        pairs = [model.sample_with_probs(seed=r.seed + i, **args) for i in range(r.count)]
        return [t for t, _ in pairs], [p for _, p in pairs]

    def _show(self, r: _Request, texts, probs, note: str, error: bool = False) -> None:
        with self._write_lock:
            if r.number < self._written:               # a newer request is already on screen
                return
            self._written = r.number
            at = "" if r.step == NOW else f" · as it was at step {r.step:,}"
            self.title.value = (f"<b>CharRNN sampler</b> · {html.escape(self.model.summary())}"
                                f"{at}")
            colour = "#b00" if error else "#666"
            self.status.value = f'<span style="color:{colour}">{html.escape(note)}</span>'
            if texts is None:
                return
            prefix = r.prime or ""
            lines = getattr(self.model, "mode", None) == "lines"
            sep = "\n" if lines else "\n\n" + "─" * 24 + "\n\n"
            self.output.value = sep.join(prefix + t for t in texts)
            if probs is not None:
                self.heat.value = heatmap_html(texts, probs, prefix=prefix, sep=sep)


def heatmap_html(texts, probs, prefix: str = "", sep: str = "\n") -> str:
    """Samples as HTML, each character on a background from red (p≈0) to green (p≈1).

    Hovering a character shows its probability; a newline shows as ``↵`` so its colour is visible.
    """
    parts = []
    for i, (text, p) in enumerate(zip(texts, probs, strict=True)):
        if i:
            parts.append(html.escape(sep))
        if prefix:
            parts.append(f"<b>{html.escape(prefix)}</b>")
        for char, prob in zip(text, p, strict=True):
            prob = float(prob)
            shown = "↵\n" if char == "\n" else html.escape(char)
            if prob != prob:                           # NaN: a seed character, given not drawn
                parts.append(f'<b title="seed character">{shown}</b>')
                continue
            parts.append(f'<span style="background:hsl({120 * prob:.0f},80%,82%)" '
                         f'title="p = {prob:.3f}">{shown}</span>')
    legend = "".join(f'<span style="background:hsl({120 * q:.0f},80%,82%)">&nbsp;{q:.1f}&nbsp;'
                     "</span>" for q in (0.0, 0.25, 0.5, 0.75, 1.0))
    # tex2jax_ignore / mathjax_ignore: a '$' in generated text must not start a formula.
    return ('<div class="charrnn-heat tex2jax_ignore mathjax_ignore" style="font-family:'
            'var(--jp-code-font-family, monospace);font-size:13px;white-space:pre-wrap;'
            'line-height:1.5;max-height:20em;overflow:auto;border:1px solid #ccc;padding:4px">'
            + "".join(parts) + f'</div><div style="font-size:11px;color:#666">probability: '
            f"{legend}</div>")


class LatestOnly:
    """Run ``fn(request)`` in one worker thread, always on the newest request submitted.

    :meth:`submit` never blocks on ``fn``: it replaces whatever request is still waiting (that one
    is dropped and counted in :attr:`dropped`) and wakes the worker. The worker exits after
    ``idle_exit`` seconds without work and is restarted by the next :meth:`submit`, so idle
    panels cost no thread.
    """

    def __init__(self, fn, name: str = "latest-only", idle_exit: float = 30.0):
        self._fn = fn
        self._name = name
        self._idle_exit = idle_exit
        self._cond = threading.Condition()
        self._pending = None
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.dropped = 0          # requests replaced before the worker got to them
        self.done = 0             # requests run

    def submit(self, request) -> None:
        with self._cond:
            if self._closed:
                return
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                ready = self._cond.wait_for(lambda: self._pending is not None or self._closed,
                                            self._idle_exit)
                if not ready or self._closed:
                    self._thread = None                # the next submit starts a new worker
                    self._cond.notify_all()
                    return
                request, self._pending = self._pending, None
                self._busy = True
            try:
                self._fn(request)
            except Exception:                          # fn reports its own errors; keep going
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self.done += 1
                    self._cond.notify_all()


# Panels by the notebook cell that made them: cell id -> (execute request id, panels).
_BY_CELL: dict[str, tuple[str, "weakref.WeakSet"]] = {}


def _replace_earlier_panels_of_this_cell(panel) -> None:
    """Close the panels an earlier run of the current cell made.

    Re-running a cell clears its output, but the kernel is not told, and the old panel would go
    on regenerating, unseen, every time background training refreshes its model's panels (JupyterLab
    does not report views through ``_view_count`` here). The cell id comes from the execute
    request's metadata (JupyterLab, Notebook 7 and VS Code send it); without it, nothing happens.
    Two panels made by one run of a cell both stay.
    """
    origin = _cell_origin()
    if origin is None:
        return
    cell_id, request_id = origin
    entry = _BY_CELL.get(cell_id)
    if entry is not None and entry[0] != request_id:
        for old in list(entry[1]):
            old.close()
        entry = None
    if entry is None:
        entry = _BY_CELL[cell_id] = (request_id, weakref.WeakSet())
    entry[1].add(panel)


def _cell_origin() -> tuple[str, str] | None:
    """(cell id, request id) of the cell executing now, or None outside a notebook cell."""
    try:
        from IPython import get_ipython
        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent("shell") if kernel is not None else None
    except Exception:
        return None
    if not parent or parent.get("header", {}).get("msg_type") != "execute_request":
        return None
    cell_id = (parent.get("metadata") or {}).get("cellId")
    return (str(cell_id), parent["header"].get("msg_id", "")) if cell_id else None

"""Training progress in a notebook: a progress bar, a status line, a growing loss curve and
preview samples, as ipywidgets (:class:`WidgetReporter`), or plain lines outside a kernel.

Use one directly from Python::

    from charrnn_magic.notebook.progress import make_reporter
    reporter = make_reporter(model, name="model", sample_every=200)
    reporter.start()
    model.fit(text, steps=1000, callback=reporter)
    reporter.finish(model.history)

Widgets are redrawn at most a few times a second, so drawing never slows training down.
"""
from __future__ import annotations

import html
import time

from .. import progress as text_progress
from ..progress import Reporter
from .widget_tools import in_kernel

__all__ = ["make_reporter", "WidgetReporter"]


def make_reporter(model, *, name: str = "model", quiet: bool = False, widgets: bool | None = None,
                  sample_every: int | None = None, sample_length: int = 150,
                  temperature: float = 0.8, target_loss: float | None = None,
                  interval: float | None = None, file=None) -> Reporter:
    """The right reporter for where we run: widgets in a notebook, text lines elsewhere.

    ``widgets=None`` decides by :func:`~charrnn_magic.notebook.widget_tools.in_kernel`;
    ``interval`` is the least time between two redraws (default 0.2 s for widgets, 2 s for
    text lines). ``sample_every``: steps between preview samples; ``None`` makes five previews
    in a run whose number of steps is known, ``0`` none.
    """
    kwargs = dict(name=name, sample_every=sample_every, sample_length=sample_length,
                  temperature=temperature, target_loss=target_loss, file=file)
    if widgets is None:
        widgets = in_kernel()
    if quiet or not widgets:
        return text_progress.make_reporter(model, quiet=quiet, interval=2.0 if interval is None
                                           else interval, **kwargs)
    return WidgetReporter(model, interval=0.2 if interval is None else interval, **kwargs)


class WidgetReporter(Reporter):
    """A progress bar, a status line, a growing loss curve and a preview, as ipywidgets."""

    curve_interval = 1.0   # the SVG is the biggest message: redraw it less often

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        import ipywidgets as W

        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, description=self.name[:12],
                                   bar_style="info", layout=W.Layout(width="320px"))
        self.status_html = W.HTML(value="starting…")
        self.header_html = W.HTML(value="")       # what is trained, and what was chosen
        self.curve = W.HTML(value="")
        self.preview_html = W.HTML(value="")
        self.widget = W.VBox([self.header_html, W.HBox([self.bar, self.status_html]), self.curve,
                              self.preview_html])
        self._last_curve = -float("inf")

    def open(self) -> None:
        from IPython.display import display

        lines = self.header.split("\n") if self.header else []
        self.header_html.value = "<br>".join(html.escape(line) for line in lines)
        display(self.widget)
        # What was chosen from the text, as plain text: it stays in a saved notebook.
        self.print(*self.notes)

    def fail(self) -> None:
        if self.shown:
            self.bar.bar_style = "danger"
            self.status_html.value = "training failed (see the error below)"

    def validating(self) -> None:
        if self.shown:
            self.status_html.value = html.escape(f"{self.status(self.last)} · validating…") \
                if self.last is not None else "validating…"

    def draw(self, progress) -> None:
        fraction = self.fraction
        self.bar.value = fraction if fraction is not None else 0.0
        self.status_html.value = html.escape(self.status(progress))
        now = time.perf_counter()
        if now - self._last_curve >= self.curve_interval:
            self._last_curve = now
            self._draw_curve()

    def _draw_curve(self) -> None:
        from .plots import loss_curve_svg

        self.curve.value = loss_curve_svg(getattr(self.model, "history", None), width=480,
                                          height=180)

    def _add_preview(self, step: int, text: str) -> None:
        super()._add_preview(step, text)
        self.preview_html.value = (
            f"<div style='color:#666;font-size:0.9em'>sample at step {step:,}</div>"
            f"<pre style='margin:0;white-space:pre-wrap'>{html.escape(text)}</pre>")

    def finish(self, history=None) -> str:
        self.show()
        line = self.summary(history)
        interrupted = history is not None and getattr(history, "interrupted", False)
        if not interrupted:
            self.bar.value = 1.0
        self.bar.bar_style = "warning" if interrupted else "success"
        self.status_html.value = html.escape(line)
        if self.last is not None:
            self._draw_curve()
        # Also as plain text: it stays in the saved notebook even without the widget state.
        self.print(line)
        return line

"""Training in a background thread, with a live dashboard, so the notebook stays usable.

::

    from charrnn_magic.notebook import train_in_background
    run = train_in_background(model, text, steps=5000)   # returns at once
    run                      # last expression of a cell: progress bar, loss curve, Stop button
    model.panel()            # in another cell: the samples improve while you watch

``train_in_background(model, text, **fit_kwargs)`` takes the same keyword arguments as
``model.fit`` (``callback=`` is still called; ``stop_event=`` is managed for you) and returns a
:class:`BackgroundTraining`:

``run.stop()``      ask the run to stop after the current step (the Stop button does the same)
                    and wait for it; the model keeps everything learned so far.
``run.join()``      wait for the end; returns the :class:`~charrnn_magic.History`, or raises the
                    error that ended the run.
``run.running``     True until the run has ended;  ``run.error``: the exception, if one ended it.
``run.widget``      the dashboard (progress bar, loss curve, Stop button).

The model can be sampled and its panel used while it trains: the engine samples from a
consistent copy of the latest weights. Starting a second training of the same model while one
runs raises :class:`RuntimeError`. Bad ``fit`` arguments raise their ``ValueError`` right here,
not later in the thread.

While it trains, every sampler panel of the model regenerates about once a second (``sample_every``;
a panel with ``panel.follow_training = False``, or closed, does not).
"""
from __future__ import annotations

import html
import threading
import time
import weakref

import ipywidgets as W

from ..progress import format_duration, status_parts, stop_words
from .plots import loss_curve_svg
from .widget_compat import widget_bundle
from .widget_tools import close_tree

__all__ = ["BackgroundTraining", "train_in_background", "watch_training"]

# Panels to refresh while their model trains: id(model) -> panels. A panel holds its model, so
# while any panel is alive the id cannot be reused by another model; dead panels just vanish.
_WATCHERS: dict[int, "weakref.WeakSet"] = {}
_WATCHERS_LOCK = threading.Lock()


def watch_training(model, panel) -> None:
    """Have ``panel.refresh()`` called periodically while ``model`` trains in the background."""
    with _WATCHERS_LOCK:
        _WATCHERS.setdefault(id(model), weakref.WeakSet()).add(panel)


def _watchers(model) -> list:
    with _WATCHERS_LOCK:
        panels = _WATCHERS.get(id(model))
        return [] if panels is None else list(panels)


def train_in_background(model, text: str, *, refresh_every: float = 0.5,
                        sample_every: float = 1.0, startup_timeout: float = 5.0,
                        **fit_kwargs) -> "BackgroundTraining":
    """Start ``model.fit(text, **fit_kwargs)`` in a daemon thread; return its dashboard object.

    ``refresh_every``: seconds between dashboard updates; ``sample_every``: seconds between
    regenerations of the model's sampler panels. The call waits up to
    ``startup_timeout`` seconds for the first training step, so that errors in the arguments
    (and a run already in progress) are raised here.
    """
    return BackgroundTraining(model, text, refresh_every=refresh_every,
                              sample_every=sample_every, startup_timeout=startup_timeout,
                              **fit_kwargs)


class BackgroundTraining:
    """One background training run and its dashboard (see the module help)."""

    def __init__(self, model, text: str, *, refresh_every: float = 0.5, sample_every: float = 1.0,
                 startup_timeout: float = 5.0, **fit_kwargs):
        if getattr(model, "is_training", False):
            raise RuntimeError(
                "this model is already training (in the background?): stop that run first "
                "(its Stop button, or .stop() on the object train_in_background returned)")
        self.model = model
        self.refresh_every = refresh_every
        self.sample_every = sample_every
        self.stop_event = fit_kwargs.pop("stop_event", None) or threading.Event()
        self._user_callback = fit_kwargs.pop("callback", None)
        self._fit_kwargs = fit_kwargs
        self.history = None
        self.error: BaseException | None = None
        self.progress = None                            # the latest Progress from the engine
        self._started = threading.Event()               # first step done (or the run ended)
        self._done = threading.Event()                  # fit returned or raised
        self._ui_done = threading.Event()               # dashboard shows the final state
        self._t0 = time.monotonic()

        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                   layout=W.Layout(width="60%"))
        self.info = W.HTML(value="starting…")
        self.curve = W.HTML(value=loss_curve_svg(getattr(model, "history", None)))
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="warning",
                                    tooltip="stop after the current step; the model keeps "
                                            "what it learned")
        # The button holds the event, not this object: an open dashboard must not keep the
        # model (and its worker child process) alive after the run.
        stop_event = self.stop_event
        self.stop_button.on_click(lambda _b: stop_event.set())
        self.title = W.HTML(value=f"<b>Training in the background</b> · "
                                  f"{html.escape(model.summary())}")
        self.widget = W.VBox([self.title,
                              W.HBox([self.bar, self.stop_button],
                                     layout=W.Layout(align_items="center")),
                              self.info, self.curve])
        self.widget.add_class("charrnn-training")

        self._thread = threading.Thread(target=self._train, args=(text,), daemon=True,
                                        name="charrnn-train")
        self._thread.start()
        self._started.wait(startup_timeout)
        if self._done.is_set() and self.error is not None and self.progress is None:
            # Failed before the first step (bad arguments, already training): say so here. A
            # later error, even a quick one, belongs to the run: the dashboard and join() show it.
            self._ui_done.set()
            close_tree(self.widget)                    # never shown: free its widgets
            raise self.error
        self._ui = threading.Thread(target=self._ui_loop, daemon=True, name="charrnn-dashboard")
        self._ui.start()

    # ---- what users call -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def stop(self, wait: bool = True, timeout: float | None = 60.0) -> None:
        """Stop after the current step (the model keeps what it learned); wait for the end."""
        self.stop_event.set()
        if wait:
            self._done.wait(timeout)
            self._ui_done.wait(timeout)

    def join(self, timeout: float | None = None):
        """Wait for the end of the run; return its History, or raise what ended it."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s")
        self._ui_done.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.history

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        state = "running" if self.running else ("failed" if self.error else "finished")
        return f"<BackgroundTraining {state}: {self.model.summary()}>"

    # ---- the two threads -----------------------------------------------------------------
    def _train(self, text: str) -> None:
        try:
            self.history = self.model.fit(text, callback=self._on_progress,
                                          stop_event=self.stop_event, **self._fit_kwargs)
        except BaseException as exc:                   # kept, shown and re-raised by join()
            self.error = exc
        finally:
            self._done.set()
            self._started.set()

    def _on_progress(self, progress) -> None:
        # Runs in the training thread after every step: keep it cheap; the UI thread draws.
        self.progress = progress
        self._started.set()
        if self._user_callback is not None:
            self._user_callback(progress)

    def _ui_loop(self) -> None:
        next_sample = time.monotonic() + self.sample_every
        next_curve = 0.0
        try:
            while True:
                finished = self._done.wait(self.refresh_every)
                now = time.monotonic()
                self._draw_progress()
                if finished or now >= next_curve:
                    self.curve.value = loss_curve_svg(self.model.history)
                    # Long histories make bigger pictures: redraw less often as they grow.
                    next_curve = now + max(self.refresh_every, 1.0)
                if finished or now >= next_sample:
                    self._refresh_panels()
                    next_sample = now + self.sample_every
                if finished:
                    self._draw_end()
                    return
        finally:
            self._ui_done.set()

    def _refresh_panels(self) -> None:
        for panel in _watchers(self.model):
            if panel.follow_training:
                try:
                    panel.refresh()
                except Exception:                      # a broken panel must not stop the UI
                    pass

    def _draw_progress(self) -> None:
        p = self.progress
        if p is None:
            self.info.value = f"starting… {time.monotonic() - self._t0:.0f} s"
            return
        if p.fraction is not None:
            self.bar.value = min(max(float(p.fraction), 0.0), 1.0)
        parts = status_parts(p)
        running = self.running and not self.stop_event.is_set()
        left = f" (≈{format_duration(p.eta)} left)" if p.eta is not None and running else ""
        parts.append(format_duration(p.elapsed) + left)
        if self.stop_event.is_set():
            parts.append("stopping…")
        self.info.value = " · ".join(parts)

    def _draw_end(self) -> None:
        self.stop_button.disabled = True
        self.title.value = f"<b>Training</b> · {html.escape(self.model.summary())}"
        if self.error is not None:
            self.bar.bar_style = "danger"
            self.info.value = (f'<span style="color:#b00">stopped by an error: '
                               f"{html.escape(type(self.error).__name__)}: "
                               f"{html.escape(str(self.error))}</span>")
            return
        history = self.history
        reason = getattr(history, "stop_reason", "") or ""
        stopped = reason in ("stopped", "interrupted")
        self.bar.bar_style = "warning" if stopped else "success"
        if not stopped:
            self.bar.value = 1.0
        self._draw_progress()
        detail = getattr(history, "stop_detail", "") or stop_words(reason)
        self.info.value = (("stopped" if stopped else f"done ({html.escape(detail)})") + " · "
                           + self.info.value.replace(" · stopping…", ""))

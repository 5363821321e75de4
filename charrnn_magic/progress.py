"""Progress of a training run, shown while ``model.fit`` works.

A reporter is the ``callback=`` of :meth:`CharRNN.fit`: it is called with a
:class:`~charrnn_magic.Progress` after every step and decides itself how often to draw.

* :class:`TextReporter` (terminal IPython, plain Python, logs) prints a plain line every couple of
  seconds, and the previews. In a notebook the magics use the widget reporter of
  :mod:`charrnn_magic.notebook.progress` instead, built on the same :class:`Reporter`.
* :class:`QuietReporter` prints nothing but the news of an interruption.

Every reporter ends with :meth:`Reporter.finish`, which prints a one-line summary::

    charrnn: 1,000 steps in 12.4 s (8,050 chars/s): loss 1.623, val 1.710

with what ended the run and which weights the model keeps::

    charrnn: 2,950 steps in 3 min 00 s (24,100 chars/s) (no improvement for 800 steps: kept step
    2,150, val 1.41): loss 1.301, val 1.410

When validation has risen clearly above its best, the status and the summary say so
("over-fitting: val 2.31 is 0.41 above its best (1.90 at step 220); the model keeps the best
weights").

Or, after an interrupt::

    charrnn: stopped at step 340 of 1,000 after 4.1 s; the model keeps what it learned (loss
    2.104, val 2.190)

Use one directly from Python::

    from charrnn_magic.progress import make_reporter
    reporter = make_reporter(model, name="model", sample_every=200)
    reporter.start()
    model.fit(text, steps=1000, callback=reporter)
    reporter.finish(model.history)
"""
from __future__ import annotations

import sys
import time

from .stopping import clearly_above

__all__ = ["make_reporter", "Reporter", "TextReporter", "QuietReporter", "format_duration",
           "overfitting", "STOP_REASONS", "stop_words"]

#: What ended a run (``History.stop_reason``), in the words of the summary line, the background
#: dashboard and ``%charrnn_info``: the one place they are worded.
STOP_REASONS = {
    "steps": "ran all its steps",
    "minutes": "used its time budget",
    "target_loss": "reached the target loss",
    "no_improvement": "stopped early: validation had stopped improving",
    "recited": "stopped once it recited the text",
    "interrupted": "was interrupted",
    "stopped": "was stopped",
    "error": "stopped by an error",
}


def stop_words(reason: str | None) -> str:
    """``reason`` (a ``History.stop_reason``) in words; ``"?"`` for none."""
    return STOP_REASONS.get(reason, reason) if reason else "?"


def make_reporter(model, *, name: str = "model", quiet: bool = False,
                  sample_every: int | None = None, sample_length: int = 150,
                  temperature: float = 0.8, target_loss: float | None = None,
                  interval: float = 2.0, file=None) -> "Reporter":
    """A reporter of plain lines (or a quiet one), for terminals, scripts and logs.

    ``interval``: the least time between two status lines. ``sample_every``: steps between
    preview samples; ``None`` makes five previews in a run whose number of steps is known,
    ``0`` none. In a notebook, :func:`charrnn_magic.notebook.progress.make_reporter` picks the
    widgets instead.
    """
    kind = QuietReporter if quiet else TextReporter
    return kind(model, name=name, sample_every=sample_every, sample_length=sample_length,
                temperature=temperature, target_loss=target_loss, interval=interval, file=file)


def status_parts(p) -> list[str]:
    """The pieces every progress display shows: ``step 340/1,000 (34%)``, ``loss 2.134``,
    ``val 2.201`` (once validated) and ``8,123 chars/s``."""
    step = f"step {p.run_step:,}" + (f"/{p.run_steps:,}" if p.run_steps else "")
    if p.fraction is not None:
        step += f" ({p.fraction:.0%})"
    parts = [step, f"loss {p.loss:.3f}"]
    if p.val_loss is not None:
        parts.append(f"val {p.val_loss:.3f}")
    parts.append(f"{p.chars_per_sec:,.0f} chars/s")
    return parts


def overfitting(val_loss, best_val_loss, best_step, keep_best=True, loss=None) -> str | None:
    """``over-fitting: val 2.31 is 0.41 above its best (1.90 at step 220); the model keeps the
    best weights``, when validation has risen clearly above its best while the training loss
    (``loss``, when given) is below that best; else None (early noise is not over-fitting)."""
    if val_loss is None or best_val_loss is None or best_step is None:
        return None
    if loss is not None and loss >= best_val_loss:
        return None
    if not clearly_above(val_loss, best_val_loss):
        return None
    gap = val_loss - best_val_loss
    keeps = ("the model keeps the best weights" if keep_best else
             "keep_best is off: the model ends with the last weights")
    return (f"over-fitting: val {val_loss:.2f} is {gap:.2f} above its best "
            f"({best_val_loss:.2f} at step {best_step:,}); {keeps}")


def _overfitting_of(p) -> str | None:
    """``overfitting`` for a ``Progress``."""
    return overfitting(p.val_loss, getattr(p, "best_val_loss", None),
                       getattr(p, "best_step", None), getattr(p, "keep_best", True), p.loss)


def format_duration(seconds: float | None) -> str:
    """``4.1 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds is None:
        return "?"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Reporter:
    """Records the latest :class:`Progress`; subclasses decide what to draw and when."""

    def __init__(self, model, *, name: str = "model", sample_every: int | None = None,
                 sample_length: int = 150, temperature: float = 0.8,
                 target_loss: float | None = None, interval: float = 2.0, file=None):
        self.model = model
        self.name = name
        self.sample_every = sample_every     # None: five previews per run of known length
        self.sample_length = sample_length
        self.temperature = temperature
        self.target_loss = target_loss
        self.interval = interval
        self._file = file
        self.last = None               # the latest Progress
        self.first_loss = None
        self.previews: list[tuple[int, str]] = []   # (step, text) of every preview made
        self.header = None
        self.notes: list[str] = []     # what the model chose by itself (``fit_notes``), at show()
        self.shown = False             # whether anything was drawn yet
        self._started = None
        self._last_draw = -float("inf")
        self._preview_broken = False

    @property
    def file(self):
        # Looked up at each write, so pytest's capsys and redirect_stdout see the output.
        return self._file if self._file is not None else sys.stdout

    def print(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.file)
        self.file.flush()

    # -- the protocol -------------------------------------------------------------------------
    def start(self, header: str | None = None) -> None:
        """Call before ``fit``: starts the clock. ``header`` (what is being trained) is shown
        with the first step, so that a ``fit`` refusing its arguments leaves no trace."""
        self._started = time.perf_counter()
        self.header = header

    def show(self) -> None:
        """Put the display up (once): the header line, or the widgets. A callable header is
        called now; the header is followed by what the model chose by itself (``fit_notes``)."""
        if not self.shown:
            self.shown = True
            if callable(self.header):
                self.header = self.header()
            self.notes = list(getattr(self.model, "fit_notes", None) or [])
            self.open()

    def validating(self) -> None:
        """Called by the training loop before each validation (subclasses: show it)."""

    def open(self) -> None:
        """Subclasses: draw the display for the first time."""

    def fail(self) -> None:
        """``fit`` raised: mark the display (if any) as failed; the caller reports the error."""

    def __call__(self, progress) -> None:
        if self._started is None:
            self._started = time.perf_counter() - progress.elapsed
        self.last = progress           # first: a header made at show() may read it
        self.show()
        if self.first_loss is None:
            self.first_loss = progress.loss
        if self._preview_due(progress):
            self._add_preview(progress.step, self._make_preview(progress.step))
        now = time.perf_counter()
        if now - self._last_draw >= self.interval or progress.run_step == 1:
            self._last_draw = now
            self.draw(progress)

    def draw(self, progress) -> None:
        """Show ``progress``; called at most once per ``interval`` seconds."""

    def finish(self, history=None) -> str:
        """Call after ``fit``: shows and returns the one-line summary."""
        self.show()
        line = self.summary(history)
        self.print(line)
        return line

    # -- pieces -------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return 0.0 if self._started is None else time.perf_counter() - self._started

    @property
    def fraction(self) -> float | None:
        """Share of the run done: from the engine, or estimated from the way to a target loss."""
        p = self.last
        if p is None:
            return 0.0
        if p.fraction is not None:
            return min(max(p.fraction, 0.0), 1.0)
        if self.target_loss is not None and self.first_loss is not None:
            span = self.first_loss - self.target_loss
            if span > 0:
                return min(max((self.first_loss - p.loss) / span, 0.0), 1.0)
        return None

    def status(self, progress) -> str:
        """``step 340/1,000 (34%) · loss 2.134 · val 2.201 · 8,123 chars/s · ETA 9.0 s``"""
        parts = status_parts(progress)
        if progress.eta is not None:
            parts.append(f"ETA {format_duration(progress.eta)}")
        warning = _overfitting_of(progress)
        return " · ".join(parts + ([warning] if warning else []))

    def summary(self, history=None) -> str:
        """The one line that stays after training."""
        history = history if history is not None else getattr(self.model, "history", None)
        p = self.last
        run_step = p.run_step if p else 0
        took = format_duration(self.elapsed)
        loss = getattr(history, "last_loss", None) if history is not None else None
        val = getattr(history, "last_val_loss", None) if history is not None else None
        if loss is None and p is not None:
            loss, val = p.loss, p.val_loss
        losses = (f"loss {loss:.3f}" if loss is not None else "") + (
            f", val {val:.3f}" if val is not None else "")
        total = getattr(self.model, "step", run_step)
        also = f"; {total:,} steps in all" if total != run_step else ""
        if history is not None and getattr(history, "interrupted", False):
            if run_step == 0:
                return f"{self.name}: stopped before the first step; the model is unchanged"
            of = f" of {p.run_steps:,}" if p and p.run_steps else ""
            return (f"{self.name}: stopped at step {run_step:,}{of} after {took}; the model keeps "
                    f"what it learned ({losses}{also})")
        reason = getattr(history, "stop_reason", "") if history is not None else ""
        # The end of a run that its steps or its detail do not already say.
        why = stop_words(reason) if reason in ("minutes", "target_loss") else ""
        detail = getattr(history, "stop_detail", "") if history is not None else ""
        why = "; ".join(w for w in (why, detail) if w)
        why = f" ({why})" if why else ""
        rate = f" ({p.chars_per_sec:,.0f} chars/s)" if p else ""
        line = f"{self.name}: {run_step:,} steps in {took}{rate}{why}: {losses}{also}"
        warning = p and _overfitting_of(p)
        return f"{line}; {warning}" if warning else line

    # -- previews -----------------------------------------------------------------------------
    def _preview_due(self, p) -> bool:
        if self.sample_every is None:
            self.sample_every = max(1, p.run_steps // 5) if p.run_steps else 0
        return bool(self.sample_every) and not self._preview_broken and (
            p.run_step % self.sample_every == 0)

    def _make_preview(self, step: int) -> str:
        """A short sample from the weights as they are now.

        Seeded by the step so the preview neither draws from nor disturbs the training RNG.
        """
        try:
            if getattr(self.model, "mode", None) == "lines":
                lines = self.model.sample(length=self.sample_length, temperature=self.temperature,
                                          count=3, seed=step)
                return "\n".join(lines)
            return self.model.sample(length=self.sample_length, temperature=self.temperature,
                                     seed=step)
        except Exception as exc:  # a preview must never end a training run
            self._preview_broken = True
            return f"(no preview: {exc})"

    def _add_preview(self, step: int, text: str) -> None:
        self.previews.append((step, text))


class QuietReporter(Reporter):
    """Draws nothing; :meth:`finish` speaks only when training was interrupted."""

    def _preview_due(self, p) -> bool:
        return False

    def finish(self, history=None) -> str:
        line = self.summary(history)
        if history is not None and getattr(history, "interrupted", False):
            self.print(line)
        return line


class TextReporter(Reporter):
    """Plain lines, for terminals and logs: at the first step, then every ``interval`` seconds."""

    def open(self) -> None:
        self.print(*([self.header] if self.header else []), *self.notes)

    def draw(self, progress) -> None:
        self.print("  " + self.status(progress))

    def _add_preview(self, step: int, text: str) -> None:
        super()._add_preview(step, text)
        self.print(f"  --- sample at step {step:,} ---", *("  | " + s for s in text.split("\n")))

"""The training loop: stop rules, validation, progress callbacks, and safety.

Safety means: Ctrl-C (or a ``KeyboardInterrupt`` from a callback) ends training between steps with
every finished step kept; a non-finite loss or gradient stops training *before* the update that
would spoil the weights, so the model keeps the last finite weights.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .data import LineBatches
from .optim import clip_, whole


class TrainingDiverged(ValueError):
    """The loss or the gradients became infinite or NaN; the last finite weights were kept."""


@dataclass
class Progress:
    """What a progress callback is told after every training step."""

    step: int                   # steps this model has trained in total
    run_step: int               # steps done in this fit call
    run_steps: int | None       # steps this fit call will do, when known
    epoch: float                # epochs done in this fit call
    loss: float                 # smoothed training loss, nats per character
    val_loss: float | None      # latest validation loss, nats per character
    validated: bool             # whether val_loss was computed at this step
    chars_per_sec: float
    elapsed: float              # seconds in this fit call
    eta: float | None           # seconds left, when known
    fraction: float | None      # share of this fit call done, when known


@dataclass
class History:
    """Losses over all fit calls: ``loss`` (smoothed, every step) and ``val_loss`` (each validation)."""

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    val_step: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    interrupted: bool = False
    stop_reason: str = ""

    @property
    def last_loss(self):
        return self.loss[-1] if self.loss else None

    @property
    def last_val_loss(self):
        return self.val_loss[-1] if self.val_loss else None


@dataclass
class StopRules:
    steps: int | None = None
    minutes: float | None = None
    target_loss: float | None = None


class SmoothedLoss:
    """Exponential moving average with bias correction, so the first values are not dragged
    towards zero (or towards a guessed start, as min-char-rnn does)."""

    def __init__(self, beta: float = 0.98):
        self.beta, self.avg, self.n = beta, 0.0, 0

    def update(self, value: float) -> float:
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta**self.n)


class HalvesInParallel:
    """The loss and gradients of a batch computed as two halves side by side: one by a twin of
    the network in a child process (``twin.py``; or in a thread where no process can start),
    one in the calling thread.

    Each half runs with single-threaded BLAS on a core of its own. The halves meet once per
    window, not once per matrix product as BLAS threads do, so when the other core is busy a
    step only loses the overlap (measured: about 15 % slower) instead of stalling (OpenBLAS
    threads: 4-50x slower).
    """

    def __init__(self, net, process: bool = True, reuse_memory: bool = True):
        from concurrent.futures import ThreadPoolExecutor

        from .twin import ThreadTwin, twin_process

        self.net = net
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="charrnn-half-batch")
        self._twin = lambda: (process and twin_process(net, reuse_memory)) or ThreadTwin(net, self.pool)
        self.twin = self._twin()
        middle = net.size // 2
        self.parts = (slice(0, middle), slice(middle, net.size))

    def split(self, update) -> None:
        """Run ``update(part)`` for the two halves of the flat weight range, one per thread: the
        gradient merge and the optimiser step are element-wise, and one core alone took 9 % of an
        LSTM 2x256 window over them (Adam 2.8 ms; 0.9 ms as two halves)."""
        pending = self.pool.submit(update, self.parts[0])
        update(self.parts[1])
        pending.result()

    def loss(self, X, Y, mask, state, rng=None):
        B = X.shape[1]
        b = B // 2
        first, second = slice(0, b), slice(b, B)

        def half(part):
            return (np.ascontiguousarray(X[:, part]), np.ascontiguousarray(Y[:, part]),
                    None if mask is None else mask[:, part],
                    [tuple(a[part] for a in layer) for layer in state])

        # Each half draws its own dropout masks from a generator seeded from the training
        # generator, so a run stays reproducible.
        seeds = [None, None] if rng is None else [int(s) for s in rng.integers(2**63, size=2)]
        if not self.twin.usable():              # a child that idled out (a long pause in a callback)
            self.twin = self._twin()
        self.twin.start(self.net.flat, *half(first), seeds[0])
        try:
            loss_b, state_b = self.net.loss(*half(second), None if rng is None else np.random.default_rng(seeds[1]))
        finally:
            loss_a, state_a = self.twin.finish()      # collected even on error: no stale reply

        def merge(part):
            # Each half's gradient is averaged over its own sequences; weight them back to the
            # batch. The twin's buffer is rewritten by its next window, so it can be scaled here.
            grad, twin = self.net.grad[part], self.twin.grad[part]
            grad *= (B - b) / B
            twin *= b / B
            grad += twin

        self.split(merge)
        new_state = [tuple(np.concatenate(pair) for pair in zip(sa, sb)) for sa, sb in zip(state_a, state_b)]
        return loss_a + loss_b, new_state

    def close(self):
        self.pool.shutdown(wait=True)


def run(session, rules: StopRules, *, callback=None, stop_event=None, eval_every=None,
        keep_best=False, lr_schedule=None, workers=1, worker_process=True) -> History:
    """Train ``session`` (a ``charrnn.TrainingSession``) until a stop rule fires; ``workers`` 2
    computes each batch as two halves in parallel (see ``HalvesInParallel``), the second in a
    child process when ``worker_process``."""
    model = session.model
    net, opt, history = model._net, model._optimizer, model.history
    settings = model._settings
    clip, clip_mode = settings["clip"], settings["clip_mode"]
    dropout_rng = model._rng if net.dropout else None
    batches_per_epoch = session.batches.batches_per_epoch

    run_steps = rules.steps
    budget = rules.minutes * 60.0 if rules.minutes else None
    if eval_every is None and run_steps:
        eval_every = max(1, run_steps // 20)
    eval_seconds = None if eval_every else (budget / 20 if budget else 10.0)

    base_lr = opt.lr
    smooth = SmoothedLoss()
    best_val, best_weights = math.inf, None
    val_loss = history.last_val_loss
    run_step, chars = 0, 0
    start = last_eval = time.perf_counter()
    history.interrupted, reason = False, ""

    def validate():
        nonlocal val_loss, best_val, best_weights
        val_loss = session.validation_loss()
        if val_loss is not None:
            history.val_step.append(model.step)
            history.val_loss.append(val_loss)
            if keep_best and val_loss < best_val:
                best_val, best_weights = val_loss, net.flat.copy()
        return val_loss is not None

    parallel = HalvesInParallel(net, worker_process, model.reuse_memory) if workers == 2 else None
    batch_loss = parallel.loss if parallel else net.loss
    try:
        # Overflow in a diverging run is detected and reported below, not warned about by NumPy.
        with _interrupt_between_steps() as interrupted, np.errstate(over="ignore", invalid="ignore"):
            while True:
                if interrupted.is_set():
                    raise KeyboardInterrupt
                elapsed = time.perf_counter() - start
                if run_steps is not None and run_step >= run_steps:
                    reason = "steps"
                elif budget is not None and elapsed >= budget:
                    reason = "minutes"
                elif stop_event is not None and stop_event.is_set():
                    reason = "stopped"
                if reason:
                    break

                X, Y, mask, state = session.next_batch()
                loss_sum, new_state = batch_loss(X, Y, mask, state, rng=dropout_rng)
                n_chars = X.size if mask is None else int(mask.sum())
                if not math.isfinite(loss_sum):
                    raise _diverged(model, f"the loss became {loss_sum}")
                if not math.isfinite(float(net.grad.sum())):
                    raise _diverged(model, "the gradients became infinite or NaN")
                clip_(net.grad, clip, clip_mode)
                if lr_schedule == "cosine" and (run_steps or budget):
                    opt.lr = base_lr * cosine_factor(_done_fraction(run_step, run_steps, elapsed, budget))
                with model._lock:
                    opt.step(net.flat, net.grad, parallel.split if parallel else whole)
                session.advance(new_state)
                model.step += 1
                run_step += 1
                chars += n_chars
                loss = smooth.update(loss_sum / n_chars)
                history.step.append(model.step)
                history.loss.append(loss)

                now = time.perf_counter()
                elapsed = now - start
                due = (eval_every and run_step % eval_every == 0) or (
                    eval_seconds is not None and now - last_eval >= eval_seconds)
                validated = bool(due) and validate()
                if due:
                    last_eval = time.perf_counter()
                if callback is not None:
                    callback(_progress(model, run_step, run_steps, budget, batches_per_epoch,
                                       loss, val_loss, validated, chars, elapsed))
                if rules.target_loss is not None and loss <= rules.target_loss:
                    reason = "target_loss"
                    break
    except KeyboardInterrupt:
        reason = "interrupted"
        history.interrupted = True
    finally:
        history.stop_reason = reason or "error"
        opt.lr = base_lr                      # a schedule changes the rate only within a run
        if parallel:
            parallel.close()

    if run_step and (not history.val_step or history.val_step[-1] != model.step):
        try:
            validate()
        except KeyboardInterrupt:             # a second Ctrl-C: skip the last validation only
            pass
    if keep_best and best_weights is not None and best_val < (history.last_val_loss or math.inf):
        with model._lock:
            net.flat[:] = best_weights
        history.val_step.append(model.step)
        history.val_loss.append(best_val)
    if stop_event is not None and reason == "stopped":
        history.interrupted = True
    return history


def cosine_factor(fraction: float, floor: float = 0.02) -> float:
    """Learning-rate factor that falls from 1 to ``floor`` along half a cosine as the run goes."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))


def _done_fraction(run_step, run_steps, elapsed, budget) -> float:
    """Share of the run done before this step, by steps or by time, whichever is further."""
    by_steps = run_step / run_steps if run_steps else 0.0
    by_time = elapsed / budget if budget else 0.0
    return max(by_steps, by_time)


def _diverged(model, what: str) -> TrainingDiverged:
    lr = model._settings["lr"]
    return TrainingDiverged(
        f"training diverged at step {model.step + 1}: {what}. The weights of step {model.step} were "
        f"kept; lower the learning rate (now {lr:g}) or clip the gradients (clip=5)")


def _progress(model, run_step, run_steps, budget, batches_per_epoch, loss, val_loss, validated,
              chars, elapsed) -> Progress:
    rate = chars / elapsed if elapsed > 0 else 0.0
    fraction = eta = None
    if run_steps:
        fraction = run_step / run_steps
        eta = elapsed / run_step * (run_steps - run_step)
    if budget:
        by_time = min(1.0, elapsed / budget)
        if fraction is None or by_time > fraction:
            fraction, eta = by_time, max(0.0, budget - elapsed)
    return Progress(step=model.step, run_step=run_step, run_steps=run_steps,
                    epoch=run_step / batches_per_epoch, loss=loss, val_loss=val_loss,
                    validated=validated, chars_per_sec=rate, elapsed=elapsed, eta=eta,
                    fraction=fraction)


def mean_loss(net, ids: np.ndarray, mode: str, newline_id: int | None, line_spans=None) -> float:
    """Mean nats per predicted character of ``ids`` under ``net``, without dropout or gradients.

    Stream mode: the text is cut into up to 64 streams evaluated side by side (each from a fresh
    state, padded with a mask so that every character after the first of each stream counts).
    Lines mode: each line from a fresh state, with its closing newline; ``line_spans`` is
    (starts, lengths) or (starts, lengths, whole), whole False for a line cut short, whose
    closing newline does not count.
    """
    if mode == "lines":
        starts, lengths, *whole = line_spans
        whole = whole[0] if whole else np.ones(len(starts), bool)
        total = count = 0.0
        for group in _line_groups(lengths):
            X, Y, mask = LineBatches.pad(ids, starts[group], lengths[group], newline_id,
                                         whole[group])                                   # (T, b)
            state = net.initial_state(X.shape[1])
            for p in range(0, len(X), 256):            # a long line: window by window, as streams
                loss, state = net.loss(X[p : p + 256], Y[p : p + 256], mask[p : p + 256], state,
                                       grads=False)
                total += loss
            count += mask.sum()
        return total / count
    n = len(ids) - 1
    S = int(min(64, max(1, n // 1000)))                   # streams
    L = -(-n // S)                                        # characters per stream, rounded up
    state = net.initial_state(S)
    total = 0.0
    for p in range(0, L, 256):
        # Window p of every stream, gathered from ids: no copy of the whole text.
        at = np.arange(p, min(p + 256, L))[:, None] + (np.arange(S) * L)[None, :]   # (w,S)
        mask = at < n                                                               # (w,S)
        at = np.minimum(at, n - 1)
        X, Y = ids[at].astype(np.int32), ids[at + 1].astype(np.int32)               # (w,S)
        loss, state = net.loss(X, Y, mask, state, grads=False)
        total += loss
    return total / n


def _line_groups(lengths, most: int = 256, budget: int = 1 << 16):
    """Slices of consecutive lines to evaluate together: at most ``most`` lines, padded to
    at most ``budget`` positions (lines x longest line), or one line alone when it is longer."""
    start, longest = 0, 0
    for i, n in enumerate(lengths.tolist()):
        longest_with = max(longest, n + 1)
        if i > start and (i - start == most or (i - start + 1) * longest_with > budget):
            yield slice(start, i)
            start, longest_with = i, n + 1
        longest = longest_with
    if len(lengths) > start:
        yield slice(start, len(lengths))


@contextlib.contextmanager
def _interrupt_between_steps():
    """In the main thread, make the first Ctrl-C (or a kernel interrupt) end training after the
    current step instead of in the middle of a weight update; a second Ctrl-C interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)

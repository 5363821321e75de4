"""The training loop: stop rules, validation, progress callbacks, and safety.

``run`` trains a ``TrainingSession``: one fit call's data and read position, and the network,
optimiser and the rest that a model hands over to it explicitly. ``Workers`` decides how many
workers share each batch; ``HalvesInParallel`` runs a batch as two halves side by side.

Safety means: Ctrl-C (or a ``KeyboardInterrupt`` from a callback) ends training between steps with
every finished step kept; a non-finite loss or gradient stops training *before* the update that
would spoil the weights, so the model keeps the last finite weights.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .budget import ran_out_of_memory
from .data import (
    LineBatches,
    StreamBatches,
    line_spans,
    split_lines,
    split_stream,
    validation_lines,
)
from .optim import clip_, whole_range

#: The learning-rate schedules, each with what it means (see ``cosine_factor``).
LR_SCHEDULES = {"constant": "keep the rate (the default)",
                "cosine": "lower the rate along half a cosine to 2% of lr by the end of the run"}


#: Most held-out characters one validation evaluates (``fit(full_validation=True)``: all).
VALIDATION_CHARS = 100_000
#: Streams a stream-mode validation sample is cut into, each from a fresh state.
VALIDATION_STREAMS = 64


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
    best_val_loss: float | None = None  # best validation loss of this fit call
    best_step: int | None = None        # the step that had it
    keep_best: bool = False             # whether the run ends with the best weights


@dataclass
class History:
    """Losses over all fit calls: ``loss`` (smoothed, every step) and ``val_loss`` (each
    validation).

    Of the last fit call: ``stop_reason`` (``"steps"``, ``"minutes"``, ``"target_loss"``,
    ``"no_improvement"``, ``"recited"``, ``"interrupted"``, ``"stopped"``, ``"error"``) and
    ``stop_detail``, the same in words when there is more to say (``"no improvement for 800
    steps: kept step 2,400, val 1.41"``); ``best_step`` / ``best_val_loss``, the best validation
    of the run; and ``weights_step``, the step whose weights the model holds (the best one when
    ``keep_best`` restored it, else the last step).
    """

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    val_step: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    interrupted: bool = False
    stop_reason: str = ""
    stop_detail: str = ""
    best_step: int | None = None
    best_val_loss: float | None = None
    weights_step: int | None = None

    @property
    def last_loss(self):
        return self.loss[-1] if self.loss else None

    @property
    def last_val_loss(self):
        return self.val_loss[-1] if self.val_loss else None


@dataclass
class StopRules:
    """When a run ends: after ``steps``, after ``minutes``, or at a smoothed ``target_loss``,
    whichever comes first. ``steps_detail``: what the stop reason says when ``steps`` ends it
    (empty: nothing more than "steps"). ``until_recited``: also at the end of the first pass
    after which a greedy sample recites the training text (a stream learned whole)."""

    steps: int | None = None
    minutes: float | None = None
    target_loss: float | None = None
    steps_detail: str = ""
    until_recited: bool = False

    @classmethod
    def of_fit(cls, steps, epochs, minutes, target_loss, batches_per_epoch: int,
               default_steps: int = 1000, recite_by_default: bool = False) -> "StopRules":
        """The rules of ``fit``'s arguments (checked already): ``epochs`` become steps (the fewer
        of the two when both are given); none at all means ``default_steps``, and
        ``until_recited`` when ``recite_by_default``."""
        until_recited = False
        if steps is None and epochs is None and minutes is None and target_loss is None:
            steps, until_recited = default_steps, recite_by_default
        if epochs is not None:
            steps = min(steps or math.inf, max(1, round(epochs * batches_per_epoch)))
        return cls(steps=steps, minutes=minutes, target_loss=target_loss,
                   until_recited=until_recited)


@dataclass
class Workers:
    """How many workers share each training batch (the ``CharRNN`` knobs of the same names).

    ``requested``: 1 or 2, or None to decide by size: two when one step's recurrent products
    (batch x hidden x gates*hidden x layers multiply-adds) reach ``from_macs`` with the second
    worker in a child process (``process``, POSIX only), or ``thread_from_macs`` with it in a
    thread, and the machine has two cores.
    """

    requested: int | None
    process: bool
    from_macs: int
    thread_from_macs: int

    def count(self, net, batch_size: int) -> int:
        if self.requested is not None:
            return self.requested if batch_size >= 2 else 1
        H = net.hidden_size
        macs = batch_size * H * net.cells[0].gates * H * len(net.cells)
        if hasattr(os, "sched_getaffinity"):
            cores = len(os.sched_getaffinity(0))
        else:
            cores = os.cpu_count() or 1
        process = self.process and os.name == "posix"
        threshold = self.from_macs if process else self.thread_from_macs
        return 2 if batch_size >= 2 and cores >= 2 and macs >= threshold else 1


class TrainingSession:
    """One fit call: its data, what it trains, and where in the data training reads next.

    It is made in two steps, so that a mistake changes nothing. ``TrainingSession(vocab, ids,
    settings)`` cuts the text into batches and a validation part (of which each validation
    evaluates a fixed sample of at most ``validation_chars`` characters; None: all of it),
    raising ValueError for what does not fit (in stream mode it settles
    ``settings["seq_length"]``). ``attach`` then hands over what training changes: the network,
    its optimiser, the random generator (dropout masks, the order of the lines), the lock held
    while the weights change, the history, the step count and the read position.

    The read position stays with the model so that a later fit on the same text and settings,
    or a saved and loaded model, carries on exactly where this one stopped: which epoch and
    batch, the hidden state each stream carries (stream mode), the shuffled order of the lines
    (lines mode).
    """

    def __init__(self, vocab, ids, settings: dict,
                 validation_chars: int | None = VALIDATION_CHARS):
        self.settings, self.mode = settings, settings["mode"]
        self.newline = vocab.chars.index("\n") if "\n" in vocab else None
        self.val_spans = None
        if self.mode == "stream":
            train, val = split_stream(ids, settings["val_fraction"], settings["holdout"])
            self.val_ids = val if len(val) >= 2 else None
            self.train_ids = train
            self.batches = StreamBatches(train, settings["batch_size"], settings["seq_length"])
            settings["seq_length"] = self.batches.seq_length
        else:
            starts, lengths = line_spans(ids, self.newline)
            (ts, tl), (vs, vl) = split_lines(starts, lengths, settings["val_fraction"],
                                             settings["seed"])
            self.val_ids = ids if len(vs) else None
            self.val_spans = validation_lines(vs, vl)
            self.batches = LineBatches(ids, ts, tl, settings["batch_size"], self.newline)
        #: What validation evaluates: all of the held-out part, or a fixed sample of it.
        self.validation = None
        if self.val_ids is not None:
            self.validation = ValidationSample(self.val_ids, self.mode, self.newline,
                                               self.val_spans, validation_chars)
        # Over the ids' bytes in place: a copy of a 1 GB text's ids took 15 s here, this 1 s.
        digest = hashlib.sha1(np.ascontiguousarray(ids).view(np.uint8)).hexdigest()[:16]
        self.key = (f"{self.mode}:{settings['batch_size']}:{settings['seq_length']}:"
                    f"{settings['val_fraction']}:{settings['holdout']}:{digest}")
        self.net = self.optimizer = self.rng = self.lock = self.history = self.position = None
        self.step, self.on_step = 0, None
        self.continued = False      # whether the read position (same text, settings) was kept

    def attach(self, *, net, optimizer, rng, lock, history, step: int, position, on_step=None):
        """Hand over what training changes; ``on_step(step)`` is called after every step with
        the new step count. Returns the read position to keep: ``position`` when it belongs to
        this text and these settings, else a fresh one (the start of the text)."""
        self.net, self.optimizer, self.rng, self.lock = net, optimizer, rng, lock
        self.history = history
        self.step, self.on_step = step, on_step
        self.continued = position is not None and position["key"] == self.key
        if not self.continued:
            position = {"key": self.key, "epoch": 0, "index": None, "state": None, "order": None}
        self.position = position
        return position

    def next_batch(self):
        pos, net = self.position, self.net
        if pos["index"] is None or pos["index"] >= self.batches.batches_per_epoch:
            pos["epoch"] += pos["index"] is not None
            pos["index"] = 0
            if self.mode == "stream":
                pos["state"] = net.initial_state(self.batches.batch_size)     # reset at the wrap
            else:
                pos["order"] = self.batches.epoch_order(self.rng)
        if self.mode == "stream":
            return (*self.batches.batch(pos["index"]), pos["state"])
        fresh = net.initial_state(self.batches.batch_size)
        return (*self.batches.batch(pos["index"], pos["order"]), fresh)

    def advance(self, new_state):
        pos = self.position
        pos["index"] += 1
        if self.mode == "stream":
            pos["state"] = new_state

    def count_step(self):
        self.step += 1
        if self.on_step is not None:
            self.on_step(self.step)

    def validation_loss(self, stop=None):
        """Mean loss of the validation sample, or None without a validation part. ``stop()`` is
        asked between chunks; when it says True, KeyboardInterrupt is raised."""
        if self.validation is None:
            return None
        return float(self.validation.loss(self.net, stop))


class ValidationSample:
    """The part of the hold-out that every validation of a run evaluates, the same each time.

    A hold-out up to ``limit`` characters (None: no limit) is evaluated whole. A bigger one is
    sampled: in stream mode, ``VALIDATION_STREAMS`` evenly spaced windows holding ``limit``
    characters in all; in lines mode, evenly spaced lines up to ``limit`` characters.
    """

    def __init__(self, ids, mode, newline, spans, limit=VALIDATION_CHARS):
        self.mode, self.newline, self.ids, self.spans = mode, newline, ids, spans
        self.windows = None
        if mode == "stream" and limit is not None and len(ids) > limit:
            length = max(2, limit // VALIDATION_STREAMS)
            starts = np.linspace(0, len(ids) - length, VALIDATION_STREAMS).astype(np.int64)
            self.windows = np.stack([ids[s : s + length] for s in starts])      # (S, length)
        elif mode == "lines" and limit is not None and spans[1].sum() + len(spans[1]) > limit:
            starts, lengths = spans[:2]
            per_line = (lengths.sum() + len(lengths)) / len(lengths)
            keep = max(1, int(limit / per_line))
            pick = np.unique(np.linspace(0, len(starts) - 1, keep).astype(np.int64))
            self.spans = tuple(a[pick] for a in spans)          # (starts, lengths[, whole])
        self.chars = (self.windows.size if self.windows is not None else
                      len(ids) if mode == "stream" else int(self.spans[1].sum()))

    def loss(self, net, stop=None) -> float:
        if self.windows is None:
            return mean_loss(net, self.ids, self.mode, self.newline, self.spans, stop)
        X = np.ascontiguousarray(self.windows[:, :-1].T)
        Y = np.ascontiguousarray(self.windows[:, 1:].T)
        return _streams_loss(net, X, Y, stop) / X.size


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
    """The loss and gradients of a batch computed as two halves side by side: the first half by a
    second worker holding a network of the same shape, in a child process (``second_worker.py``;
    or in a thread where no process can start), the second half in the calling thread.

    Each half runs with single-threaded BLAS on a core of its own. The halves meet once per
    window, not once per matrix product as BLAS threads do, so when the other core is busy a
    step only loses the overlap (measured: about 15 % slower) instead of stalling (OpenBLAS
    threads: 4-50x slower).

    If the child process dies during training, the half it was computing is redone here and the
    rest of the run uses one worker (``workers``), after a warning; the next ``fit`` starts a new
    child.
    """

    def __init__(self, net, process: bool = True):
        from concurrent.futures import ThreadPoolExecutor

        from .second_worker import ThreadWorker, child_worker

        self.net = net
        self.workers = 2
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="charrnn-half-batch")
        self._new_worker = lambda: (process and child_worker(net)) or ThreadWorker(net, self.pool)
        self.second = self._new_worker()
        middle = net.size // 2
        self.parts = (slice(0, middle), slice(middle, net.size))

    def split(self, update) -> None:
        """Run ``update(part)`` for the two halves of the flat weight range, one per thread: the
        gradient merge and the optimiser step are element-wise, and took a noticeable share of a
        big window on one core (figures in ``benchmarks/README.md``)."""
        pending = self.pool.submit(update, self.parts[0])
        update(self.parts[1])
        pending.result()

    def loss(self, X, Y, mask, state, rng=None):
        from .second_worker import ThreadWorker, WorkerGone

        if self.workers == 1:
            return self.net.loss(X, Y, mask, state, rng)
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
        # a child that idled out (a long pause in a callback)
        if not self.second.usable():
            self.second = self._new_worker()
        self.second.start(self.net.flat, *half(first), seeds[0])
        try:
            loss_b, state_b = self.net.loss(
                *half(second), None if rng is None else np.random.default_rng(seeds[1]))
        finally:
            try:
                loss_a, state_a = self.second.finish()  # collected even on error: no stale reply
            except WorkerGone as gone:
                warnings.warn(f"charrnn_magic: {gone}; training goes on with one worker",
                              RuntimeWarning, stacklevel=2)
                self.workers = 1
                self.second = ThreadWorker(self.net, self.pool)     # redo its half here
                self.second.start(self.net.flat, *half(first), seeds[0])
                loss_a, state_a = self.second.finish()

        def merge(part):
            # Each half's gradient is averaged over its own sequences; weight them back to the
            # batch. The second worker's buffer is rewritten by its next window, so it can be
            # scaled here.
            grad, other = self.net.grad[part], self.second.grad[part]
            grad *= (B - b) / B
            other *= b / B
            grad += other

        self.split(merge)
        new_state = [tuple(np.concatenate(pair) for pair in zip(sa, sb, strict=True))
                     for sa, sb in zip(state_a, state_b, strict=True)]
        return loss_a + loss_b, new_state

    def close(self):
        self.pool.shutdown(wait=True)


def where_training_runs(workers: int, worker_process: bool) -> str:
    """Where ``run`` computes a batch, in words, for ``workers`` as ``CharRNN`` decides them (the
    same decision training uses) and the ``worker_process`` setting."""
    if workers == 1:
        return "1 worker (this process)"
    if worker_process and os.name == "posix":
        second = "a child process"
    else:
        second = "a second thread"
    return f"2 workers: this process and {second} (CharRNN.workers = 1 to use one core)"


#: Automatic patience: validation must have failed to improve this many times in a row ...
#: (replayed on 26 measured validation curves: 3 never stopped before a later, better minimum,
#: 2 did once, 1 seven times; 3 still stopped the over-fitting runs after ~46 % of their run)
PATIENCE_VALIDATIONS = 3
#: ... and for this share of the planned run (steps or minutes), whichever is longer ...
PATIENCE_SHARE = 0.15
#: ... and stand clearly above its best: this many nats per character and this share of the
#: best higher (over-fitting). A flat validation loss only stops a run after twice as many
#: validations and twice the share: the falling learning rate often breaks such a plateau
#: (names.txt, 5 min, GRU 2x128 with dropout 0.3: stopped on a flat plateau at 107 s, it held
#: out 1.977; run to its end, 1.966).
OVERFIT_MARGIN = 0.05
OVERFIT_SHARE = 0.02


def clearly_above(val_loss: float, best_val_loss: float) -> bool:
    """Whether a validation loss stands clearly above the best one (see ``OVERFIT_MARGIN``)."""
    return val_loss - best_val_loss >= max(OVERFIT_MARGIN, OVERFIT_SHARE * best_val_loss)


def automatic_stop(since_best: int, waited_share: float, val_loss: float,
                   best_val_loss: float) -> bool:
    """The automatic patience: stop when validation has not improved for ``since_best``
    validations spanning ``waited_share`` of the planned run (``math.inf`` for a run with no
    planned length), if it is over-fitting (``PATIENCE_VALIDATIONS``, ``PATIENCE_SHARE`` and
    clearly above its best) or flat for twice as long."""
    if since_best >= PATIENCE_VALIDATIONS and waited_share >= PATIENCE_SHARE \
            and clearly_above(val_loss, best_val_loss):
        return True
    return since_best >= 2 * PATIENCE_VALIDATIONS and waited_share >= 2 * PATIENCE_SHARE


#: Validation is kept to about this share of a run's time (longer validations are spaced out).
VALIDATION_TIME_SHARE = 0.1


#: ``StopRules.until_recited`` tries a recitation at the end of a pass only once the smoothed
#: training loss is below this (nats per character): a recitation needs nearly every character
#: predicted with confidence, and each try costs a greedy sample as long as the text.
RECITE_CHECK_BELOW = 0.05


def run(session: "TrainingSession", rules: StopRules, *, callback=None, stop_event=None,
        eval_every=None, keep_best=False, patience=0, workers: "Workers | None" = None) -> History:
    """Train ``session`` (attached: see ``TrainingSession.attach``) until a stop rule fires.

    ``keep_best``: end with the weights that had the best validation loss of this run.
    ``patience``: stop once validation has not improved for this many steps (0: never; None:
    automatic, see ``automatic_stop``). Both need a validation part.
    ``workers`` decides how many workers share each batch (see ``Workers``; None: one); with two,
    each batch is computed as two halves in parallel (``HalvesInParallel``).
    If ``callback`` has a ``validating()`` method, it is called before each validation.
    """
    from .sampling import recites  # here: sampling reads settings, which read this module

    net, opt, history, lock = session.net, session.optimizer, session.history, session.lock
    settings = session.settings
    clip, clip_mode, lr_schedule = settings["clip"], settings["clip_mode"], settings["lr_schedule"]
    dropout_rng = session.rng if net.dropout else None
    batches_per_epoch = session.batches.batches_per_epoch
    n_workers = workers.count(net, session.batches.batch_size) if workers is not None else 1
    worker_process = workers is not None and workers.process

    run_steps = rules.steps
    budget = rules.minutes * 60.0 if rules.minutes else None
    if eval_every is None and run_steps:
        eval_every = _eval_every(session, run_steps)
    eval_seconds = None if eval_every else (budget / 20 if budget else 10.0)

    base_lr = opt.lr
    smooth = SmoothedLoss()
    best_val, best_weights, best_step, best_time, since_best = math.inf, None, None, 0.0, 0
    val_loss = history.last_val_loss
    run_step, chars, val_seconds, val_last_took = 0, 0, 0.0, 0.0
    start = last_eval = time.perf_counter()
    history.interrupted, reason, detail = False, "", ""
    history.best_step = history.best_val_loss = None
    if (session.continued and history.val_step and history.val_step[-1] == session.step
            and session.validation is not None):
        # Continuing on the same text: the weights it starts from are the ones to beat, so a
        # continued run never ends worse than it began.
        best_val, best_step = history.val_loss[-1], session.step
        best_time = time.perf_counter()
        best_weights = net.flat.copy() if keep_best else None
        history.best_step, history.best_val_loss = best_step, best_val
    notify = getattr(callback, "validating", None)
    cut_short = False

    def validate(stop=None):
        nonlocal val_loss, best_val, best_weights, best_step, best_time, since_best
        nonlocal val_seconds, val_last_took, cut_short
        if session.validation is None:
            return False
        if notify is not None:
            notify()
        began = time.perf_counter()
        try:
            val_loss = session.validation_loss(stop)
        except KeyboardInterrupt:
            cut_short = True                  # Ctrl-C while validating: no second try at the end
            raise
        finally:
            val_last_took = time.perf_counter() - began
            val_seconds += val_last_took
        history.val_step.append(session.step)
        history.val_loss.append(val_loss)
        if val_loss < best_val:
            best_val, best_step, best_time, since_best = val_loss, session.step, began, 0
            history.best_step, history.best_val_loss = best_step, best_val
            if keep_best:
                best_weights = net.flat.copy()
        else:
            since_best += 1
        return True

    def no_improvement(now) -> bool:
        """Whether validation has not helped for long enough to stop (see ``patience``)."""
        if best_step is None or since_best == 0:
            return False
        waited = session.step - best_step
        if patience:
            return waited >= patience
        if patience is not None:
            return False
        shares = ([waited / run_steps] if run_steps else []) + (
            [(now - best_time) / budget] if budget else [])
        return automatic_stop(since_best, min(shares, default=math.inf), val_loss, best_val)

    parallel = HalvesInParallel(net, worker_process) if n_workers == 2 else None
    batch_loss = parallel.loss if parallel else net.loss
    try:
        # Overflow in a diverging run is detected and reported below, not warned about by NumPy.
        with _interrupt_between_steps() as interrupted, \
                np.errstate(over="ignore", invalid="ignore"):
            while True:
                if interrupted.is_set():
                    raise KeyboardInterrupt
                elapsed = time.perf_counter() - start
                if run_steps is not None and run_step >= run_steps:
                    reason, detail = "steps", rules.steps_detail
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
                    raise _diverged(session, f"the loss became {loss_sum}")
                if not math.isfinite(float(net.grad.sum())):
                    raise _diverged(session, "the gradients became infinite or NaN")
                clip_(net.grad, clip, clip_mode)
                if lr_schedule == "cosine" and (run_steps or budget):
                    opt.lr = base_lr * cosine_factor(
                        _done_fraction(run_step, run_steps, elapsed, budget))
                with lock:
                    opt.step(net.flat, net.grad, parallel.split if parallel else whole_range)
                session.advance(new_state)
                session.count_step()
                run_step += 1
                chars += n_chars
                loss = smooth.update(loss_sum / n_chars)
                history.step.append(session.step)
                history.loss.append(loss)
                if rules.until_recited and loss < RECITE_CHECK_BELOW and \
                        session.position["index"] == batches_per_epoch and \
                        recites(net, session.train_ids):
                    reason = "recited"
                    detail = (f"a greedy sample recites the text after {run_step:,} steps, "
                              f"{run_step / batches_per_epoch:.0f} passes")

                now = time.perf_counter()
                due = (eval_every and run_step % eval_every == 0) or (
                    eval_seconds is not None and now - last_eval >= max(
                        eval_seconds, val_last_took / VALIDATION_TIME_SHARE))
                validated = bool(due) and validate(interrupted.is_set)
                if due:
                    last_eval = now = time.perf_counter()
                elapsed = now - start
                if callback is not None:
                    callback(_progress(session.step, run_step, run_steps, budget, batches_per_epoch,
                                       loss, val_loss, validated, chars, elapsed - val_seconds,
                                       elapsed, best_val, best_step, keep_best))
                if rules.target_loss is not None and loss <= rules.target_loss:
                    reason = "target_loss"
                if reason:
                    break
                if validated and no_improvement(now):
                    reason = "no_improvement"
                    detail = f"no improvement for {session.step - best_step:,} steps"
                    break
    except KeyboardInterrupt:
        reason = "interrupted"
        history.interrupted = True
    except MemoryError:
        # The estimate of budget.check_fit too low, or the memory taken by another program
        # since: the step that needed it is lost, the weights are those of the last whole step.
        raise ran_out_of_memory("training", "choose a smaller model, batch_size (--batch-size) "
                                            "or seq_length (--seq-length)") from None
    finally:
        history.stop_reason = reason or "error"
        opt.lr = base_lr                      # a schedule changes the rate only within a run
        history.weights_step = session.step
        if parallel:
            parallel.close()

    validated_last = bool(history.val_step) and history.val_step[-1] == session.step
    if run_step and not validated_last and session.validation is not None and not cut_short:
        try:
            validate()
        except KeyboardInterrupt:             # a second Ctrl-C: skip the last validation only
            pass
    if keep_best and best_weights is not None and best_val < (history.last_val_loss or math.inf):
        with lock:
            net.flat[:] = best_weights
        history.val_step.append(session.step)
        history.val_loss.append(best_val)
        history.weights_step = best_step
        kept = f"kept step {best_step:,}, val {best_val:.2f}"
        detail = f"{detail}: {kept}" if detail else f"best weights {kept}"
    elif reason == "no_improvement":
        detail += f": stopped at step {session.step:,} (the best was step {best_step:,}, " \
                  f"val {best_val:.2f})"
    history.stop_detail = detail
    if stop_event is not None and reason == "stopped":
        history.interrupted = True
    return history


#: A validated character costs about this share of a trained one (forward only, no gradients).
VALIDATION_COST = 1 / 3


def _eval_every(session, run_steps: int) -> int:
    """Steps between validations of a run of known length: 20 per run, fewer when validating
    that often would take more than ``VALIDATION_TIME_SHARE`` of the run (a big validation
    sample and short steps). Decided from sizes alone, so a run stays reproducible."""
    every = max(1, run_steps // 20)
    if session.validation is None:
        return every
    trained = run_steps * session.batches.batch_size * session.batches.seq_length
    most = VALIDATION_TIME_SHARE * trained / (session.validation.chars * VALIDATION_COST)
    return max(every, math.ceil(run_steps / max(1.0, most)))


def cosine_factor(fraction: float, floor: float = 0.02) -> float:
    """Learning-rate factor that falls from 1 to ``floor`` along half a cosine as the run goes."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))


#: A run with both a length in steps and a time budget follows its steps, unless the clock runs
#: this share of the budget ahead of them: the clock's lead over the first steps (starting a
#: worker process) changed the learning rates in their 7th digit, so a pass-capped 10-minute
#: run and the same run given ``epochs`` ended 0.01 nats/char apart.
CLOCK_SLACK = 0.02


def _done_fraction(run_step, run_steps, elapsed, budget) -> float:
    """Share of the run done before this step, by steps or by time, whichever is further (time
    with ``CLOCK_SLACK`` when there are steps too)."""
    by_steps = run_step / run_steps if run_steps else 0.0
    by_time = elapsed / budget if budget else 0.0
    return max(by_steps, by_time - CLOCK_SLACK if run_steps else by_time)


def _diverged(session, what: str) -> TrainingDiverged:
    lr, step = session.settings["lr"], session.step
    return TrainingDiverged(
        f"training diverged at step {step + 1}: {what}. The weights of step {step} were "
        f"kept; lower the learning rate (now {lr:g}) or clip the gradients (clip=5)")


def _progress(step, run_step, run_steps, budget, batches_per_epoch, loss, val_loss, validated,
              chars, training_seconds, elapsed, best_val, best_step, keep_best) -> Progress:
    rate = chars / training_seconds if training_seconds > 0 else 0.0
    fraction = eta = None
    if run_steps:
        fraction = run_step / run_steps
        eta = elapsed / run_step * (run_steps - run_step)
    if budget:
        by_time = min(1.0, elapsed / budget)
        if fraction is None or by_time > fraction:
            fraction, eta = by_time, max(0.0, budget - elapsed)
    return Progress(step=step, run_step=run_step, run_steps=run_steps,
                    epoch=run_step / batches_per_epoch, loss=loss, val_loss=val_loss,
                    validated=validated, chars_per_sec=rate, elapsed=elapsed, eta=eta,
                    fraction=fraction, best_val_loss=best_val if best_step is not None else None,
                    best_step=best_step, keep_best=keep_best)


def mean_loss(net, ids: np.ndarray, mode: str, newline_id: int | None, line_spans=None,
              stop=None) -> float:
    """Mean nats per predicted character of ``ids`` under ``net``, without dropout or gradients.

    Stream mode: the text is cut into up to 64 streams evaluated side by side (each from a fresh
    state, padded with a mask so that every character after the first of each stream counts).
    Lines mode: each line from a fresh state, with its closing newline; ``line_spans`` is
    (starts, lengths) or (starts, lengths, whole), whole False for a line cut short, whose
    closing newline does not count. The work is done in chunks; ``stop()``, when given, is asked
    between them and True raises KeyboardInterrupt.
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
                _check_stop(stop)
                loss, state = net.loss(X[p : p + 256], Y[p : p + 256], mask[p : p + 256], state,
                                       grads=False)
                total += loss
            count += mask.sum()
        return total / count
    n = len(ids) - 1
    S, L = stream_cut(n)
    state = net.initial_state(S)
    total = 0.0
    for p in range(0, L, 256):
        _check_stop(stop)
        # Window p of every stream, gathered from ids: no copy of the whole text.
        at = np.arange(p, min(p + 256, L))[:, None] + (np.arange(S) * L)[None, :]   # (w,S)
        mask = at < n                                                               # (w,S)
        at = np.minimum(at, n - 1)
        X, Y = ids[at].astype(np.int32), ids[at + 1].astype(np.int32)               # (w,S)
        loss, state = net.loss(X, Y, mask, state, grads=False)
        total += loss
    return total / n


def stream_cut(n: int) -> tuple[int, int]:
    """(streams, predictions per stream, rounded up) ``mean_loss`` cuts ``n`` predictions into:
    up to 64 streams of at least 1,000."""
    streams = int(min(64, max(1, n // 1000)))
    return streams, -(-n // streams)


def _streams_loss(net, X, Y, stop=None, chunk=256) -> float:
    """Summed loss of the (time, stream) arrays ``X``/``Y``, each stream from a fresh state,
    ``chunk`` time steps at a time."""
    state = net.initial_state(X.shape[1])
    total = 0.0
    for p in range(0, X.shape[0], chunk):
        _check_stop(stop)
        loss, state = net.loss(np.ascontiguousarray(X[p : p + chunk]),
                               np.ascontiguousarray(Y[p : p + chunk]), None, state, grads=False)
        total += loss
    return total


def _check_stop(stop):
    if stop is not None and stop():
        raise KeyboardInterrupt


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

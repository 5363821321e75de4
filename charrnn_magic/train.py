"""The training loop: ``run`` trains a ``TrainingSession`` until a stop rule fires, reporting
each step to a progress callback, and records the losses in the model's ``History``.

It leans on one module per job: ``session`` (the data and where training reads next), ``stopping``
(the stop rules, validations, best weights and patience), ``workers`` (one or two workers per
batch), ``optim`` (clipping, the optimiser step and the learning-rate schedule) and ``interrupts``
(Ctrl-C between steps).

Safety means: Ctrl-C (or a ``KeyboardInterrupt`` from a callback) ends training between steps with
every finished step kept; a non-finite loss or gradient stops training *before* the update that
would spoil the weights, so the model keeps the last finite weights.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .budget import ran_out_of_memory
from .interrupts import interrupt_between_steps
from .optim import clip_, schedule_factor, whole_range
from .sampling import recites
from .session import TrainingSession
from .stopping import StopRules, ValidationWatch
from .workers import HalvesInParallel, Workers


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


class SmoothedLoss:
    """Exponential moving average with bias correction, so the first values are not dragged
    towards zero (or towards a guessed start, as min-char-rnn does)."""

    def __init__(self, beta: float = 0.98):
        self.beta, self.avg, self.n = beta, 0.0, 0

    def update(self, value: float) -> float:
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta**self.n)


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
    run_step, chars = 0, 0
    start = last_eval = time.perf_counter()
    history.interrupted, reason, detail = False, "", ""
    watch = ValidationWatch(session, keep_best=keep_best, patience=patience, run_steps=run_steps,
                            budget=budget, notify=getattr(callback, "validating", None))

    parallel = HalvesInParallel(net, worker_process) if n_workers == 2 else None
    batch_loss = parallel.loss if parallel else net.loss
    try:
        # Overflow in a diverging run is detected and reported below, not warned about by NumPy.
        with interrupt_between_steps() as interrupted, \
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
                factor = schedule_factor(lr_schedule, run_step, run_steps, elapsed, budget)
                if factor is not None:
                    opt.lr = base_lr * factor
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
                        eval_seconds, watch.last_took / VALIDATION_TIME_SHARE))
                validated = bool(due) and watch.validate(interrupted.is_set)
                if due:
                    last_eval = now = time.perf_counter()
                elapsed = now - start
                if callback is not None:
                    callback(_progress(session.step, run_step, run_steps, budget, batches_per_epoch,
                                       loss, watch.val_loss, validated, chars,
                                       elapsed - watch.seconds, elapsed, watch.best_val,
                                       watch.best_step, keep_best))
                if rules.target_loss is not None and loss <= rules.target_loss:
                    reason = "target_loss"
                if reason:
                    break
                if validated and watch.no_improvement(now):
                    reason = "no_improvement"
                    detail = f"no improvement for {session.step - watch.best_step:,} steps"
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

    detail = watch.finish(run_step, reason, detail)
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

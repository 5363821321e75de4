"""When a run ends: the stop rules of ``fit``'s arguments (``StopRules``), the validations of a
run with the best weights they keep (``ValidationWatch``), and the patience that stops a run once
validation no longer helps (fixed, or automatic: ``automatic_stop``)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass


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



#: Automatic patience: validation must have failed to improve this many times in a row ...
#: (chosen by replaying measured validation curves: benchmarks/README.md)
PATIENCE_VALIDATIONS = 3
#: ... and for this share of the planned run (steps or minutes), whichever is longer ...
PATIENCE_SHARE = 0.15
#: ... and stand clearly above its best: this many nats per character and this share of the
#: best higher (over-fitting). A flat validation loss only stops a run after twice as many
#: validations and twice the share: the falling learning rate often breaks such a plateau.
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



class ValidationWatch:
    """The validations of one run (``session``, attached): each is evaluated, recorded in
    ``history`` and compared with the best so far, whose weights are kept when ``keep_best``;
    ``no_improvement`` says when ``patience`` (steps; 0: never; None: ``automatic_stop``) has run
    out for a run of ``run_steps`` steps and/or ``budget`` seconds. ``notify()``, when given, is
    called before each validation.

    A run that continues on the same text starts with the weights it was given as the ones to
    beat, so a continued run never ends worse than it began.
    """

    def __init__(self, session, *, keep_best: bool, patience, run_steps, budget, notify=None):
        self.session, self.history = session, session.history
        self.keep_best, self.patience = keep_best, patience
        self.run_steps, self.budget, self.notify = run_steps, budget, notify
        history = self.history
        self.best_val, self.best_weights, self.best_step, self.best_time = math.inf, None, None, 0.0
        self.since_best = 0                 # validations since the best one
        self.val_loss = history.last_val_loss
        self.seconds = self.last_took = 0.0  # spent validating in this run; by the latest one
        self.cut_short = False              # a Ctrl-C stopped a validation
        history.best_step = history.best_val_loss = None
        if (session.continued and history.val_step and history.val_step[-1] == session.step
                and session.validation is not None):
            self.best_val, self.best_step = history.val_loss[-1], session.step
            self.best_time = time.perf_counter()
            self.best_weights = session.net.flat.copy() if keep_best else None
            history.best_step, history.best_val_loss = self.best_step, self.best_val

    def validate(self, stop=None) -> bool:
        """Evaluate the validation sample now (``stop()`` is asked between chunks); False when
        there is no validation part."""
        session, history = self.session, self.history
        if session.validation is None:
            return False
        if self.notify is not None:
            self.notify()
        began = time.perf_counter()
        try:
            self.val_loss = session.validation_loss(stop)
        except KeyboardInterrupt:
            self.cut_short = True             # Ctrl-C while validating: no second try at the end
            raise
        finally:
            self.last_took = time.perf_counter() - began
            self.seconds += self.last_took
        history.val_step.append(session.step)
        history.val_loss.append(self.val_loss)
        if self.val_loss < self.best_val:
            self.best_val, self.best_step, self.best_time = self.val_loss, session.step, began
            self.since_best = 0
            history.best_step, history.best_val_loss = self.best_step, self.best_val
            if self.keep_best:
                self.best_weights = session.net.flat.copy()
        else:
            self.since_best += 1
        return True

    def no_improvement(self, now) -> bool:
        """Whether validation has not helped for long enough to stop (see ``patience``)."""
        if self.best_step is None or self.since_best == 0:
            return False
        waited = self.session.step - self.best_step
        if self.patience:
            return waited >= self.patience
        if self.patience is not None:
            return False
        run_steps, budget = self.run_steps, self.budget
        shares = ([waited / run_steps] if run_steps else []) + (
            [(now - self.best_time) / budget] if budget else [])
        return automatic_stop(self.since_best, min(shares, default=math.inf), self.val_loss,
                              self.best_val)

    def finish(self, run_step: int, reason: str, detail: str) -> str:
        """After the loop: validate the last step unless that is done (or a Ctrl-C cut the last
        validation short), and go back to the best weights when ``keep_best`` and they beat the
        last. Returns ``detail``, the stop reason in words, with what was kept."""
        session, history = self.session, self.history
        validated_last = bool(history.val_step) and history.val_step[-1] == session.step
        if run_step and not validated_last and session.validation is not None \
                and not self.cut_short:
            try:
                self.validate()
            except KeyboardInterrupt:         # a second Ctrl-C: skip the last validation only
                pass
        best_val, best_step = self.best_val, self.best_step
        if self.keep_best and self.best_weights is not None and \
                best_val < (history.last_val_loss or math.inf):
            with session.lock:
                session.net.flat[:] = self.best_weights
            history.val_step.append(session.step)
            history.val_loss.append(best_val)
            history.weights_step = best_step
            kept = f"kept step {best_step:,}, val {best_val:.2f}"
            detail = f"{detail}: {kept}" if detail else f"best weights {kept}"
        elif reason == "no_improvement":
            detail += f": stopped at step {session.step:,} (the best was step {best_step:,}, " \
                      f"val {best_val:.2f})"
        return detail

"""Optimisers, gradient clipping and learning-rate schedules, working on the network's one flat
weight array.

Because every weight is a view into one array, each optimiser step is a few whole-array
operations, whatever the number of layers. Optimiser state is a dict of flat arrays (saved in
checkpoints) plus a step counter.
"""
from __future__ import annotations

import math

import numpy as np

#: How ``clip_`` bounds a gradient, each with what it means.
CLIP_MODES = {"value": "clip each element (the classic)", "norm": "clip the whole gradient's norm"}


def clip_(grad: np.ndarray, clip: float, mode: str) -> None:
    """Clip in place: each element to [-clip, clip] (``"value"``, the classic) or the whole
    gradient to norm ``clip`` (``"norm"``). ``clip`` 0 disables."""
    if not clip:
        return
    if mode == "value":
        np.clip(grad, -clip, clip, out=grad)
    else:
        norm = float(np.sqrt(grad @ grad))
        if norm > clip:
            grad *= clip / norm


def whole_range(update) -> None:
    """Run ``update(part)`` once, with ``part`` the whole flat array (the serial ``split`` of
    ``Optimizer.step``)."""
    update(slice(None))


class Optimizer:
    """One optimiser: ``name`` (what ``fit(optimizer=...)`` calls it), ``default_lr`` (the rate a
    first fit uses when ``lr`` is not given) and the rule ``update``. ``weight_decay`` shrinks
    every weight by ``lr * weight_decay`` before each update, apart from the gradient's step
    (decoupled, as in AdamW), so that it means the same with any rule."""

    name = ""
    default_lr: float
    weight_decay = 0.0

    def __init__(self, size: int, dtype, lr: float):
        self.lr = lr
        self.t = 0
        self.state: dict[str, np.ndarray] = {k: np.zeros(size, dtype) for k in self.slots}
        self._tmp = np.empty(size, dtype)

    slots: tuple = ()

    def step(self, params: np.ndarray, grad: np.ndarray, split=whole_range) -> None:
        """One update of the flat ``params`` from ``grad``. Every rule here is element-wise, so
        ``split(update)`` may call ``update(part)`` for slices that together cover the arrays, on
        several threads at once (``train.HalvesInParallel.split``): the result is the same."""
        self.t += 1
        lr = self.step_size()
        keep = 1.0 - self.lr * self.weight_decay     # the scheduled rate, not bias-corrected

        def update(part):
            if keep != 1.0:
                params[part] *= keep
            state = {k: v[part] for k, v in self.state.items()}
            self.update(params[part], grad[part], state, self._tmp[part], lr)

        split(update)

    def step_size(self) -> float:
        return self.lr

    def update(self, params, grad, state, tmp, lr) -> None:
        raise NotImplementedError


class Adagrad(Optimizer):
    """Per-weight step lr / sqrt(sum of squared gradients), as in min-char-rnn."""

    name, slots, default_lr = "adagrad", ("sum_sq",), 0.1

    def update(self, params, grad, state, tmp, lr):
        mem = state["sum_sq"]
        np.multiply(grad, grad, out=tmp)
        mem += tmp
        np.add(mem, 1e-8, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(grad, tmp, out=tmp)
        tmp *= lr
        params -= tmp


class Adam(Optimizer):
    """Adam (β1 0.9, β2 0.999) with bias correction."""

    name, slots, default_lr = "adam", ("m", "v"), 0.002
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def step_size(self):
        # Both bias corrections folded into one scalar.
        return self.lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)

    def update(self, params, grad, state, tmp, lr):
        m, v = state["m"], state["v"]
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=tmp)
        m += tmp
        v *= self.beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - self.beta2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr
        params -= tmp


class SGD(Optimizer):
    """Plain gradient descent: each step lr times the gradient."""

    name, default_lr = "sgd", 0.1

    def update(self, params, grad, state, tmp, lr):
        np.multiply(grad, lr, out=tmp)
        params -= tmp


#: The optimisers ``fit`` accepts, by name: adding one here is all it takes.
OPTIMIZERS = {cls.name: cls for cls in (Adagrad, Adam, SGD)}
#: The learning rate each optimiser starts from when ``lr`` is not given.
DEFAULT_LR = {name: cls.default_lr for name, cls in OPTIMIZERS.items()}


#: The learning-rate schedules, each with what it means (see ``schedule_factor``).
LR_SCHEDULES = {"constant": "keep the rate (the classic presets)",
                "cosine": "lower the rate along half a cosine to 2% of lr by the end of the run "
                          "(what a first fit chooses)"}


def schedule_factor(schedule: str, run_step: int, run_steps: int | None, elapsed: float,
                    budget: float | None) -> float | None:
    """The factor on the base learning rate before step ``run_step`` of a run of ``run_steps``
    steps and/or ``budget`` seconds (``elapsed`` gone), or None where the rate stays as it is:
    the ``"constant"`` schedule, or a run with no known end (only a target loss)."""
    if schedule != "cosine" or not (run_steps or budget):
        return None
    return cosine_factor(done_fraction(run_step, run_steps, elapsed, budget))


def cosine_factor(fraction: float, floor: float = 0.02) -> float:
    """Learning-rate factor that falls from 1 to ``floor`` along half a cosine as the run goes."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))


#: A run with both a length in steps and a time budget follows its steps, unless the clock runs
#: this share of the budget ahead of them: the clock's lead over the first steps (starting a
#: worker process) would otherwise make a pass-capped run differ from the same run given
#: ``epochs`` (benchmarks/README.md has the figures).
CLOCK_SLACK = 0.02


def done_fraction(run_step, run_steps, elapsed, budget) -> float:
    """Share of the run done before this step, by steps or by time, whichever is further (time
    with ``CLOCK_SLACK`` when there are steps too)."""
    by_steps = run_step / run_steps if run_steps else 0.0
    by_time = elapsed / budget if budget else 0.0
    return max(by_steps, by_time - CLOCK_SLACK if run_steps else by_time)

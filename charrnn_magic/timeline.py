"""The training timeline: copies of a model's weights taken as it trains, to go back to.

::

    >>> model.fit(text, steps=2000)
    >>> model.timeline               # Timeline(16 snapshots, steps 128 … 2,000, ...; 12.1 MB)
    >>> model.timeline.steps         # [128, 256, ..., 1920, 2000]
    >>> early = model.at_step(128)   # a CharRNN with the weights of step 128
    >>> early.sample(200, seed=1)    # what the model wrote then
    >>> early.inspect(text)          # what its units did then

How snapshots are taken
-----------------------
A fit copies the weights after every step whose number is a multiple of ``every`` (1 at
first), and once more at its end (so the latest snapshot is always the model as it is, with
``keep_best``'s weights if it kept them; that one goes again when a later snapshot comes, unless
it is on the grid). When there are more than the model's
``CharRNN.snapshots`` (default 20), every other one is dropped (``every`` doubles: the snapshots
kept are those on the coarser grid, plus the latest one), so they stay spread evenly over the
model's whole training, however long, over any number of fits. ``CharRNN.snapshots = 0`` takes
none, and empties the timeline at the next fit.

What it costs
-------------
Each snapshot is a copy of the weights: ``n_params × itemsize`` bytes (4 for float32, 8 for
float64), so at most ``snapshots × n_params × itemsize``: 20 snapshots of the default GRU 2×128
on a vocabulary of 80 (189,520 parameters) are 15.2 MB. ``Timeline.nbytes`` is the
figure for a model, and its repr says it. Taking one copies the weights once; with the grid
above, a fit of ``n`` steps takes about ``snapshots × log2(n / snapshots)`` copies in all.

Saving
------
``model.save(path, snapshots=True)`` stores them in the checkpoint as tensors named
``snapshots/<step>`` (each the flat weight vector, in the model's dtype) and a metadata entry
``{"steps": [...], "every": n}`` (``to_checkpoint``); ``CharRNN.load`` restores them
(``from_checkpoint``). Without ``snapshots=True`` the file holds no snapshots and a loaded
model starts with an empty timeline.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .network import Network
from .optim import OPTIMIZERS

__all__ = ["Snapshot", "Timeline", "Recorder", "to_checkpoint", "from_checkpoint",
           "expected_tensors"]

#: The prefix of a snapshot tensor's name in a checkpoint.
TENSOR_PREFIX = "snapshots/"


class Snapshot(NamedTuple):
    """The weights after training step ``step``: ``weights`` is the flat weight vector (the
    layout of ``Network.flat``), read-only."""

    step: int
    weights: np.ndarray

    def __repr__(self) -> str:
        return f"Snapshot(step={self.step:,}, {self.weights.size:,} weights)"


class Timeline(tuple):
    """The snapshots of a model, oldest first (a tuple of ``Snapshot``); ``steps`` lists their
    steps and ``nbytes`` the memory they take. It is a copy: later training does not change it."""

    def __new__(cls, snapshots=(), every: int = 1, limit: int | None = None):
        self = super().__new__(cls, snapshots)
        self.every, self.limit = every, limit
        return self

    @property
    def steps(self) -> list[int]:
        return [s.step for s in self]

    @property
    def nbytes(self) -> int:
        return sum(s.weights.nbytes for s in self)

    def __repr__(self) -> str:
        if not self:
            off = " (CharRNN.snapshots = 0: none are taken)" if self.limit == 0 else ""
            return f"Timeline(no snapshots{off})"
        w = self[0].weights
        steps = self.steps
        span = f"step {steps[0]:,}" if len(steps) == 1 else f"steps {steps[0]:,} … {steps[-1]:,}"
        limit = "" if self.limit is None else f", at most {self.limit}"
        return (f"Timeline({len(self)} snapshots, {span}, one every {self.every:,} steps{limit}; "
                f"{len(self)} × {w.size:,} weights × {w.itemsize} bytes = "
                f"{_megabytes(self.nbytes)})")


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


class Recorder:
    """Takes and keeps the snapshots of one model (see the module docstring). Not thread-safe
    by itself: the model calls it under its lock."""

    def __init__(self, snapshots=(), every: int = 1):
        self.snapshots: list[Snapshot] = list(snapshots)
        self.every = int(every)

    def due(self, step: int) -> bool:
        """Whether step ``step`` is on the grid."""
        return step % self.every == 0

    def add(self, step: int, weights: np.ndarray, limit: int) -> None:
        """Keep ``weights`` (a copy the caller made, now owned here) as the snapshot of
        ``step`` (replacing one of the same step), then thin to ``limit``."""
        if limit <= 0:
            self.snapshots.clear()
            return
        weights.flags.writeable = False
        snap = Snapshot(int(step), weights)
        if self.snapshots and self.snapshots[-1].step >= step:
            self.snapshots = [s for s in self.snapshots if s.step < step]
        if self.snapshots and not self.due(self.snapshots[-1].step):
            self.snapshots.pop()          # an off-grid latest (a fit's end) has a successor now
        self.snapshots.append(snap)
        self.thin(limit)

    def thin(self, limit: int) -> None:
        """Drop every other snapshot (the grid doubles) until at most ``limit`` are left; the
        latest always stays. ``limit`` 0 drops them all."""
        if limit <= 0:
            self.snapshots.clear()
            return
        while len(self.snapshots) > limit:
            self.every *= 2
            *older, latest = self.snapshots
            self.snapshots = [s for s in older if s.step % self.every == 0] + [latest]

    def find(self, step: int) -> Snapshot | None:
        return next((s for s in self.snapshots if s.step == step), None)

    def view(self, limit: int | None = None) -> Timeline:
        return Timeline(self.snapshots, self.every, limit)

    def up_to(self, step: int) -> "Recorder":
        """The snapshots of steps up to ``step`` (sharing their arrays)."""
        return Recorder([s for s in self.snapshots if s.step <= step], self.every)


# ---- checkpoints ----------------------------------------------------------------------------
def to_checkpoint(recorder: Recorder) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, metadata entry) that store ``recorder``'s snapshots in a checkpoint."""
    tensors = {f"{TENSOR_PREFIX}{s.step}": s.weights for s in recorder.snapshots}
    return tensors, {"steps": [s.step for s in recorder.snapshots], "every": recorder.every}


def expected_tensors(meta: dict, dtype: str, size: int) -> dict[str, tuple[str, list[int]]]:
    """Tensor name -> (safetensors dtype code, shape) that a checked metadata entry implies."""
    return {f"{TENSOR_PREFIX}{step}": (dtype, [size]) for step in meta["steps"]}


def check_meta(meta, where: str = "snapshots") -> None:
    """ValueError unless ``meta`` is a metadata entry ``to_checkpoint`` could have written."""
    if not isinstance(meta, dict) or set(meta) != {"steps", "every"}:
        raise ValueError(f"{where} is not an object with exactly the fields steps and every")
    steps, every = meta["steps"], meta["every"]
    if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
        raise ValueError(f"{where}.every={every!r} is not a whole number of at least 1")
    if not (isinstance(steps, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps)
            and all(a < b for a, b in zip(steps, steps[1:], strict=False))):
        raise ValueError(f"{where}.steps is not a rising list of step numbers")


def from_checkpoint(tensors: dict[str, np.ndarray], meta, size: int, dtype,
                    what: str = "the checkpoint") -> Recorder:
    """The ``Recorder`` stored by ``to_checkpoint``; ValueError (one line) for anything wrong."""
    try:
        check_meta(meta)
    except ValueError as e:
        raise ValueError(f"{what} has a bad snapshot list: {e}") from None
    snaps = []
    for step in meta["steps"]:
        name = f"{TENSOR_PREFIX}{step}"
        t = tensors.get(name)
        if t is None:
            raise ValueError(f"{what} is incomplete: tensor {name!r} is missing")
        if t.shape != (size,) or t.dtype != np.dtype(dtype):     # checkpoint.py checked it
            raise ValueError(f"{what} does not match its own configuration: tensor {name!r} is "
                             f"{t.dtype} {t.shape}, expected {np.dtype(dtype)} ({size},)")
        weights = np.ascontiguousarray(t)
        weights.flags.writeable = False
        snaps.append(Snapshot(step, weights))
    return Recorder(snaps, meta["every"])


def model_at_step(model, step: int):
    """``CharRNN.at_step``: a new model of ``model``'s class with the weights of its snapshot of
    ``step``, its history and timeline cut there, a fresh optimiser and the start of the text."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise ValueError(f"step must be a whole number, not {step!r}")
    with model._lock:
        snap = model._timeline.find(int(step))
        steps = [s.step for s in model._timeline.snapshots]
        kept = model._timeline.up_to(int(step)) if snap is not None else None
    if snap is None:
        if not steps:
            raise ValueError(f"there is no snapshot of step {step}: this model has none "
                             "(they are taken while it trains; CharRNN.snapshots sets how "
                             "many)")
        near = sorted(steps, key=lambda s: abs(s - step))[:3]
        raise ValueError(f"there is no snapshot of step {step}: the nearest are "
                         f"{', '.join(f'{s:,}' for s in sorted(near))} "
                         f"(model.timeline.steps lists all {len(steps)})")
    settings = model._settings
    copy = type(model)(model.cell, model.hidden_size, model.layers, model.dropout, model.dtype)
    copy.vocab, copy.step = model.vocab, int(step)
    copy._settings, copy._fit_defaults = dict(settings), dict(model._fit_defaults)
    copy.training_text = model.training_text
    net = Network(model.cell, len(model.vocab), model.hidden_size, model.layers, model.dropout,
                  model.dtype)
    net.flat[:] = snap.weights
    copy._net = net
    copy._optimizer = OPTIMIZERS[settings["optimizer"]](net.size, net.dtype, settings["lr"])
    copy._rng = np.random.default_rng([settings["seed"], int(step)])
    copy._timeline = kept
    h, ch = model.history, copy.history
    n = sum(1 for s in h.step if s <= step)
    ch.step, ch.loss = list(h.step[:n]), list(h.loss[:n])
    m = sum(1 for s in h.val_step if s <= step)
    ch.val_step, ch.val_loss = list(h.val_step[:m]), list(h.val_loss[:m])
    return copy


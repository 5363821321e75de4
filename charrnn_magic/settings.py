"""A model's settings: the architecture, the training settings and their defaults, the named
presets, and the checks every setting passes before a model changes.

Each set of choices is defined once, next to what implements it (``cells.CELLS``, ``data.MODES``,
``model.DTYPES``, ``optim.OPTIMIZERS``, ``optim.CLIP_MODES``, ``train.LR_SCHEDULES``); the checks
here and the notebook's options are made from those, so adding a cell or an optimiser is one edit.
"""
from __future__ import annotations

import math

import numpy as np

from .cells import CELLS
from .data import HOLDOUTS, MODES
from .model import DTYPES
from .optim import CLIP_MODES, DEFAULT_LR, OPTIMIZERS
from .train import LR_SCHEDULES

#: Constructor settings: the architecture, fixed once a model exists.
ARCH_KEYS = ("cell", "hidden_size", "layers", "dropout", "dtype")

#: Training settings, and what ``None`` means for each when nothing else decides it: on a first
#: fit the rule of ``defaults.choose`` (from the size of the text) decides all but ``mode`` and
#: ``lower``; these are the seeds' classic values.
TRAIN_DEFAULTS = {
    "mode": "stream", "seq_length": 25, "batch_size": None, "optimizer": "adagrad", "lr": None,
    "clip": 5.0, "clip_mode": "value", "val_fraction": 0.1, "lower": False,
    "lr_schedule": "constant", "raw_text": False, "holdout": "end", "weight_decay": 0.0,
}

#: The name of "no preset": everything not given is chosen from the text (``defaults.py``).
AUTO = "auto"

#: Named starting points: architecture and training settings together (``keep_best`` and
#: ``patience`` too, where a preset differs from the defaults of ``fit``).
PRESETS = {
    AUTO: {},                           # nothing fixed: all chosen from the text (the default)
    # The seeds' min-char-rnn: its results stay the same bit for bit (tests/test_defaults.py).
    "classic": dict(cell="rnn", hidden_size=100, layers=1, dropout=0.0,
                    seq_length=25, batch_size=1, optimizer="adagrad", lr=0.1, clip=5.0,
                    clip_mode="value", lr_schedule="constant", val_fraction=0.1,
                    keep_best=False, patience=0),
    "tiny": dict(cell="rnn", hidden_size=64, layers=1, dropout=0.0,
                 seq_length=25, batch_size=16, optimizer="adagrad", lr=0.1),
    # GRUs learned several times faster than LSTMs of the same size here, and cost 3/4 as much
    # (the figures are in benchmarks/README.md).
    "default": dict(cell="gru", hidden_size=128, layers=2, dropout=0.1,
                    seq_length=50, batch_size=32, optimizer="adam", lr=0.004, clip=1.0,
                    clip_mode="norm", lr_schedule="cosine"),
    "large": dict(cell="gru", hidden_size=256, layers=2, dropout=0.2,
                  seq_length=50, batch_size=32, optimizer="adam", lr=0.004, clip=1.0,
                  clip_mode="norm", lr_schedule="cosine"),
}


def check_architecture(cell, hidden_size, layers, dropout, dtype) -> str:
    """Check the constructor's settings; returns the name of ``dtype`` (``"float32"`` for
    ``np.float32`` too). Whether the network fits in memory is known at the first fit, once the
    text gives the vocabulary (``budget.check_fit``)."""
    check_choice("cell", cell, CELLS, "is not a cell type")
    check_int("hidden_size", hidden_size, 1)
    check_int("layers", layers, 1)
    check_fraction("dropout", dropout)
    try:
        dtype_name = np.dtype(dtype).name
    except TypeError:
        dtype_name = None
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported: use one of {', '.join(DTYPES)}")
    return dtype_name


def check_stop_rules(steps, epochs, minutes, target_loss):
    """``fit``'s stop rules: whole steps, positive epochs, minutes and target loss, or None."""
    check_int("steps", steps, 1, optional=True)
    check_number("epochs", epochs, optional=True)
    check_number("minutes", minutes, optional=True)
    check_number("target_loss", target_loss, optional=True)


def resolve(given: dict, previous: dict) -> dict:
    """The training settings of a fit, checked: each one ``given``, else as ``previous`` had it
    (the last fit's settings, or on a first fit the defaults and the preset's)."""
    settings = {k: (previous.get(k) if v is None else v) for k, v in given.items()}
    check_choice("mode", settings["mode"], MODES, "is not a data mode")
    check_choice("optimizer", settings["optimizer"], OPTIMIZERS)
    new_optimizer = given["optimizer"] not in (None, previous.get("optimizer"))
    if new_optimizer and given["lr"] is None:
        settings["lr"] = None                   # a new optimiser starts from its own default rate
    if settings["batch_size"] is None:
        settings["batch_size"] = default_batch_size(settings["mode"])
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    check_int("seq_length", settings["seq_length"], 1)
    check_int("batch_size", settings["batch_size"], 1)
    check_number("lr", settings["lr"], what="a positive learning rate such as 0.1")
    check_number("clip", settings["clip"], minimum=0,
                 what="0 (no clipping) or a positive bound such as 5")
    check_choice("clip_mode", settings["clip_mode"], CLIP_MODES)
    check_fraction("val_fraction", settings["val_fraction"])
    check_choice("lr_schedule", settings["lr_schedule"], LR_SCHEDULES)
    check_choice("holdout", settings["holdout"], HOLDOUTS)
    check_number("weight_decay", settings["weight_decay"], minimum=0,
                 what="0 (no decay) or a small positive rate such as 0.1")
    settings["lower"], settings["raw_text"] = bool(settings["lower"]), bool(settings["raw_text"])
    for key in ("clip", "lr", "val_fraction", "weight_decay"):
        settings[key] = float(settings[key])
    return settings


def default_batch_size(mode: str) -> int:
    """The batch size of a first fit that names none: 1 in stream mode (the classic), 32 in lines
    mode."""
    return 32 if mode == "lines" else 1


def check_choice(name, value, choices, what="is not supported"):
    """``value`` must be one of ``choices`` (a tuple, or a dict's keys)."""
    if not (isinstance(value, str) and value in choices):
        raise ValueError(f"{name}={value!r} {what}: use one of {', '.join(choices)}")


def check_int(name, value, minimum, optional=False):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is out of range: use a whole number of at least "
                         f"{minimum}")


def check_number(name, value, minimum=None, optional=False, what="a positive number"):
    if value is None and optional:
        return
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    ok = ok and (value >= minimum if minimum is not None else value > 0)
    if not ok:
        raise ValueError(f"{name}={value!r} is out of range: use {what}")


def check_fraction(name, value):
    """A share from 0 up to (not including) 1."""
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise ValueError(f"{name}={value!r} is out of range: use a number from 0 up to (not "
                         "including) 1")

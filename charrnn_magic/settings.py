"""A model's settings, each declared once: its name, default, check, help and options.

``SETTINGS`` is the one declaration. Everything that names a setting is made from it:

* ``CharRNN.fit``'s keyword arguments and their documentation (:func:`with_training_settings`);
* the checks of the API (:func:`check_architecture`, :func:`resolve`, :func:`check_stop_rules`)
  and of a checkpoint's configuration (``checkpoint.py``);
* the options of ``python -m charrnn_magic`` and of ``%%charrnn_train``, and the magics'
  ``%config CharRNNMagics.<setting>`` traits (:func:`option_specs`; the notebook layer turns the
  specs into ``@argument`` decorators and traitlets);
* the order in which a front end's sources of a setting win (:func:`front_end_settings`).

So adding a training setting is one ``Setting`` below plus the code that uses it.

Each set of choices is defined once, next to what implements it (``cells.CELLS``,
``data.MODES``, ``data.HOLDOUTS``, ``model.DTYPES``, ``optim.OPTIMIZERS``, ``optim.CLIP_MODES``,
``optim.LR_SCHEDULES``); the checks, options and help texts here read them.
"""
from __future__ import annotations

import functools
import inspect
import math
import textwrap
from argparse import ArgumentTypeError
from dataclasses import dataclass

import numpy as np

from .cells import CELLS
from .data import HOLDOUTS, MODES
from .network import DTYPES
from .optim import CLIP_MODES, DEFAULT_LR, LR_SCHEDULES, OPTIMIZERS

#: Kinds of settings: fixed once a model exists; kept by a model from fit to fit (and saved);
#: given to one fit only.
ARCHITECTURE, TRAINING, RUN = "architecture", "training", "run"


# ---------------------------------------------------------------------------- the checks
# Each check says what a value must be, three ways: ``check`` for the Python API (a ValueError
# that names the keyword), ``parse`` for an option's text (argparse's ArgumentTypeError, which
# argparse turns into "argument --x: message") and its fields for checkpoint.py.
@dataclass(frozen=True)
class Whole:
    """A whole number of at least ``minimum``."""
    minimum: int

    def check(self, name, value):
        check_int(name, value, self.minimum)
        return value

    def parse(self, text: str) -> int:
        return parse_whole(text, self.minimum)


@dataclass(frozen=True)
class Number:
    """A finite number above 0 (``minimum`` None) or of at least ``minimum``; ``what`` ends the
    API's message ("use ...")."""
    minimum: float | None = None
    what: str = "a positive number"

    def check(self, name, value):
        check_number(name, value, self.minimum, what=self.what)
        return float(value)

    def parse(self, text: str) -> float:
        if self.minimum is None:
            return parse_number(text, 0, above=True)
        return parse_number(text, self.minimum)


@dataclass(frozen=True)
class Fraction:
    """A share from 0 up to (not including) 1."""

    def check(self, name, value):
        check_fraction(name, value)
        return float(value)

    def parse(self, text: str) -> float:
        return parse_number(text, 0, 1, below=True)


@dataclass(frozen=True)
class Choice:
    """One of ``choices`` (a tuple, or a dict's keys; a dict of texts also describes each)."""
    choices: object
    what: str = "is not supported"

    def check(self, name, value):
        check_choice(name, value, self.choices, self.what)
        return value

    def parse(self, text: str) -> str:
        return parse_choice(text, self.choices)


@dataclass(frozen=True)
class DType(Choice):
    """A dtype name of ``choices``; ``np.float32`` (any dtype-like) is taken by its name."""

    def check(self, name, value):
        try:
            dtype_name = np.dtype(value).name
        except TypeError:
            dtype_name = None
        if dtype_name not in self.choices:
            raise ValueError(f"{name}={value!r} is not supported: use one of "
                             f"{', '.join(self.choices)}")
        return dtype_name


@dataclass(frozen=True)
class Flag:
    """True or false (anything else is taken by its truth)."""

    def check(self, name, value):
        return bool(value)


# ---------------------------------------------------------------------------- the declaration
@dataclass(frozen=True)
class Setting:
    """One setting: everything every front end needs to know of it.

    ``default``: the engine's value when nothing decides it (for training settings on a first
    fit the rule of ``defaults_from_text.choose`` decides most; these are the seeds' classic
    values).
    ``label``: a few words (the ``%config`` trait's help). ``doc``: ``fit``'s documentation of a
    training setting. ``help``: the options' help, where ``{choices}`` lists the choices (with
    their meaning, if they have one). ``option``: the option of the magics and the CLI
    (default ``--name-with-dashes``); ``off``: an option that turns it off, with ``off_value``
    and ``off_help``. ``configurable``: a ``%config CharRNNMagics`` trait. ``in_old_files``:
    every checkpoint has it (a setting added later may be absent from older files: it then has
    ``default``). ``saved``: kept in the checkpoint's configuration.
    """
    name: str
    kind: str
    check: object
    default: object = None
    label: str = ""
    help: str = ""
    doc: str = ""
    option: str | None = None
    metavar: str | None = None
    off: str | None = None
    off_value: object = False
    off_help: str = ""
    configurable: bool = True
    in_old_files: bool = False
    saved: bool | None = None

    @property
    def option_name(self) -> str:
        return self.option or "--" + self.name.replace("_", "-")

    @property
    def is_saved(self) -> bool:
        return self.kind != RUN if self.saved is None else self.saved

    def help_text(self) -> str:
        """The options' help, choices filled in (plain text: argparse's ``%`` not escaped)."""
        choices = getattr(self.check, "choices", None)
        return self.help.format(choices=choices_text(choices) if choices is not None else "")


SETTINGS = (
    # -- the architecture (the constructor's; fixed once a model exists)
    Setting("cell", ARCHITECTURE, Choice(CELLS, "is not a cell type"), in_old_files=True,
            label="Cell of new models", help="{choices}."),
    Setting("hidden_size", ARCHITECTURE, Whole(1), option="--hidden", metavar="N",
            in_old_files=True, label="Hidden units per layer", help="Hidden units per layer."),
    Setting("layers", ARCHITECTURE, Whole(1), metavar="N", in_old_files=True,
            label="Stacked recurrent layers", help="Stacked recurrent layers."),
    Setting("dropout", ARCHITECTURE, Fraction(), metavar="P", in_old_files=True,
            label="Dropout between layers", help="Dropout between layers, 0 to <1."),
    Setting("dtype", ARCHITECTURE, DType(DTYPES), default="float32", in_old_files=True,
            label="Type of the weights", help="{choices} (float32: fast, the default)."),
    # -- training: kept from fit to fit, and saved
    Setting("mode", TRAINING, Choice(MODES, "is not a data mode"), "stream", in_old_files=True,
            label="Data mode", help="{choices}.",
            doc='``"stream"`` (one long text, the default) or ``"lines"`` (each line an '
                'example)'),
    Setting("seq_length", TRAINING, Whole(1), 25, in_old_files=True, metavar="T",
            label="Characters per window", help="Characters per window.",
            doc="characters per window (chosen: 50; in lines mode the longest line decides)"),
    Setting("batch_size", TRAINING, Whole(1), None, in_old_files=True, metavar="B",
            label="Sequences per step", help="Sequences per step.",
            doc="sequences per step (chosen: 32, or 1 for a text learned whole, or what a short "
                "text fills)"),
    Setting("optimizer", TRAINING, Choice(OPTIMIZERS), "adagrad", in_old_files=True,
            metavar="NAME", label="Optimizer", help="{choices}.",
            doc='``"adam"`` (chosen, lr 0.004; 0.01 for a text learned whole), ``"adagrad"`` '
                '(the classic, lr 0.1) or ``"sgd"`` (lr 0.1)'),
    Setting("lr", TRAINING, Number(what="a positive learning rate such as 0.1"), None,
            in_old_files=True, metavar="RATE", label="Learning rate", help="Learning rate.",
            doc="the learning rate (a new optimiser starts from its own default)"),
    Setting("clip", TRAINING, Number(0, "0 (no clipping) or a positive bound such as 5"), 5.0,
            in_old_files=True, metavar="C", label="Gradient clipping bound, 0 = off",
            help="Gradient clipping bound (0: off).", doc="the gradient clipping bound (chosen: "
            "1; 0 disables)"),
    Setting("clip_mode", TRAINING, Choice(CLIP_MODES), "value", in_old_files=True,
            metavar="MODE", label="Clip each value or the global norm", help="{choices}.",
            doc='``"norm"`` (clip the whole gradient, chosen) or ``"value"`` (each element, '
                'the classic)'),
    Setting("val_fraction", TRAINING, Fraction(), 0.1, in_old_files=True, metavar="F",
            label="Share of the text held out",
            help="Share of the text held out for validation (0: none).",
            doc="share held out for validation (0.1, at most 50,000 characters of a stream, a "
                "seeded random tenth of the lines in lines mode; a text under 2,000 characters "
                "is learned whole, 0)"),
    Setting("holdout", TRAINING, Choice(HOLDOUTS), "end", metavar="WHERE",
            label="Where stream mode holds its validation part out", help="{choices}.",
            doc='where stream mode holds the validation part out: ``"start"`` (chosen: '
                'training then reads the end of the text) or ``"end"`` (the classic\'s)'),
    Setting("lower", TRAINING, Flag(), False, in_old_files=True, configurable=False,
            help="Lower-case the text (and later primes) first.",
            doc="lower-case the text (and later primes and evaluations)"),
    Setting("lr_schedule", TRAINING, Choice(LR_SCHEDULES), "constant", in_old_files=True,
            metavar="KIND", label="Learning-rate schedule", help="{choices}.",
            doc='``"cosine"`` (chosen) lowers the learning rate along half a cosine to 2 % of '
                '``lr`` by the end of the run (steps, epochs or minutes; a run with only '
                '``target_loss`` has no known end, and keeps ``lr``); ``"constant"`` keeps it'),
    Setting("raw_text", TRAINING, Flag(), False, configurable=False,
            help="Keep the text exactly as given: no BOM dropped, \\r line ends kept.",
            doc="keep every character as given (the model then also takes primes and "
                "evaluations as they are); by default the text is normalised first (see "
                "``charrnn_magic.text.normalize``): a leading BOM is dropped and ``\\r\\n`` and "
                "lone ``\\r`` line ends become ``\\n``, as are later primes and evaluated texts"),
    Setting("weight_decay", TRAINING, Number(0, "0 (no decay) or a small positive rate such "
                                                "as 0.1"), 0.0, metavar="D",
            label="Weight decay per step, times the learning rate",
            help="Shrink each weight by lr x D per step (0: off; chosen: 0.1).",
            doc="shrinks every weight by ``lr`` × ``weight_decay`` at each step, apart from the "
                "gradient's step (decoupled, as in AdamW; chosen: 0.1, none for a text learned "
                "whole)"),
    # -- one fit's own: stop rules, seed, validation
    Setting("steps", RUN, Whole(1), metavar="N", configurable=False,
            help="Train N steps (default 1000; a short text learned whole trains until a "
                 "greedy sample recites it, at most 200 passes)."),
    Setting("epochs", RUN, Number(), metavar="E", configurable=False,
            help="Train E passes over the text."),
    Setting("minutes", RUN, Number(), metavar="M", configurable=False,
            help="Train M minutes (with the auto preset, at most 15 passes over the text; more "
                 "for a text under 100,000 characters)."),
    Setting("target_loss", RUN, Number(), metavar="L", configurable=False,
            help="Stop when the smoothed loss reaches L nats/char."),
    Setting("eval_every", RUN, Whole(1), metavar="N", label="Steps between validations",
            help="Steps between validations."),
    Setting("keep_best", RUN, Flag(), configurable=False,
            help="End with the weights of the best validation loss (the default).",
            off="--no-keep-best", off_help="End with the last weights instead."),
    Setting("patience", RUN, Whole(0), metavar="N", configurable=False,
            help="Stop when validation has not improved for N steps (default: for 3 "
                 "validations and 15% of the run while it is clearly above its best, or 6 and "
                 "30% on a flat plateau; 0: never).",
            off="--no-early-stop", off_value=0,
            off_help="Never stop early (the same as --patience 0)."),
    Setting("full_validation", RUN, Flag(), configurable=False,
            help="Validate on all of the held-out text (default: a fixed sample of at most "
                 "100,000 characters)."),
    Setting("seed", RUN, Whole(0), metavar="S", configurable=False, saved=True,
            in_old_files=True, help="Random seed: same seed and settings, same model."),
)

#: The declaration by name.
BY_NAME = {s.name: s for s in SETTINGS}
#: Constructor settings: the architecture, fixed once a model exists.
ARCH_KEYS = tuple(s.name for s in SETTINGS if s.kind == ARCHITECTURE)
#: Training settings, and what ``None`` means for each when nothing else decides it: on a first
#: fit the rule of ``defaults_from_text.choose`` (from the size of the text) decides all but
#: ``mode`` and ``lower``; these are the seeds' classic values.
TRAIN_DEFAULTS = {s.name: s.default for s in SETTINGS if s.kind == TRAINING}

#: The name of "no preset": everything not given is chosen from the text
#: (``defaults_from_text.py``).
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


def of_kind(*kinds: str) -> tuple[Setting, ...]:
    """The settings of these kinds, in the declaration's order."""
    return tuple(s for s in SETTINGS if s.kind in kinds)


# ---------------------------------------------------------------------------- the API's checks
def check_architecture(cell, hidden_size, layers, dropout, dtype) -> str:
    """Check the constructor's settings; returns the name of ``dtype`` (``"float32"`` for
    ``np.float32`` too). Whether the network fits in memory is known at the first fit, once the
    text gives the vocabulary (``budget.check_fit``)."""
    values = dict(cell=cell, hidden_size=hidden_size, layers=layers, dropout=dropout, dtype=dtype)
    for setting in of_kind(ARCHITECTURE):
        values[setting.name] = setting.check.check(setting.name, values[setting.name])
    return values["dtype"]


def check_stop_rules(steps, epochs, minutes, target_loss):
    """``fit``'s stop rules: whole steps, positive epochs, minutes and target loss, or None."""
    for name, value in dict(steps=steps, epochs=epochs, minutes=minutes,
                            target_loss=target_loss).items():
        if value is not None:
            BY_NAME[name].check.check(name, value)


def resolve(given: dict, previous: dict) -> dict:
    """The training settings of a fit, checked: each one ``given``, else as ``previous`` had it
    (the last fit's settings, or on a first fit the defaults and the preset's)."""
    settings = {k: (previous.get(k) if v is None else v) for k, v in given.items()}
    for name in ("mode", "optimizer"):          # the defaults below depend on them
        BY_NAME[name].check.check(name, settings[name])
    new_optimizer = given["optimizer"] not in (None, previous.get("optimizer"))
    if new_optimizer and given["lr"] is None:
        settings["lr"] = None                   # a new optimiser starts from its own default rate
    if settings["batch_size"] is None:
        settings["batch_size"] = default_batch_size(settings["mode"])
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    for setting in of_kind(TRAINING):
        settings[setting.name] = setting.check.check(setting.name, settings[setting.name])
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


# ---------------------------------------------------------------------------- options' text
def parse_whole(text: str, minimum: int) -> int:
    """An option's whole number of at least ``minimum``."""
    try:
        value = int(text)
    except ValueError:
        raise ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def parse_number(text: str, minimum: float | None = None, maximum: float | None = None, *,
                 above: bool = False, below: bool = False) -> float:
    """An option's finite number in a range; ``above``/``below`` make the bound exclusive."""
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ArgumentTypeError(f"expected a finite number, got {text!r}")
    if minimum is not None and (value <= minimum if above else value < minimum):
        bound = "above" if above else "at least"
        raise ArgumentTypeError(f"must be {bound} {minimum:g}, got {value:g}")
    if maximum is not None and (value >= maximum if below else value > maximum):
        bound = "below" if below else "at most"
        raise ArgumentTypeError(f"must be {bound} {maximum:g}, got {value:g}")
    return value


def parse_choice(text: str, choices) -> str:
    """An option's choice, in any case."""
    value = text.strip().lower()
    if value not in choices:
        raise ArgumentTypeError(f"use one of {', '.join(choices)} (got {text!r})")
    return value


def listed(choices, first: str | None = None) -> str:
    """``rnn, lstm or gru.``: the choices of an option; ``first`` says something of the first."""
    names = list(choices)
    if first:
        names[0] = f"{names[0]} ({first})"
    return (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]) + "."


def described(choices: dict) -> str:
    """``stream: one long text; lines: ...``: each choice with its meaning."""
    return "; ".join(f"{name}: {meaning}" for name, meaning in choices.items()) + "."


def choices_text(choices) -> str:
    """The choices described when each has a meaning (a dict of texts), else listed (with no
    full stop)."""
    if isinstance(choices, dict) and all(isinstance(v, str) for v in choices.values()):
        return described(choices)[:-1]
    return listed(choices)[:-1]


def option_specs(setting: Setting) -> list[tuple[tuple, dict]]:
    """``(flags, keywords)`` of ``argparse``'s ``add_argument`` for a setting's option(s): the
    same for the CLI and the magics (whose ``@argument`` takes the same)."""
    help_text = setting.help_text().replace("%", "%%")         # argparse %-formats its help
    if isinstance(setting.check, Flag):
        specs = [((setting.option_name,), dict(dest=setting.name, action="store_true",
                                               default=None, help=help_text))]
    else:
        specs = [((setting.option_name,), dict(dest=setting.name, type=setting.check.parse,
                                               metavar=setting.metavar, help=help_text))]
    if setting.off:
        specs.append(((setting.off,), dict(dest=setting.name, action="store_const",
                                           const=setting.off_value,
                                           help=setting.off_help.replace("%", "%%"))))
    return specs


def preset_option_spec() -> tuple[tuple, dict]:
    """``--preset``: the option, the same in the CLI and ``%%charrnn_train``."""
    names = list(PRESETS)
    help_text = (f"Start from a preset: {', '.join(names)} (default: auto, chosen from the text "
                 "and the time budget; classic: the classic min-char-rnn).")
    return ("--preset",), dict(type=lambda text: parse_choice(text, PRESETS), metavar="NAME",
                               help=help_text)


# ---------------------------------------------------------------------------- fit's keywords
def with_training_settings(fit):
    """``fit`` taking every training setting as a keyword-only argument (default None): its
    ``**settings`` receives all of them, the ones not given as None; another keyword is a
    TypeError, as for any function. The signature (``help``, ``fit?``, completion) lists them,
    and a ``{training_settings}`` line of the docstring becomes their documentation."""
    names = [s.name for s in of_kind(TRAINING)]
    signature = inspect.signature(fit)
    params = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    at = next(i for i, p in enumerate(params) if p.kind == p.KEYWORD_ONLY)
    params[at:at] = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None)
                     for n in names]
    accepted = {p.name for p in params}

    @functools.wraps(fit)
    def fit_with_settings(self, *args, **kwargs):
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise TypeError(f"{fit.__qualname__}() got an unexpected keyword argument "
                            f"{unknown[0]!r}")
        settings = {n: kwargs.pop(n, None) for n in names}
        return fit(self, *args, **kwargs, **settings)

    fit_with_settings.__signature__ = signature.replace(parameters=params)
    fit_with_settings.__doc__ = _document(fit.__doc__ or "", "{training_settings}")
    return fit_with_settings


def _document(doc: str, marker: str) -> str:
    """``doc`` with the line holding ``marker`` replaced by a list of the training settings."""
    lines = doc.split("\n")
    at = next(i for i, line in enumerate(lines) if marker in line)
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    items = [textwrap.fill(f"- ``{s.name}``: {s.doc}.", 96, initial_indent=indent,
                           subsequent_indent=indent + "  ") for s in of_kind(TRAINING)]
    return "\n".join(lines[:at] + items + lines[at + 1:])


# ---------------------------------------------------------------------------- front ends
def front_end_settings(names, line: dict, preset_on_line: dict, configured: dict) -> dict:
    """What a front end hands the engine for ``names``: each setting from the first source that
    has it, in this order:

    1. the line (an option given);
    2. the preset named on the line (``preset_on_line``: its values are left out here, the
       engine applies them with ``CharRNN.from_preset``);
    3. the front end's configured value (``%config CharRNNMagics.x``; the CLI has none);
    4. the configured preset (the engine applies it, under these values, with ``from_preset``);
    5. the engine: chosen from the text, else the ``Setting``'s default.
    """
    out = {}
    for name in names:
        value = line.get(name)
        if value is None and name not in preset_on_line:
            value = configured.get(name)
        if value is not None:
            out[name] = value
    return out

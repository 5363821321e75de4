"""What every family of magics shares: the current model and the namespace lookup, the one
parser call that makes every mistake a one-line UsageError, and the options several magics take
(``NAME``, ``-t``, the random seed), each defined once here.

The families (:mod:`.train_magics`, :mod:`.sample_magics`, :mod:`.inspect_magics`,
:mod:`.file_magics`) are :class:`MagicsBase` subclasses; :mod:`.magics` joins them into the one
configurable ``CharRNNMagics``.
"""
from __future__ import annotations

import contextlib
import difflib
import keyword
import os
import warnings

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from IPython.core.magic_arguments import argument
from traitlets import Unicode

from ..charrnn import CharRNN
from ..data import LongLinesCut
from ..settings import BY_NAME
from ..text import check_no_surrogates
from ..vocab import describe_chars, describe_missing
from .options import looks_numeric, number_in, split_line

#: The option spellings of the random seed: ``--seed`` everywhere; ``-r`` and ``--random-seed``,
#: the sampling magics' first spellings, still work.
SEED_FLAGS = ("--seed", "-r", "--random-seed")


def name_argument(help_text: str = "Model (default: the last one trained or loaded)."):
    """``NAME``: the model a magic works on, or binds."""
    return argument("name", nargs="?", metavar="NAME", help=help_text)


def temperature_option(help_text: str, maximum: float | None = None):
    """``-t``/``--temperature``: 0 is greedy."""
    return argument("-t", "--temperature", type=number_in(0, maximum), metavar="T",
                    help=help_text)


def seed_option(help_text: str):
    """``--seed S`` (also ``-r``, ``--random-seed``): the random seed, checked as the engine's
    ``seed`` setting."""
    seed = BY_NAME["seed"]
    return argument(*SEED_FLAGS, dest="seed", type=seed.check.parse, metavar=seed.metavar,
                    help=help_text)


@contextlib.contextmanager
def warnings_as_lines(quiet: bool):
    """The engine's notes (e.g. ``LongLinesCut``) printed as one plain line each (nothing when
    ``quiet``), instead of Python's two-line warning with a source line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", LongLinesCut)
        warnings.showwarning = lambda message, *_, **__: (
            None if quiet else print(f"note: {message}"))
        yield


def is_model(obj) -> bool:
    """A CharRNN, also one made before an autoreload replaced the class."""
    return isinstance(obj, CharRNN) or (
        type(obj).__name__ == "CharRNN" and type(obj).__module__.startswith("charrnn_magic"))


class MagicsBase(Magics):
    """The models in the user's namespace, and the current one (the last trained or loaded)."""

    default_name = Unicode("charrnn", help="Variable a model is bound to when NAME is not given.") \
        .tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self._current: str | None = None   # NAME of the last model trained or loaded

    def _parse(self, magic, line, magic_name):
        """Parse ``line`` with the magic's parser; every problem is a one-line UsageError."""
        parser = magic.parser
        takes_value = {o for o, a in parser._option_string_actions.items() if a.nargs != 0}
        argv = split_line(line, magic_name, takes_value)
        try:
            args, extras = parser.parse_known_args(argv)
        except UsageError as exc:
            raise UsageError(f"%{magic_name}: {exc}; see %{magic_name}? for the options") \
                from None
        if extras:
            word = extras[0]
            if word.startswith("-") and len(word) > 1 and not looks_numeric(word):
                known = [o for o in parser._option_string_actions if o.startswith("--")]
                close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UsageError(f"%{magic_name}: unknown option {word}{hint}; "
                                 f"see %{magic_name}? for the options")
            raise UsageError(f"%{magic_name}: unexpected argument {word!r}; "
                             f"see %{magic_name}? for the usage")
        return args

    def _check_name(self, name: str) -> str:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"{name!r} cannot be a variable name: use letters, digits and _, "
                             "not starting with a digit (e.g. charrnn2)")
        return name

    def _models(self) -> list[tuple[str, object]]:
        hidden = self.shell.user_ns_hidden
        return [(k, v) for k, v in list(self.shell.user_ns.items())
                if not k.startswith("_") and k not in hidden and is_model(v)]

    def _current_name(self) -> str | None:
        ns = self.shell.user_ns
        for candidate in (self._current, self.default_name):
            if candidate is not None and is_model(ns.get(candidate)):
                return candidate
        models = self._models()
        return models[0][0] if len(models) == 1 else None

    def _known_suffix(self) -> str:
        names = [k for k, _ in self._models()]
        return f" (the models here: {', '.join(names)})" if names else ""

    def _model(self, name: str | None, trained: bool = False):
        """(name, model) for NAME, or the current model; UsageError saying what to do."""
        ns = self.shell.user_ns
        if name is None:
            name = self._current_name()
            if name is None:
                names = [k for k, _ in self._models()]
                if names:
                    raise UsageError(f"which model? there are several ({', '.join(names)}): "
                                     "give its NAME")
                raise UsageError("no model yet: train one with %%charrnn_train (a cell of "
                                 "text) or %charrnn_train --corpus verse, or load one with "
                                 "%charrnn_load PATH")
        else:
            obj = ns.get(name)
            if not is_model(obj):
                if looks_numeric(name):
                    raise UsageError(f"{name!r} is not a model name: for a length write -n {name}")
                names = [k for k, _ in self._models()]
                what = (f"there is no model {name!r}" if obj is None else
                        f"{name!r} is a {type(obj).__name__}, not a model")
                raise UsageError(what + (f"; the models here: {', '.join(names)}" if names else
                                         f"; train one with %%charrnn_train {name}"))
        model = ns[name]
        if trained and not model.is_trained:
            raise UsageError(f"{name!r} is not trained yet: train it with %%charrnn_train {name}")
        return name, model

    def _check_known(self, name, model, text, what):
        """``text`` (a prime, a seed character, a text to inspect) has only characters the
        model knows; else a UsageError naming the others."""
        try:
            check_no_surrogates(text, what)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        lower = bool(model.config().get("lower"))
        probe = text.lower() if lower else text
        missing = model.vocab.missing(probe)
        if missing:
            known = "".join(model.vocab.chars)
            raise UsageError(
                f"{what} has {len(missing)} character(s) that {name!r} never saw: "
                f"{describe_missing(missing, model.vocab.chars)}; it knows {len(known)}: "
                f"{describe_chars(model.vocab.chars, limit=30)}")

    def _save(self, name, model, path, quiet, snapshots=False):
        """Save ``model`` to ``path`` (%charrnn_save, --save); a UsageError if it cannot be."""
        try:
            written = (model.save(os.path.expanduser(path), snapshots=True) if snapshots
                       else model.save(os.path.expanduser(path)))
        except (ValueError, OSError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"could not save {name!r} to {path!r}: {detail} (the model is "
                             "unchanged, and so is any file already there)") from None
        if not quiet:
            print(f"saved {name} ({model.summary()}) to {written}")

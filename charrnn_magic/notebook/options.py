"""The magics' options: splitting a magic's line, checking option values, naming characters,
and the options and ``%config`` traits made from the engine's declaration of the settings.

Every function raises :class:`~IPython.core.error.UsageError` (exactly that class) for a user
mistake, or argparse's ``ArgumentTypeError``, which the magics' parser turns into one.
"""
from __future__ import annotations

import functools
import re
import types

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from traitlets import Bool, CaselessStrEnum, Float, Int
from traitlets.config import Configurable

from ..settings import (
    SETTINGS,
    Flag,
    Fraction,
    Number,
    Setting,
    Whole,
    of_kind,
    option_specs,
    parse_choice,
    parse_number,
    parse_whole,
)
from ..text import read_text


# -- option value checks: the engine's (settings.parse_*), which raise argparse's
#    ArgumentTypeError; argparse turns it into "argument -x: message" ----------------------
def whole_number(minimum: int):
    return functools.partial(parse_whole, minimum=minimum)


def number_in(minimum: float | None = None, maximum: float | None = None, *,
              above: bool = False, below: bool = False):
    """A float in a range; ``above``/``below`` make the bound exclusive."""
    return functools.partial(parse_number, minimum=minimum, maximum=maximum, above=above,
                             below=below)


def one_of(*choices: str):
    return functools.partial(parse_choice, choices=choices)


# -- options and %config traits made from the engine's one declaration of each setting --------
def spec_arguments(specs):
    """``@argument`` decorators for ``(flags, keywords)`` specs, in their order, as IPython's
    ``script_args`` applies its list of them."""
    def decorate(func):
        for flags, keywords in reversed(specs):       # decorators apply from the bottom up
            func = argument(*flags, **keywords)(func)
        return func
    return decorate


def setting_arguments(*kinds: str):
    """The options of the settings of these kinds, in the declaration's order."""
    return spec_arguments([spec for setting in of_kind(*kinds)
                           for spec in option_specs(setting)])


def setting_trait(setting: Setting):
    """The ``%config`` trait of a setting; None (its default) leaves it to the preset."""
    choices = getattr(setting.check, "choices", None)
    help_text = (f"{setting.label} ({setting.option_name}); None: from the preset, else the "
                 "engine's default.")
    if choices is not None:
        trait = CaselessStrEnum(list(choices), None, allow_none=True, help=help_text)
    else:
        kind = {Whole: Int, Number: Float, Fraction: Float, Flag: Bool}[type(setting.check)]
        trait = kind(None, allow_none=True, help=help_text)
    return trait.tag(config=True)


#: A trait for each configurable setting (``%config CharRNNMagics.hidden_size = 256``).
SettingDefaults = types.new_class(
    "SettingDefaults", (Configurable,),
    exec_body=lambda ns: ns.update({s.name: setting_trait(s) for s in SETTINGS if s.configurable}))


#: Readable names for characters that are awkward to type in a magic's line.
CHAR_NAMES = {
    "space": " ", "sp": " ", "␣": " ",
    "newline": "\n", "nl": "\n", "\\n": "\n", "⏎": "\n", "enter": "\n", "linefeed": "\n",
    "tab": "\t", "\\t": "\t", "⇥": "\t",
    "return": "\r", "cr": "\r", "\\r": "\r", "␍": "\r",
}


def parse_char(text: str, option: str = "--seed-char") -> str:
    """One character from an option value: ``a``, ``space``, ``newline``, ``\\n``, ``tab``,
    ``␣``."""
    if len(text) == 1:
        return text
    key = text.strip().lower()
    key = key.split(" (")[0] if key.endswith(")") else key   # "␣ (space)", as the panel shows it
    if key in CHAR_NAMES:
        return CHAR_NAMES[key]
    raise UsageError(f"{option} takes one character, or one of the names space, newline (\\n), "
                     f"tab (\\t); got {text!r}")


def unescape(text: str) -> str:
    r"""``\n``, ``\t``, ``\r`` and ``\\`` in a priming text become newline, tab, return,
    backslash."""
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return re.sub(r"\\([ntr\\])", lambda m: table[m.group(1)], text)


def split_line(line: str, magic_name: str = "charrnn", takes_value=frozenset()) -> list[str]:
    r"""Split a magic's line like a shell, with two changes so that Windows paths and ``\n``
    in a prime work.

    - Spaces separate words; quotes group them and are removed. Inside ``'...'`` every
      character is itself; inside ``"..."`` too, except that ``\"`` is a quote.
    - Outside quotes, a backslash before a space, a tab, a quote or ``#`` makes that character
      part of the word (``my\ file.txt``, ``\"q\".txt``); every other backslash stays as it
      is (``C:\data\names.txt``, ``--prime a\nb``, which :func:`unescape` reads later), and
      ``\\`` stays two backslashes.
    - A ``#`` that starts a word outside quotes starts a comment (the rest of the line is
      ignored), unless the word before is an option in ``takes_value``: then it is that
      option's value (``-p #x`` primes with ``#x``).
    """
    words, comment_at = _words(line, magic_name)
    for i, _word in enumerate(words):
        if i in comment_at and not (i and words[i - 1] in takes_value):
            return words[:i]
    return words


_ESCAPABLE = " \t'\"#\\"


def _words(line: str, magic_name: str) -> tuple[list[str], set[int]]:
    """The words of ``line`` and the indexes of those that start with an unquoted, unescaped
    ``#``; a UsageError for a quote that is not closed."""
    words, hashes = [], set()
    word, in_word, quote, i = [], False, None, 0
    while i < len(line):
        c = line[i]
        nxt = line[i + 1] if i + 1 < len(line) else ""
        if quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
        elif quote == '"':
            if c == "\\" and nxt and nxt in '"\\':
                word.append('"' if nxt == '"' else "\\\\")
                i += 1
            elif c == '"':
                quote = None
            else:
                word.append(c)
        elif c.isspace():
            if in_word:
                words.append("".join(word))
            word, in_word = [], False
        else:
            if not in_word and c == "#":
                hashes.add(len(words))
            in_word = True
            if c in "'\"":
                quote = c
            elif c == "\\" and nxt and nxt in _ESCAPABLE:
                word.append("\\\\" if nxt == "\\" else nxt)
                i += 1
            else:
                word.append(c)
        i += 1
    if quote:
        raise UsageError(f"%{magic_name}: a quote is not closed in: {line.strip()} "
                         f"(write \\{quote} for the character)")
    if in_word:
        words.append("".join(word))
    return words, hashes


def looks_numeric(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def read_text_file(path: str, raw: bool = False) -> str:
    """The text of a UTF-8 file, read by the engine's one reader (normalised unless ``raw``), or
    a UsageError that says what is wrong with it."""
    try:
        return read_text(path, raw=raw)
    except ValueError as exc:
        raise UsageError(f"--file {exc}") from None

"""The magics' options: splitting a magic's line, checking option values, naming characters.

Kept apart from :mod:`charrnn_magic.notebook.magics` so that file reads as the magics themselves.
Every function raises :class:`~IPython.core.error.UsageError` (exactly that class) for a user
mistake, or argparse's ``ArgumentTypeError``, which the magics' parser turns into one.
"""
from __future__ import annotations

import re
import shlex
from argparse import ArgumentTypeError as _TypeError

from IPython.core.error import UsageError

from ..text import read_text


def option_of(key: str) -> str:
    """The option of a setting: ``hidden_size`` -> ``--hidden``, ``clip_mode`` -> ``--clip-mode``."""
    return "--hidden" if key == "hidden_size" else "--" + key.replace("_", "-")


# -- option value checks (argparse turns ArgumentTypeError into "argument -x: message") --------
def whole_number(minimum: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _TypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise _TypeError(f"must be at least {minimum}, got {value}")
        return value
    return convert


def number_in(minimum: float | None = None, maximum: float | None = None, *,
              above: bool = False, below: bool = False):
    """A float in a range; ``above``/``below`` make the bound exclusive."""
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _TypeError(f"expected a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise _TypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if above else value < minimum):
            bound = "above" if above else "at least"
            raise _TypeError(f"must be {bound} {minimum:g}, got {value:g}")
        if maximum is not None and (value >= maximum if below else value > maximum):
            bound = "below" if below else "at most"
            raise _TypeError(f"must be {bound} {maximum:g}, got {value:g}")
        return value
    return convert


# -- help texts made from the engine's sets of choices (each defined once, in the engine) ------
def listed(choices, first: str | None = None) -> str:
    """``rnn, lstm or gru.``: the choices of an option; ``first`` says something of the first."""
    names = list(choices)
    if first:
        names[0] = f"{names[0]} ({first})"
    return (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]) + "."


def described(choices: dict) -> str:
    """``stream: one long text; lines: ...``: each choice with its meaning (argparse-safe)."""
    text = "; ".join(f"{name}: {meaning}" for name, meaning in choices.items()) + "."
    return text.replace("%", "%%")


def one_of(*choices: str):
    def convert(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise _TypeError(f"use one of {', '.join(choices)} (got {text!r})")
        return value
    return convert


#: Readable names for characters that are awkward to type in a magic's line.
CHAR_NAMES = {
    "space": " ", "sp": " ", "␣": " ",
    "newline": "\n", "nl": "\n", "\\n": "\n", "⏎": "\n", "enter": "\n", "linefeed": "\n",
    "tab": "\t", "\\t": "\t", "⇥": "\t",
    "return": "\r", "cr": "\r", "\\r": "\r", "␍": "\r",
}


def parse_char(text: str, option: str = "--seed-char") -> str:
    """One character from an option value: ``a``, ``space``, ``newline``, ``\\n``, ``tab``, ``␣``."""
    if len(text) == 1:
        return text
    key = text.strip().lower()
    key = key.split(" (")[0] if key.endswith(")") else key   # "␣ (space)", as the panel shows it
    if key in CHAR_NAMES:
        return CHAR_NAMES[key]
    raise UsageError(f"{option} takes one character, or one of the names space, newline (\\n), "
                     f"tab (\\t); got {text!r}")


def unescape(text: str) -> str:
    r"""``\n``, ``\t``, ``\r`` and ``\\`` in a priming text become newline, tab, return, backslash."""
    table = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return re.sub(r"\\([ntr\\])", lambda m: table[m.group(1)], text)


def split_line(line: str, magic_name: str = "charrnn") -> list[str]:
    """Split a magic's line like a shell: quotes group words and are removed, and a ``#`` that
    starts a word outside quotes begins a comment (quote it, ``"#"``, to mean the character).

    IPython's own splitter keeps the quotes, so ``--prime "to be"`` would prime with the
    quotes. Backslashes are left alone (no shell escapes), so Windows paths work and ``\\n``
    reaches :func:`unescape`.
    """
    lexer = shlex.shlex(_without_comment(line), posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    try:
        return list(lexer)
    except ValueError:
        raise UsageError(f"%{magic_name}: a quote is not closed in: {line.strip()}") from None


def _without_comment(line: str) -> str:
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def looks_numeric(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def read_text_file(path: str) -> str:
    """The text of a UTF-8 file, read by the engine's one reader, or a UsageError that says what
    is wrong with it."""
    try:
        return read_text(path)
    except ValueError as exc:
        raise UsageError(f"--file {exc}") from None

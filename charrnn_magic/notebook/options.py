"""The magics' options: splitting a magic's line, checking option values, naming characters.

Kept apart from :mod:`charrnn_magic.notebook.magics` so that file reads as the magics themselves.
Every function raises :class:`~IPython.core.error.UsageError` (exactly that class) for a user
mistake, or argparse's ``ArgumentTypeError``, which the magics' parser turns into one.
"""
from __future__ import annotations

import re
from argparse import ArgumentTypeError as _TypeError

from IPython.core.error import UsageError

from ..text import read_text


def option_of(key: str) -> str:
    """The option of a setting: ``hidden_size`` -> ``--hidden``, ``clip_mode`` ->
    ``--clip-mode``."""
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

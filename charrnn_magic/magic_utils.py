"""Pieces of the magics that need no shell: option values, characters, files, samples.

Kept apart from :mod:`charrnn_magic.magics` so that file reads as the magics themselves.
Every function raises :class:`~IPython.core.error.UsageError` (exactly that class) for a user
mistake.
"""
from __future__ import annotations

import os
import re
import shlex
import unicodedata
from argparse import ArgumentTypeError as _TypeError
from pathlib import Path

from IPython.core.error import UsageError

from .charrnn import CharRNN
from .data import held_out_count


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


def is_model(obj) -> bool:
    """A CharRNN, also one made before an autoreload replaced the class."""
    return isinstance(obj, CharRNN) or (
        type(obj).__name__ == "CharRNN" and type(obj).__module__.startswith("charrnn_magic"))


def close_chars(char: str, known) -> list[str]:
    """Characters of ``known`` a user may have meant by ``char``: other case, no accent, ASCII."""
    ascii_like = {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "–": "-", "—": "-",
                  "…": ".", "\u00a0": " ", "\r": "\n", "\t": " "}
    base = unicodedata.normalize("NFKD", char)[:1]    # 'É' -> 'E'
    candidates = [char.lower(), char.upper(), base, base.lower(), base.upper(),
                  ascii_like.get(char, "")]
    out = []
    for c in candidates:
        if len(c) == 1 and c != char and c in known and c not in out:
            out.append(c)
    return out


def describe_missing(missing, known) -> str:
    """``'Q' (try 'q'), 'é' (try 'e')``: each unknown character and the close ones it has."""
    parts = []
    for c in missing[:12]:
        close = close_chars(c, known)
        parts.append(repr(c) + (f" (try {' or '.join(map(repr, close))})" if close else ""))
    if len(missing) > 12:
        parts.append(f"and {len(missing) - 12} more")
    return ", ".join(parts)


class Sample(str):
    """A sample's text: a plain ``str``, which IPython does not echo a second time.

    ``%charrnn_sample`` prints the sample and returns it; as the last line of a cell the
    returned value would be shown again as ``Out[n]``. This one skips that echo once, in the
    cell that printed it; everywhere else it displays like any str.
    """

    def _ipython_display_(self):
        _display_unless_just_printed(self, str(self))


class SampleList(list):
    """The samples of ``%charrnn_sample --count N``: a plain ``list`` of ``str`` (see Sample)."""

    def _ipython_display_(self):
        _display_unless_just_printed(self, list(self))


def mark_printed(value, shell):
    value._printed_in = getattr(shell, "execution_count", None)
    return value


def _display_unless_just_printed(value, plain):
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    printed_in = value.__dict__.pop("_printed_in", "never")
    if shell is not None and printed_in == shell.execution_count:
        return
    display(plain)


def fit_to_text(text: str, kw: dict, explicit: set) -> str | None:
    """Shrink default batch size / window length (in ``kw``) that a short text cannot fill.

    Presets are made for corpora of many kilobytes; a cell often holds a short poem. Settings
    given explicitly are left alone (the engine then explains what does not fit). Returns a
    note about what changed, or None.
    """
    text = text.lower() if kw.get("lower") else text
    vf = kw.get("val_fraction", 0.1)
    changes = []
    if kw.get("mode", "stream") == "stream":
        n_train = len(text) - held_out_count(len(text), vf)   # the engine holds out the tail
        T = kw.get("seq_length", 25)
        if "seq_length" not in explicit and 2 <= n_train - 1 < T:
            changes.append(f"window {n_train - 1} instead of {T}")
            T = kw["seq_length"] = n_train - 1
        B, most = kw.get("batch_size", 1), (n_train - 1) // T
        if "batch_size" not in explicit and B > most >= 1:
            changes.append(f"batch size {most} instead of {B}")
            kw["batch_size"] = most
    else:
        n_lines = sum(1 for line in text.split("\n") if line)
        n_train = n_lines - held_out_count(n_lines, vf)
        B = kw.get("batch_size", 32)
        if "batch_size" not in explicit and B > n_train >= 1:
            changes.append(f"batch size {n_train} instead of {B}")
            kw["batch_size"] = n_train
    if changes:
        return f"(the text is short: {' and '.join(changes)})"
    return None


def looks_numeric(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def read_text_file(path: str) -> str:
    """The text of a UTF-8 file (a BOM is dropped, Windows line ends become ``\\n``), or a
    UsageError that says what is wrong with it."""
    p = Path(os.path.expanduser(path))
    if not p.exists():
        raise UsageError(f"--file {path}: no such file (relative paths start in {os.getcwd()})")
    if p.is_dir():
        raise UsageError(f"--file {path} is a folder: give a text file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"--file {path} cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise UsageError(f"--file {path} is empty: give a file with some text")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise UsageError(f"--file {path} is UTF-16 text: save it as UTF-8 and try again")
    if b"\x00" in data:
        raise UsageError(f"--file {path} looks binary (it has NUL bytes): give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start:,}): convert it to UTF-8 first, e.g. "
                         "iconv -f latin1 -t utf-8") from None
    return text.replace("\r\n", "\n")

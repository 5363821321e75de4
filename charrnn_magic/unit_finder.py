"""Which units track what: features of a text, the units that correlate with them, and how
often each gate is saturated (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding
Recurrent Networks": the quote cell, the line-length cell, and the gate-saturation figure).

::

    >>> model.find_units(text)                       # the 5 units most correlated with each feature
    >>> find_units(trace, {"vowel": lambda s: [c in "aeiou" for c in s]})   # your own feature
    >>> gate_saturation(trace)                       # per gate unit: share of time < 0.1 and > 0.9

A feature is a number per character of the text, aligned with the trace: value ``t`` describes
the text up to and including character ``t``, as the state after reading it does (after an
opening quote, ``in_quotes`` is already 1; after the closing one, 0 again).
"""
from __future__ import annotations

import functools
import html
from typing import NamedTuple

import numpy as np

from .blas_threads import blas_threads
from .trace import GATES, Trace

_QUOTES = {'"'}                                 # straight: each one opens or closes
_OPEN_QUOTES, _CLOSE_QUOTES = {"“", "«", "„"}, {"”", "»"}
_BRACKETS = {"paren_depth": "()", "square_depth": "[]", "brace_depth": "{}"}


@functools.lru_cache(maxsize=4)
def _distinct(text: str):
    """The distinct code points of ``text`` and, per character, the index of its own: the
    features are computed once per distinct character, not once per character."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")        # (T,)
    return np.unique(codes, return_inverse=True)


def _classes(text: str, test) -> np.ndarray:
    """(T,) bool: ``test(char)`` for each character, called once per distinct character."""
    distinct, inverse = _distinct(text)
    return np.array([bool(test(chr(c))) for c in distinct], dtype=bool)[inverse.ravel()]


def _line_starts(text: str) -> np.ndarray:
    """(T,) index of the first character of each character's line."""
    newline = _classes(text, lambda c: c == "\n")
    start = np.zeros(len(text), np.int64)
    start[1:] = np.where(newline[:-1], np.arange(1, len(text)), 0)
    return np.maximum.accumulate(start)


def line_position(text: str) -> np.ndarray:
    """Characters since the start of the line (0 for its first character; a newline gets the
    length of the line it ends)."""
    return (np.arange(len(text)) - _line_starts(text)).astype(float)


def line_start(text: str) -> np.ndarray:
    """1 for the first character of each line."""
    return (line_position(text) == 0).astype(float)


def in_quotes(text: str) -> np.ndarray:
    """1 inside double quotes, straight (``"..."``: each one opens or closes) or curly (``“...”``,
    also « » and „): from the opening quote up to, not including, the closing one."""
    straight = np.cumsum(_classes(text, lambda c: c in _QUOTES)) % 2
    curly = np.cumsum(_classes(text, lambda c: c in _OPEN_QUOTES).astype(np.int64)
                      - _classes(text, lambda c: c in _CLOSE_QUOTES))
    return ((straight == 1) | (_floor_at_zero(curly) > 0)).astype(float)


def _floor_at_zero(walk: np.ndarray) -> np.ndarray:
    """A running count of opens minus closes where a close with nothing open is ignored: the
    walk reflected at 0 (exact for steps of ±1)."""
    return walk - np.minimum(np.minimum.accumulate(walk), 0)


def _depth(text: str, pair: str) -> np.ndarray:
    opens = _classes(text, lambda c: c in pair[0::2])
    closes = _classes(text, lambda c: c in pair[1::2])
    return _floor_at_zero(np.cumsum(opens.astype(np.int64) - closes)).astype(float)


def bracket_depth(text: str) -> np.ndarray:
    """Open brackets of any kind: (), [] and {} (after an opening bracket, already counted)."""
    return _depth(text, "()[]{}")


def paren_depth(text: str) -> np.ndarray:
    """Open round brackets ``()``."""
    return _depth(text, "()")


def square_depth(text: str) -> np.ndarray:
    """Open square brackets ``[]``."""
    return _depth(text, "[]")


def brace_depth(text: str) -> np.ndarray:
    """Open curly brackets ``{}``."""
    return _depth(text, "{}")


def in_word(text: str) -> np.ndarray:
    """1 for letters (any alphabet)."""
    return _classes(text, str.isalpha).astype(float)


def word_position(text: str) -> np.ndarray:
    """Position in the word: 1 for a word's first letter, 2 for the next...; 0 outside words."""
    alpha = _classes(text, str.isalpha)
    T = len(text)
    first = alpha.copy()
    first[1:] &= ~alpha[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(T), 0))      # (T,) start of the run
    return np.where(alpha, np.arange(T) - start + 1, 0).astype(float)


def upper_case(text: str) -> np.ndarray:
    """1 for upper-case letters."""
    return _classes(text, str.isupper).astype(float)


def digit(text: str) -> np.ndarray:
    """1 for digits."""
    return _classes(text, str.isdigit).astype(float)


def indent(text: str) -> np.ndarray:
    """Indentation of the current line (spaces and tabs before its first other character; a
    tab counts as one), the same for every character of the line."""
    T = len(text)
    starts = _line_starts(text)                                          # (T,)
    blank = _classes(text, lambda c: c in " \t")
    newline = _classes(text, lambda c: c == "\n")
    stops = np.append(np.flatnonzero(~blank | newline), T)               # where indentation ends
    first = stops[np.searchsorted(stops, starts)]                        # (T,) first stop >= start
    return (first - starts).astype(float)


#: The built-in features: name -> function of the text returning a (T,) array.
FEATURES = {
    "line_position": line_position, "line_start": line_start, "in_quotes": in_quotes,
    "bracket_depth": bracket_depth, "paren_depth": paren_depth, "square_depth": square_depth,
    "brace_depth": brace_depth, "in_word": in_word, "word_position": word_position,
    "upper_case": upper_case, "digit": digit, "indent": indent,
}


def features_of(text: str, features=None) -> dict:
    """{name: (T,) float array}: ``features`` is None (every built-in of ``FEATURES``), a name or
    a list of names of built-ins, or a dict {name: f} where f is a function of the text that
    returns T numbers, an array of T numbers, or None (the built-in of that name)."""
    T = len(text)
    if features is None:
        features = dict.fromkeys(FEATURES)
    elif isinstance(features, str):
        features = {features: None}
    elif not isinstance(features, dict):
        features = dict.fromkeys(features)
    out = {}
    for name, f in features.items():
        if f is None:
            if name not in FEATURES:
                raise ValueError(f"no built-in feature named {name!r}: use one of "
                                 f"{', '.join(FEATURES)}, "
                                 "or give it as {name: function of the text}")
            f = FEATURES[name]
        values = f(text) if callable(f) else f
        try:
            values = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"feature {name!r} is not a sequence of numbers") from None
        if len(values) != T:
            raise ValueError(f"feature {name!r} has {len(values):,} values for a text of {T:,} "
                             "characters: give one value per character")
        out[name] = values
    return out


class UnitMatch(NamedTuple):
    """One unit and a feature it follows: Pearson correlation ``r`` over the text."""

    feature: str
    layer: int
    state: str
    unit: int
    r: float

    def __repr__(self) -> str:
        return f"{self.feature}: layer {self.layer} {self.state}[{self.unit}] r={self.r:+.3f}"


class UnitMatches(list):
    """A list of ``UnitMatch`` records, best first within each feature; shows as a table.
    ``skipped``: features that were constant over the text (no correlation exists)."""

    def __init__(self, rows=(), skipped=()):
        super().__init__(rows)
        self.skipped = list(skipped)

    def __repr__(self) -> str:
        lines = [f"{'feature':<16}{'layer':>6}  {'state':<6}{'unit':>5}{'r':>9}"]
        lines += [f"{m.feature:<16}{m.layer:>6}  {m.state:<6}{m.unit:>5}{m.r:>+9.3f}" for m in self]
        if self.skipped:
            lines.append(f"(constant over this text, skipped: {', '.join(self.skipped)})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("feature", "layer", "state", "unit", "r"))
        rows = "".join(
            f"<tr><td>{html.escape(m.feature)}</td><td>{m.layer}</td>"
            f"<td>{html.escape(m.state)}</td><td>{m.unit}</td><td>{m.r:+.3f}</td></tr>"
            for m in self)
        note = (f"<p>constant over this text, skipped: {html.escape(', '.join(self.skipped))}</p>"
                if self.skipped else "")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}"


def find_units(trace: Trace, features=None, top: int = 5) -> UnitMatches:
    """The ``top`` units most correlated (largest |Pearson r|) with each feature, over every
    layer and state kind the trace kept. ``features``: see ``features_of``. The sign of ``r``
    is kept: a unit that is low inside quotes has r near -1."""
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top={top!r} is out of range: use a whole number of at least 1")
    feats = features_of(trace.text, features)
    names = [n for n, v in feats.items() if np.ptp(v) > 0]
    skipped = [n for n in feats if n not in names]
    blocks = [(l, k) for l in trace.layers for k in trace.kinds]
    if not names or not blocks or len(trace) < 2:
        return UnitMatches([], skipped)
    H = trace.hidden_size
    dtype = trace.states[blocks[0][0]][blocks[0][1]].dtype
    F = np.stack([feats[n] for n in names], axis=1)                        # (T, F)
    F -= F.mean(axis=0)
    F /= np.sqrt((F * F).sum(axis=0))                                      # unit columns
    F = F.astype(dtype)
    r = np.empty((len(names), len(blocks) * H))                            # (F, N) every unit
    # one BLAS thread: these thin (F, T) @ (T, H) products
    # ran 3.5x faster than with two here, and much faster still when the other core is busy.
    with blas_threads(1):
        r = _correlations(trace, blocks, F, r)
    r = np.clip(r, -1.0, 1.0)
    k = min(top, r.shape[1])
    best = np.argsort(-np.abs(r), axis=1, kind="stable")[:, :k]            # (F, k)
    rows = []
    for f, name in enumerate(names):
        for j in best[f]:
            l, kind = blocks[j // H]
            rows.append(UnitMatch(name, l, kind, int(j % H), float(r[f, j])))
    return UnitMatches(rows, skipped)


def _correlations(trace, blocks, F, r):
    """r (F, N) filled block by block, each H units at once: no (T, N) copy of all units."""
    H = trace.hidden_size
    for j, (l, kind) in enumerate(blocks):
        U = trace.states[l][kind]                                          # (T, H)
        centred = U - U.mean(axis=0)                                       # (T, H)
        norm = np.sqrt(np.einsum("th,th->h", centred, centred))            # (H,)
        num = F.T @ centred                                                # (F, H)
        with np.errstate(divide="ignore", invalid="ignore"):
            # A unit that never moves (norm 0, or rounding noise) correlates with nothing.
            r[:, j * H : (j + 1) * H] = np.where(norm > 1e-6 * np.sqrt(len(U)), num / norm, 0.0)
    return r


class Saturation(NamedTuple):
    """One gate of one layer: for each of its units, the share of positions where the gate was
    below 0.1 (``left``, (H,)) and above 0.9 (``right``, (H,))."""

    layer: int
    gate: str
    left: np.ndarray
    right: np.ndarray


def gate_saturation(trace: Trace, low: float = 0.1, high: float = 0.9) -> list[Saturation]:
    """Per layer and sigmoid gate (LSTM: i, f, o; GRU: r, z) the saturation of each unit: the
    paper's figure plots ``right`` against ``left``, one point per unit. A gate that is often
    right-saturated (f > 0.9) remembers; one often left-saturated ignores its input."""
    gates = [g for g in GATES[trace.cell] if g in trace.kinds]
    if not GATES[trace.cell]:
        raise ValueError(f"a {trace.cell.upper()} has no gates to saturate")
    if not gates:
        raise ValueError("the trace kept no gates: trace with states=None or include "
                         f"{', '.join(GATES[trace.cell])}")
    out = []
    for l in trace.layers:
        for g in gates:
            a = trace.states[l][g]                                         # (T, H)
            out.append(Saturation(l, g, (a < low).mean(axis=0), (a > high).mean(axis=0)))
    return out

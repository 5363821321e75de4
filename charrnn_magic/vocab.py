"""Characters <-> integer ids.

A vocabulary is the sorted set of Unicode code points of a text, so the same text always
gives the same ids, and emoji, accented letters and CJK are single characters, not bytes.
"""
from __future__ import annotations

import unicodedata

import numpy as np

from .text import surrogate_message

#: Characters encoded at a time: encoding a big text needs this much scratch, not 4 bytes a
#: character of the whole text.
_CHUNK = 1 << 20

#: How the user interfaces show characters that would otherwise be invisible.
_READABLE = {" ": "␣ (space)", "\n": "⏎ (newline)", "\t": "⇥ (tab)", "\r": "␍ (return)"}


class Vocab:
    """The characters a model knows, in sorted order; ``vocab.chars[i]`` is the character of id
    ``i``."""

    def __init__(self, chars):
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("the vocabulary is empty: give at least one character")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("a vocabulary holds single characters")
        surrogates = [c for c in chars if "\ud800" <= c <= "\udfff"]
        if surrogates:
            raise ValueError(f"a vocabulary cannot hold lone surrogates "
                             f"({describe_chars(surrogates)}): they are halves of UTF-16 pairs, "
                             "not characters")
        self.chars: list[str] = chars
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        # A table from code point to id (-1: not in the vocabulary): encoding is one gather.
        self._ids = np.full(int(codes.max()) + 1, -1, dtype=np.int32)
        self._ids[codes] = np.arange(len(chars), dtype=np.int32)
        # ASCII text with up to 256 ids is encoded by bytes.translate: 1.7 ms a megabyte here,
        # against 4.7 for the gather. _ascii_known: the vocabulary's ASCII characters.
        self._ascii_known = bytes(c for c in codes.tolist() if c < 128)
        self._ascii_table = None
        if len(chars) <= 256:
            table = bytearray(256)
            for c in self._ascii_known:
                table[c] = int(self._ids[c])
            self._ascii_table = bytes(table)

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(_distinct_chars(text))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.chars

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters: {''.join(self.chars)[:40]!r})"

    @property
    def id_dtype(self) -> np.dtype:
        """The smallest integer type that holds every id: ``uint8`` for up to 256 characters,
        ``uint16`` up to 65,536, ``int32`` beyond."""
        n = len(self.chars)
        return np.dtype(np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.int32)

    def encode(self, text: str, out: np.ndarray | None = None) -> np.ndarray:
        """Text -> one array of ids in :attr:`id_dtype` (a fourth of ``int32``'s memory for
        up to 256 characters), encoded a chunk at a time without a Python list of characters.
        ``out``: an array of ``len(text)`` to write into (e.g. a memory-mapped file).
        A ValueError names characters outside the vocabulary, or a lone surrogate's position."""
        ids = np.empty(len(text), self.id_dtype) if out is None else out       # (N,)
        for start in range(0, len(text), _CHUNK):
            piece = text[start : start + _CHUNK]
            if self._ascii_table is not None and piece.isascii():
                raw = piece.encode("ascii")
                if not raw.translate(None, self._ascii_known):                 # all known
                    translated = raw.translate(self._ascii_table)
                    ids[start : start + len(piece)] = np.frombuffer(translated, np.uint8)
                    continue
            codes = _code_points(piece, offset=start)                          # (n,)
            if codes.dtype == np.uint8 and len(self._ids) >= 256:              # ASCII: in range
                chunk = self._ids[codes]                                       # (n,) int32
                unknown = chunk < 0
            else:
                chunk = self._ids[np.minimum(codes, len(self._ids) - 1)]       # (n,) int32
                unknown = (chunk < 0) | (codes >= len(self._ids))
            if unknown.any():
                missing = sorted({c for c in map(chr, np.unique(codes[unknown]))}
                                 | set(self.missing(text[start + len(piece):])))
                raise ValueError(
                    f"the text has {len(missing)} character(s) outside the model's vocabulary: "
                    f"{describe_chars(missing)}; remove them or retrain the model on text that "
                    "has them"
                )
            ids[start : start + len(piece)] = chunk
        return ids

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in np.asarray(ids).ravel())

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary, sorted."""
        return [c for c in _distinct_chars(text) if c not in self.chars]

    def label(self, char: str) -> str:
        """A readable label for the UIs: ``'␣ (space)'`` for ``' '``, the character itself
        otherwise."""
        return _READABLE.get(char, char)


def describe_chars(chars, limit: int = 12) -> str:
    """``['x', '\\n']`` -> ``"'x', '\\n'"`` (repr of each, so invisible characters show)."""
    chars = list(chars)
    shown = ", ".join(repr(c) for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


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


def _code_points(text: str, offset: int = 0) -> np.ndarray:
    """(N,) code points of ``text``; a ValueError names a lone surrogate's position (``offset``:
    where ``text`` starts in the user's text)."""
    if text.isascii():                # known without a scan: one byte a character
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    # UTF-32 is one 4-byte unit per code point: a view of the encoded bytes gives all of them.
    try:
        return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    except UnicodeEncodeError as exc:
        raise ValueError(surrogate_message(text, exc.start, offset=offset)) from None


def _distinct_chars(text: str) -> list[str]:
    seen = np.zeros(0x110000, dtype=bool)                         # one flag per code point
    ascii_seen = b""
    for start in range(0, len(text), _CHUNK):
        piece = text[start : start + _CHUNK]
        if piece.isascii():
            # What is left after deleting the characters already seen: nothing, most often
            # (1 ms a megabyte; a scatter into ``seen`` took 10).
            new = piece.encode("ascii").translate(None, ascii_seen)
            if new:
                ascii_seen = bytes(sorted(set(ascii_seen) | set(new)))
        else:
            seen[_code_points(piece, offset=start)] = True
    seen[list(ascii_seen)] = True
    return [chr(c) for c in np.flatnonzero(seen)]

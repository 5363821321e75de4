"""Reading the user's text: the one reader every front end uses for files, and the one
normalisation every way in (``fit``, ``evaluate``, primes, the magics' cells and files, the CLI)
applies, so the same text gives the same model whichever way it came."""
from __future__ import annotations

import codecs
import os
from pathlib import Path

__all__ = ["check_no_surrogates", "normalize", "read_text"]


def normalize(text: str) -> str:
    """``text`` with a leading byte-order mark (U+FEFF) dropped and every line end made ``\\n``:
    Windows ``\\r\\n`` and old Mac ``\\r`` alike. A text without ``\\r`` or a BOM is returned as
    it is, at the cost of one scan (no copy), so big texts stay cheap."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def check_no_surrogates(text: str, what: str = "the text") -> None:
    """A ValueError naming the position of the first lone surrogate (U+D800-U+DFFF, half of a
    UTF-16 pair, which no UTF-8 file can hold) in ``text``; nothing when there is none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(surrogate_message(text, exc.start, what=what)) from None


def surrogate_message(text: str, position: int, *, offset: int = 0, what: str = "the text") -> str:
    """The error for the lone surrogate ``text[position]`` (``offset``: where ``text`` starts
    in the whole)."""
    return (f"{what} has a lone surrogate U+{ord(text[position]):04X} at position "
            f"{offset + position:,} "
            "(half of a UTF-16 pair, not a character): remove it, or join the pair into one "
            "character (e.g. text.encode('utf-16', 'surrogatepass').decode('utf-16'))")


def read_text(path, *, raw: bool = False) -> str:
    """The text of a UTF-8 file, normalised (see :func:`normalize`; ``raw`` keeps it exactly
    as the file has it, a BOM aside), or a ValueError that starts with the path and says what
    is wrong with it."""
    if not str(path).strip():
        raise ValueError(f"{str(path)!r} is an empty path: give the path of a text file")
    check_no_surrogates(str(path), f"the path {str(path)!r}")
    if "\x00" in str(path):
        raise ValueError(f"{str(path)!r} has a NUL character: give the path of a text file")
    p = Path(os.path.expanduser(path))
    if not p.exists():
        raise ValueError(f"{path}: no such file (relative paths start in {os.getcwd()})")
    if p.is_dir():
        raise ValueError(f"{path} is a folder: give a text file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if _looks_utf16(data):
        raise ValueError(f"{path} is UTF-16 text: save it as UTF-8 and try again")
    if b"\x00" in data:
        raise ValueError(f"{path} looks binary (it has NUL bytes): give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start:,}): convert it to UTF-8 first, e.g. "
                         "iconv -f latin1 -t utf-8") from None
    del data                                 # the bytes go before a normalised copy is made
    if not text or text.isspace():
        raise ValueError(f"{path} is empty: give a file with some text")
    return text if raw else normalize(text)


def _looks_utf16(data: bytes, probe: int = 1 << 16) -> bool:
    """Whether ``data`` is UTF-16: a byte-order mark followed by text that decodes as UTF-16,
    or no mark and a NUL in every other byte of the start (ASCII text saved as UTF-16). Only
    the first ``probe`` bytes are looked at."""
    head = data[:probe]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        if len(data) % 2:
            return False
        try:
            codecs.getincrementaldecoder("utf-16")().decode(head, final=len(head) == len(data))
        except UnicodeDecodeError:
            return False
        return True
    pairs = head[: len(head) // 2 * 2]
    if len(pairs) < 4:
        return False
    even, odd = pairs[0::2], pairs[1::2]
    return even.count(0) == 0 and odd.count(0) == len(odd) or \
        odd.count(0) == 0 and even.count(0) == len(even)

"""Reading the user's text: the one reader every front end uses for files, and the one
normalisation every way in (``fit``, ``evaluate``, primes, the magics' cells and files, the CLI)
applies, so the same text gives the same model whichever way it came."""
from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path

from . import budget

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
    with budget.out_of_memory(f"reading {path}", "give a smaller file"):
        return _decoded(_read_regular_file(p, path), path, raw)


def _decoded(data: bytearray, path, raw: bool) -> str:
    """The text of a file's bytes ``data``, checked and normalised as ``read_text`` says."""
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


#: Bytes read at a time: a Ctrl-C stops a long read between two of them.
READ_CHUNK = 16 << 20

_NOT_REGULAR = ((stat.S_ISDIR, "a folder: give a text file"),
                (stat.S_ISFIFO, "a FIFO (named pipe), not a file: reading it would wait for a "
                                "writer; give a text file"),
                (stat.S_ISSOCK, "a socket, not a file: give a text file"),
                (stat.S_ISCHR, "a character device (like /dev/zero or /dev/urandom), not a "
                               "file: give a text file"),
                (stat.S_ISBLK, "a block device (a disk), not a file: give a text file"))


def _read_regular_file(p: Path, path) -> bytearray:
    """The bytes of the regular file ``p``, read ``READ_CHUNK`` at a time, or a ValueError that
    names what ``p`` is instead (a folder, a FIFO, a socket, a device: none is opened) or says
    that its text would not fit in memory (``budget.check_text_file``, before reading)."""
    try:
        info = os.stat(p)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (relative paths start in {os.getcwd()})") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None
    for test, what in _NOT_REGULAR:
        if test(info.st_mode):
            raise ValueError(f"{path} is {what}")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file: give a text file")
    budget.check_text_file(path, info.st_size)
    try:
        # O_NONBLOCK: should the path become a FIFO after the stat, opening it does not wait.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file: give a text file")
        data = bytearray(info.st_size)
        n = 0
        try:
            with memoryview(data) as view:
                while n < len(data):
                    got = f.readinto(view[n : n + READ_CHUNK])
                    if not got:
                        break
                    n += got
            del data[n:]
            # A file may hold more than its size says (those of /proc say 0) or grow as it is
            # read: what comes past the size is checked against the budget chunk by chunk.
            while more := f.read(READ_CHUNK):
                budget.check_text_file(path, len(data) + len(more))
                data += more
        except OSError as exc:
            raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return data


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

"""Reading the user's text: the one reader every front end uses for files."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_text"]


def read_text(path) -> str:
    """The text of a UTF-8 file (a BOM is dropped, Windows line ends become ``\\n``), or a
    ValueError that starts with the path and says what is wrong with it."""
    p = Path(os.path.expanduser(path))
    if not p.exists():
        raise ValueError(f"{path}: no such file (relative paths start in {os.getcwd()})")
    if p.is_dir():
        raise ValueError(f"{path} is a folder: give a text file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise ValueError(f"{path} is empty: give a file with some text")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ValueError(f"{path} is UTF-16 text: save it as UTF-8 and try again")
    if b"\x00" in data:
        raise ValueError(f"{path} looks binary (it has NUL bytes): give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start:,}): convert it to UTF-8 first, e.g. "
                         "iconv -f latin1 -t utf-8") from None
    return text.replace("\r\n", "\n")

"""Checkpoint files: safetensors tensors plus JSON metadata, written atomically.

safetensors is a plain header + raw tensor bytes format: loading it can never execute code (unlike
pickle), and the files open in PyTorch and other tools too. Writes go to a temporary file in the
same folder and are then renamed over the target, so a crash mid-save leaves the old file intact.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
_META_KEY = "charrnn_magic"


def write(path, tensors: dict[str, np.ndarray], meta: dict) -> Path:
    from safetensors.numpy import save

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder: give a file name such as model.safetensors")
    if not path.parent.exists():
        raise ValueError(f"cannot save to {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    meta = {"format_version": FORMAT_VERSION, **meta}
    blob = save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                metadata={_META_KEY: json.dumps(meta)})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read(path) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, metadata) of a checkpoint, or a ValueError that names what is wrong with it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint file at {str(path)!r}")
    data = path.read_bytes()
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as e:
        raise ValueError(f"{str(path)!r} is not a readable checkpoint (truncated or corrupt: {e})") from None
    try:
        meta = json.loads(header.get("__metadata__", {})[_META_KEY])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ValueError(f"{str(path)!r} is a safetensors file but not a charrnn_magic checkpoint "
                         "(it has no charrnn_magic metadata)") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has checkpoint format version {version!r}; this version of "
                         f"charrnn_magic reads version {FORMAT_VERSION}")
    return tensors, meta


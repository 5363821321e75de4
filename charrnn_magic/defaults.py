"""Training settings chosen from the text: what a short text cannot fill is made to fit."""
from __future__ import annotations

from .data import held_out_count
from .settings import TRAIN_DEFAULTS, default_batch_size

__all__ = ["fit_to_text"]


def fit_to_text(text: str, kw: dict, explicit: set) -> str | None:
    """Shrink default batch size / window length (in ``kw``) that a short text cannot fill.

    Presets are made for corpora of many kilobytes; a cell often holds a short poem. Settings
    given explicitly are left alone (the engine then explains what does not fit). Returns a
    note about what changed, or None.
    """
    text = text.lower() if kw.get("lower") else text
    val_fraction = kw.get("val_fraction", TRAIN_DEFAULTS["val_fraction"])
    mode = kw.get("mode", TRAIN_DEFAULTS["mode"])
    changes = []
    if mode == "stream":
        # The engine holds out the tail.
        n_train = len(text) - held_out_count(len(text), val_fraction)
        T = kw.get("seq_length", TRAIN_DEFAULTS["seq_length"])
        if "seq_length" not in explicit and 2 <= n_train - 1 < T:
            changes.append(f"window {n_train - 1} instead of {T}")
            T = kw["seq_length"] = n_train - 1
        B, most = kw.get("batch_size", default_batch_size(mode)), (n_train - 1) // T
        if "batch_size" not in explicit and B > most >= 1:
            changes.append(f"batch size {most} instead of {B}")
            kw["batch_size"] = most
    else:
        B = kw.get("batch_size", default_batch_size(mode))
        n_lines = _count_lines(text, most=4 * B + 8)      # enough to know whether B fits
        n_train = n_lines - held_out_count(n_lines, val_fraction)
        if "batch_size" not in explicit and B > n_train >= 1:
            changes.append(f"batch size {n_train} instead of {B}")
            kw["batch_size"] = n_train
    if changes:
        return f"(the text is short: {' and '.join(changes)})"
    return None


def _count_lines(text: str, most: int) -> int:
    """The non-empty lines of ``text``, counted up to a little past ``most`` (a big text is
    not split into a list of all its lines)."""
    n = pos = 0
    while pos < len(text) and n <= most:
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        n += end > pos
        pos = end + 1
    return n

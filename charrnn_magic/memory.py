"""Let a training step reuse the memory of the last one instead of faulting it in anew.

A training step allocates and frees tens of megabytes of temporaries (an LSTM 2x256 at batch 32:
about 25 MB a window). With glibc's defaults, blocks above the mmap threshold are mapped and
unmapped on every allocation, and free memory at the top of the heap is given back to the OS, so
each window page-faults most of it again: measured here 6,266 minor faults per window, a quarter
of the window's time. Raising the two thresholds keeps freed blocks in the process for the next
window (one-thread window 85 -> 63 ms; two-worker fit 13-15k -> 17-18k chars/s).

This changes the allocator for the whole process, so it is done once, when training first
starts, and only where it exists (glibc, i.e. most Linux); ``CharRNN.reuse_memory = False`` turns
it off. The price: memory freed later stays with the process for reuse rather than going back
to the OS, bounded by the largest amount the process ever had in use.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3          # from glibc's malloc.h
_MMAP_THRESHOLD = 32 * 1024 * 1024                      # glibc's largest allowed value (64-bit)
_TRIM_THRESHOLD = 1024 * 1024 * 1024

_done: bool | None = None      # None: not tried yet; then whether the thresholds were raised


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds, once per process. Returns whether they are raised
    (False where the C library is not glibc)."""
    global _done
    if _done is None:
        _done = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
            mallopt = libc.mallopt
        except (OSError, AttributeError):               # not glibc (macOS, Windows, musl)
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done

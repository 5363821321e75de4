"""Let a training step reuse the arrays of the last one instead of faulting fresh memory in.

A training step allocates tens of megabytes of temporaries (an LSTM 2x256 at batch 32: about 25 MB
a window). Allocated anew every window, glibc maps and unmaps the big blocks and hands the top of
the heap back to the OS, so every window page-faults most of it in again (measured: 2,850 minor
faults a window here, a quarter of its time before). A ``Workspace`` keeps each window's arrays by
name and gives the same ones back to the next window of the same shape, which the forward and
backward passes then fill with ``out=``. Nothing outside the network changes: the memory is the
network's, and goes back to the OS with it (or with the thread that trained it).

Only the worker child process (``second_worker.py``), which the package owns, also raises glibc's
mmap and trim thresholds (``CHILD_ALLOCATOR_ENV``), for what is left.
"""
from __future__ import annotations

import threading

import numpy as np

#: Environment of the worker child: glibc's allocator keeps freed blocks for reuse (the mmap
#: threshold at its largest allowed value on 64-bit, the trim threshold at 1 GiB). Other C
#: libraries ignore these variables. Never set in the process that imports the package.
CHILD_ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),
                       "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024)}


class Workspace:
    """Arrays by name, reused while the name is asked for with the same shape and dtype.

    ``empty`` gives an array whose content is whatever the last user left in it: every caller
    writes all of it before reading. With ``keep=False`` every call allocates afresh (for
    evaluation, whose shapes differ from training's and would only be held on to).
    """

    def __init__(self, keep: bool = True):
        self.keep = keep
        self._arrays: dict[str, np.ndarray] = {}

    def empty(self, name: str, shape: tuple, dtype) -> np.ndarray:
        shape = tuple(shape)
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype)
            if self.keep:
                self._arrays[name] = a
        return a

    def zeros(self, name: str, shape: tuple, dtype) -> np.ndarray:
        a = self.empty(name, shape, dtype)
        a.fill(0)
        return a

    @property
    def nbytes(self) -> int:
        """Bytes held for reuse."""
        return sum(a.nbytes for a in self._arrays.values())


FRESH = Workspace(keep=False)       # allocates every time, holds nothing


class PerThread(threading.local):
    """One ``Workspace`` per thread, so that two threads using one network (training in the
    background while a cell evaluates it, or the two halves of a batch) never share an array;
    a thread's workspace goes when the thread ends."""

    def __init__(self):
        self.workspace = Workspace()

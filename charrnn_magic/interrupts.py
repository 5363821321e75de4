"""Ctrl-C during training: the first one ends the run after the current step."""
from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def interrupt_between_steps():
    """In the main thread, make the first Ctrl-C (or a kernel interrupt) end training after the
    current step instead of in the middle of a weight update; a second Ctrl-C interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)

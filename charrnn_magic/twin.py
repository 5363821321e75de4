"""The second half of each training batch, computed in a process of its own.

Two threads computing the halves of a batch share one GIL: NumPy hands it over at every call, and
in the short element-wise calls of a recurrent step each thread keeps waiting for the other. For an
LSTM 2x256 window at batch 32 two threads took 43-55 ms here, two processes 38-40 ms. So the twin
network runs in a child process (``python -m charrnn_magic.twin``): the weights go to it and the
gradient comes back through shared memory, the window's inputs and its loss through a pipe.

A child is started once per network and kept for the next ``fit``; it ends with the network, or
with this process (its pipe closes). It runs in a session of its own, so a Ctrl-C in a terminal
reaches only this process, which ends training between steps as usual. Where no child can be
started (no ``fork``/``exec``, Windows) training falls back to a thread (``ThreadTwin``).
"""
from __future__ import annotations

import mmap
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
import weakref
from pathlib import Path

import numpy as np


class ThreadTwin:
    """The twin as a replica of the network (shared weights, its own gradient) run by a thread."""

    def __init__(self, net, pool):
        self.net, self.pool = net.replica(), pool
        self.grad = self.net.grad
        self._pending = None

    def start(self, weights, X, Y, mask, state, seed) -> None:
        rng = None if seed is None else np.random.default_rng(seed)
        self._pending = self.pool.submit(self.net.loss, X, Y, mask, state, rng)

    def finish(self):
        """(loss, state at the end of the window) of the half given to ``start``."""
        return self._pending.result()


class TwinProcess:
    """The parent's end: a child process holding a network of the same shape."""

    def __init__(self, net, reuse_memory: bool):
        n, dtype = net.size, net.dtype
        fd = _anonymous_file(2 * n * dtype.itemsize)
        try:
            self._buffer = mmap.mmap(fd, 2 * n * dtype.itemsize)
            env = dict(os.environ)
            # The child imports this very copy of the package, installed or not.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                              env.get("PYTHONPATH")]))
            self.process = subprocess.Popen(
                [sys.executable, "-m", "charrnn_magic.twin", str(fd)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, pass_fds=(fd,), start_new_session=True, env=env)
        finally:
            os.close(fd)
        self.weights = np.frombuffer(self._buffer, dtype, n)                    # parent -> child
        self.grad = np.frombuffer(self._buffer, dtype, n, offset=n * dtype.itemsize)  # child -> parent
        self._send(dict(cell=net.cell_name, vocab_size=net.vocab_size, hidden_size=net.hidden_size,
                        layers=len(net.cells), dropout=net.dropout, dtype=dtype.name,
                        reuse_memory=reuse_memory))

    def start(self, weights, X, Y, mask, state, seed) -> None:
        self.weights[:] = weights
        self._send((X, Y, mask, state, seed))

    def finish(self):
        try:
            ok, value = pickle.load(self.process.stdout)
        except (EOFError, OSError):
            code = self.process.wait()
            raise RuntimeError(f"the second training worker (a child process) stopped with exit code {code}; "
                               "set CharRNN.worker_process = False to use a thread instead") from None
        except BaseException:           # e.g. a second Ctrl-C with a reply half read: start afresh
            self.close(kill=True)
            raise
        if not ok:
            raise value
        return value

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        _stop(self.process)

    def _send(self, message) -> None:
        try:
            pickle.dump(message, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass            # the child is gone: finish() says so


_twins: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # network -> its TwinProcess
_warned = False


def twin_process(net, reuse_memory: bool = True) -> TwinProcess | None:
    """The network's child process, started on first use and kept while the network lives;
    None (after one warning) where no child process can be started."""
    global _warned
    twin = _twins.get(net)
    if twin is not None and twin.alive():
        return twin
    try:
        twin = TwinProcess(net, reuse_memory)
    except Exception as exc:  # noqa: BLE001  (any reason at all: training goes on in a thread)
        if not _warned:
            warnings.warn(f"charrnn_magic: could not start a second training process ({exc}); "
                          "using a thread instead", RuntimeWarning, stacklevel=3)
            _warned = True
        return None
    _twins[net] = twin
    weakref.finalize(net, _stop, twin.process)
    return twin


def _stop(process) -> None:
    """End a child: close its pipe (it exits at end of input), kill it if it does not."""
    if process.poll() is None:
        try:
            process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()


def _anonymous_file(nbytes: int) -> int:
    """A file descriptor of ``nbytes`` of memory to share with a child: memfd on Linux (never
    written to disk), an unlinked temporary file elsewhere."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("charrnn-twin")
    else:
        fd, path = tempfile.mkstemp(prefix="charrnn-twin-")
        os.unlink(path)
    os.ftruncate(fd, nbytes)
    return fd


def _serve(fd: int) -> None:
    """The child's end: build the network, then compute one half-window per message until the
    pipe closes."""
    from .memory import keep_freed_memory
    from .model import Network

    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                       # a stray print must not corrupt the replies
    spec = pickle.load(requests)
    if spec.pop("reuse_memory"):
        keep_freed_memory()
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)            # one core for this half; the parent has the other
    except ImportError:
        pass
    net = Network(**spec)
    n, itemsize = net.size, net.dtype.itemsize
    buffer = mmap.mmap(fd, 2 * n * itemsize)
    net.rebind(flat=np.frombuffer(buffer, net.dtype, n),
               grad=np.frombuffer(buffer, net.dtype, n, offset=n * itemsize))
    while True:
        try:
            X, Y, mask, state, seed = pickle.load(requests)
        except EOFError:
            return
        rng = None if seed is None else np.random.default_rng(seed)
        try:
            reply = (True, net.loss(X, Y, mask, state, rng))
        except Exception as exc:  # noqa: BLE001  (sent back and raised in the parent)
            reply = (False, exc)
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))

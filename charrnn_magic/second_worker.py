"""The second half of each training batch, computed in a process of its own.

Two threads computing the halves of a batch share one GIL: NumPy hands it over at every call, and
in the short element-wise calls of a recurrent step each thread keeps waiting for the other (the
timings are in benchmarks/README.md). So the second worker's network runs in a child process:
the weights go to it and the gradient comes back through shared memory (a memfd), the window's
inputs and its loss through a socket pair (``multiprocessing``'s ``Connection``). The child is
the same Python with this process's ``sys.path`` (set before it imports the package, as
``multiprocessing``'s spawn does), and with glibc's allocator told to keep freed memory
(``workspace.CHILD_ALLOCATOR_ENV``): the child is the package's own process, so this changes
nothing of the user's.

Why not ``multiprocessing``'s spawn context and ``shared_memory``: spawn re-imports the user's
main script in the child, so a script that trains without an ``if __name__ == "__main__"`` guard
would run again there and fail; its startup is no faster, and the per-window traffic would be the
same socket and shared pages (see benchmarks/README.md).

A child is started once per network and kept for the next ``fit``; it ends with the network, with
this process (its socket closes), or by itself after ``IDLE_SECONDS`` without work (as joblib's
workers do), and the next window starts a new one. It runs in a session of its own, so a Ctrl-C in
a terminal reaches only this process, which ends training between steps as usual. Where no child
can start (Windows, a sandbox without ``exec``) training falls back to a thread (``ThreadWorker``).
When the child dies during training (killed, out of memory), the step it was computing is redone
in this process and training goes on with one worker, after a one-line warning.
"""
from __future__ import annotations

import mmap
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import warnings
import weakref

import numpy as np

from .workspace import CHILD_ALLOCATOR_ENV

IDLE_SECONDS = 300.0        # an idle child ends itself after this long

# Run by the child: this process's sys.path first (argv[3:]), then the package.
_BOOTSTRAP = ("import sys; sys.path[:] = sys.argv[3:]; "
              "from charrnn_magic.second_worker import _main; _main()")


class WorkerGone(RuntimeError):
    """The child process stopped in the middle of training."""


class ThreadWorker:
    """The second worker as a replica of the network (shared weights, its own gradient), run by
    a thread."""

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

    def usable(self) -> bool:
        return True


class ChildWorker:
    """The parent's end: a child process holding a network of the same shape."""

    def __init__(self, net):
        n, dtype = net.size, net.dtype
        memory = _anonymous_file(2 * n * dtype.itemsize)
        self.conn, theirs = multiprocessing.Pipe()
        try:
            self._buffer = mmap.mmap(memory, 2 * n * dtype.itemsize)
            # The child imports this very copy of the package, installed or not, from this
            # process's own sys.path (in this process's order: site-packages after the stdlib).
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(memory), str(theirs.fileno()),
                 *(p for p in sys.path if isinstance(p, str))],
                stdin=subprocess.DEVNULL, pass_fds=(memory, theirs.fileno()),
                start_new_session=True, env={**os.environ, **CHILD_ALLOCATOR_ENV})
        except BaseException:
            self.conn.close()
            raise
        finally:
            os.close(memory)
            theirs.close()
        self.weights = np.frombuffer(self._buffer, dtype, n)                    # parent -> child
        # child -> parent
        self.grad = np.frombuffer(self._buffer, dtype, n, offset=n * dtype.itemsize)
        self.idle_seconds = IDLE_SECONDS
        self.last_used = time.monotonic()
        self._send(dict(cell=net.cell_name, vocab_size=net.vocab_size, hidden_size=net.hidden_size,
                        layers=len(net.cells), dropout=net.dropout, dtype=dtype.name,
                        idle_seconds=self.idle_seconds))
        # Wait for the child to be ready, so that one which cannot start is found out here, where
        # training can still fall back to a thread, and not in the middle of a step.
        #: What the child said when ready: its ``pid`` and ``sys_path``.
        self.started: dict = {}
        try:
            if self.conn.poll(60):
                self.started = self.conn.recv()
        except (EOFError, OSError):
            pass
        if not self.started:
            self.close(kill=True)
            raise RuntimeError(f"the child process did not start (exit code {self.process.poll()})")

    def start(self, weights, X, Y, mask, state, seed) -> None:
        self.weights[:] = weights
        self._send((X, Y, mask, state, seed))

    def finish(self):
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            code = self.process.wait()
            self.close()
            raise WorkerGone("the second training worker (a child process) stopped with exit code "
                             f"{code}") from None
        except BaseException:           # e.g. a second Ctrl-C with a reply half read: start afresh
            self.close(kill=True)
            raise
        self.last_used = time.monotonic()
        if not ok:
            raise value
        return value

    def usable(self) -> bool:
        """Running, and not about to end itself for idleness (a tenth of the idle time to spare)."""
        fresh = time.monotonic() - self.last_used < 0.9 * self.idle_seconds
        return fresh and self.process.poll() is None

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        _stop(self.process, self.conn)

    def _send(self, message) -> None:
        try:
            self.conn.send(message)
        except OSError:
            pass            # the child is gone: finish() says so


_children: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # network -> its ChildWorker
_warned = False


def child_worker(net) -> ChildWorker | None:
    """The network's child process, started on first use and kept while the network lives and
    the child is not idling out; None (after one warning) where no child process can start."""
    global _warned
    child = _children.get(net)
    if child is not None:
        # In a forked copy of this process the child is not its own: poll() says it has gone, and
        # closing our copy of its socket leaves the parent's untouched (tested).
        if child.usable():
            return child
        child.close()
    try:
        child = ChildWorker(net)
    except Exception as exc:  # noqa: BLE001  (any reason at all: training goes on in a thread)
        if not _warned:
            warnings.warn(f"charrnn_magic: could not start a second training process ({exc}); "
                          "using a thread instead", RuntimeWarning, stacklevel=3)
            _warned = True
        return None
    _children[net] = child
    weakref.finalize(net, _stop, child.process, child.conn)
    return child


def _stop(process, conn) -> None:
    """End a child: close its socket (it exits at end of input), kill it if it does not."""
    conn.close()
    if process.poll() is None:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _anonymous_file(nbytes: int) -> int:
    """A file descriptor of ``nbytes`` of memory to share with a child: memfd on Linux (never
    written to disk), an unlinked temporary file elsewhere."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("charrnn-worker")
    else:
        fd, path = tempfile.mkstemp(prefix="charrnn-worker-")
        os.unlink(path)
    os.ftruncate(fd, nbytes)
    return fd


def _serve(memory: int, conn) -> None:
    """The child's end: build the network, then compute one half-window per message until the
    socket closes or stays silent for the idle time."""
    from .network import Network

    spec = conn.recv()
    idle_seconds = spec.pop("idle_seconds")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)            # one core for this half; the parent has the other
    except ImportError:
        pass
    net = Network(**spec)
    n, itemsize = net.size, net.dtype.itemsize
    buffer = mmap.mmap(memory, 2 * n * itemsize)
    net.rebind(flat=np.frombuffer(buffer, net.dtype, n),
               grad=np.frombuffer(buffer, net.dtype, n, offset=n * itemsize))
    conn.send({"pid": os.getpid(), "sys_path": list(sys.path)})
    while conn.poll(idle_seconds):      # False after idle_seconds: the parent starts a new child
        try:
            X, Y, mask, state, seed = conn.recv()
        except (EOFError, OSError):     # the parent is gone (killed): end quietly
            return
        rng = None if seed is None else np.random.default_rng(seed)
        try:
            reply = (True, net.loss(X, Y, mask, state, rng))
        except Exception as exc:  # noqa: BLE001  (sent back and raised in the parent)
            reply = (False, exc)
        try:
            conn.send(reply)
        except OSError:                 # the parent is gone (killed mid-window): end quietly
            return


def _main() -> None:
    """The child's entry point (see ``_BOOTSTRAP``): argv is the memory's and the socket's fds."""
    from multiprocessing.connection import Connection

    _serve(int(sys.argv[1]), Connection(int(sys.argv[2])))

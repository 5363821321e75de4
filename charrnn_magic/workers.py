"""Where training computes its batches: how many workers share each batch (``Workers``), and a
batch computed as two halves side by side (``HalvesInParallel``, with the second worker of
``second_worker.py``)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class Workers:
    """How many workers share each training batch (the ``CharRNN`` knobs of the same names).

    ``requested``: 1 or 2, or None to decide by size: two when one step's recurrent products
    (batch x hidden x gates*hidden x layers multiply-adds) reach ``from_macs`` with the second
    worker in a child process (``process``, POSIX only), or ``thread_from_macs`` with it in a
    thread, and the machine has two cores.
    """

    requested: int | None
    process: bool
    from_macs: int
    thread_from_macs: int

    def count(self, net, batch_size: int) -> int:
        if self.requested is not None:
            return self.requested if batch_size >= 2 else 1
        H = net.hidden_size
        macs = batch_size * H * net.cells[0].gates * H * len(net.cells)
        if hasattr(os, "sched_getaffinity"):
            cores = len(os.sched_getaffinity(0))
        else:
            cores = os.cpu_count() or 1
        process = self.process and os.name == "posix"
        threshold = self.from_macs if process else self.thread_from_macs
        return 2 if batch_size >= 2 and cores >= 2 and macs >= threshold else 1


class HalvesInParallel:
    """The loss and gradients of a batch computed as two halves side by side: the first half by a
    second worker holding a network of the same shape, in a child process (``second_worker.py``;
    or in a thread where no process can start), the second half in the calling thread.

    Each half runs with single-threaded BLAS on a core of its own. The halves meet once per
    window, not once per matrix product as BLAS threads do, so when the other core is busy a
    step only loses the overlap instead of stalling as OpenBLAS threads do (the figures are in
    benchmarks/README.md).

    If the child process dies during training, the half it was computing is redone here and the
    rest of the run uses one worker (``workers``), after a warning; the next ``fit`` starts a new
    child.
    """

    def __init__(self, net, process: bool = True):
        from concurrent.futures import ThreadPoolExecutor

        from .second_worker import ThreadWorker, child_worker

        self.net = net
        self.workers = 2
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="charrnn-half-batch")
        self._new_worker = lambda: (process and child_worker(net)) or ThreadWorker(net, self.pool)
        self.second = self._new_worker()
        middle = net.size // 2
        self.parts = (slice(0, middle), slice(middle, net.size))

    def split(self, update) -> None:
        """Run ``update(part)`` for the two halves of the flat weight range, one per thread: the
        gradient merge and the optimiser step are element-wise, and took a noticeable share of a
        big window on one core (figures in ``benchmarks/README.md``)."""
        pending = self.pool.submit(update, self.parts[0])
        update(self.parts[1])
        pending.result()

    def loss(self, X, Y, mask, state, rng=None):
        from .second_worker import ThreadWorker, WorkerGone

        if self.workers == 1:
            return self.net.loss(X, Y, mask, state, rng)
        B = X.shape[1]
        b = B // 2
        first, second = slice(0, b), slice(b, B)

        def half(part):
            return (np.ascontiguousarray(X[:, part]), np.ascontiguousarray(Y[:, part]),
                    None if mask is None else mask[:, part],
                    [tuple(a[part] for a in layer) for layer in state])

        # Each half draws its own dropout masks from a generator seeded from the training
        # generator, so a run stays reproducible.
        seeds = [None, None] if rng is None else [int(s) for s in rng.integers(2**63, size=2)]
        # a child that idled out (a long pause in a callback)
        if not self.second.usable():
            self.second = self._new_worker()
        self.second.start(self.net.flat, *half(first), seeds[0])
        try:
            loss_b, state_b = self.net.loss(
                *half(second), None if rng is None else np.random.default_rng(seeds[1]))
        finally:
            try:
                loss_a, state_a = self.second.finish()  # collected even on error: no stale reply
            except WorkerGone as gone:
                warnings.warn(f"charrnn_magic: {gone}; training goes on with one worker",
                              RuntimeWarning, stacklevel=2)
                self.workers = 1
                self.second = ThreadWorker(self.net, self.pool)     # redo its half here
                self.second.start(self.net.flat, *half(first), seeds[0])
                loss_a, state_a = self.second.finish()

        def merge(part):
            # Each half's gradient is averaged over its own sequences; weight them back to the
            # batch. The second worker's buffer is rewritten by its next window, so it can be
            # scaled here.
            grad, other = self.net.grad[part], self.second.grad[part]
            grad *= (B - b) / B
            other *= b / B
            grad += other

        self.split(merge)
        new_state = [tuple(np.concatenate(pair) for pair in zip(sa, sb, strict=True))
                     for sa, sb in zip(state_a, state_b, strict=True)]
        return loss_a + loss_b, new_state

    def close(self):
        self.pool.shutdown(wait=True)


def where_training_runs(workers: int, worker_process: bool) -> str:
    """Where ``run`` computes a batch, in words, for ``workers`` as ``CharRNN`` decides them (the
    same decision training uses) and the ``worker_process`` setting."""
    if workers == 1:
        return "1 worker (this process)"
    if worker_process and os.name == "posix":
        second = "a child process"
    else:
        second = "a second thread"
    return f"2 workers: this process and {second} (CharRNN.workers = 1 to use one core)"

"""How many BLAS threads the engine's matrix products use.

``blas_threads(n)`` is a context that limits BLAS to ``n`` threads while it is open. Training and
evaluation use ``CharRNN.blas_threads`` (one by default: why, and the figures, are in
``benchmarks/README.md``); sampling always uses one.
"""
from __future__ import annotations

__all__ = ["blas_threads"]

_controller = None


def blas_threads(n: int):
    """A context that limits BLAS to ``n`` threads (threadpoolctl; its controller is created once,
    because inspecting the loaded libraries is the slow part)."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")

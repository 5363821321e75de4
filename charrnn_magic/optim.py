"""Optimisers and gradient clipping, working on the network's one flat weight array.

Because every weight is a view into one array, each optimiser step is a few whole-array
operations, whatever the number of layers. Optimiser state is a dict of flat arrays (saved in
checkpoints) plus a step counter.
"""
from __future__ import annotations

import numpy as np

DEFAULT_LR = {"adagrad": 0.1, "adam": 0.002, "sgd": 0.1}


def clip_(grad: np.ndarray, clip: float, mode: str) -> None:
    """Clip in place: each element to [-clip, clip] (``"value"``, the classic) or the whole
    gradient to norm ``clip`` (``"norm"``). ``clip`` 0 disables."""
    if not clip:
        return
    if mode == "value":
        np.clip(grad, -clip, clip, out=grad)
    else:
        norm = float(np.sqrt(grad @ grad))
        if norm > clip:
            grad *= clip / norm


class Optimizer:
    name = ""

    def __init__(self, size: int, dtype, lr: float):
        self.lr = lr
        self.t = 0
        self.state: dict[str, np.ndarray] = {k: np.zeros(size, dtype) for k in self.slots}
        self._tmp = np.empty(size, dtype)

    slots: tuple = ()

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError


class Adagrad(Optimizer):
    """Per-weight step lr / sqrt(sum of squared gradients), as in min-char-rnn."""

    name, slots = "adagrad", ("sum_sq",)

    def step(self, params, grad):
        self.t += 1
        mem, tmp = self.state["sum_sq"], self._tmp
        np.multiply(grad, grad, out=tmp)
        mem += tmp
        np.add(mem, 1e-8, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(grad, tmp, out=tmp)
        tmp *= self.lr
        params -= tmp


class Adam(Optimizer):
    """Adam (β1 0.9, β2 0.999) with bias correction."""

    name, slots = "adam", ("m", "v")
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def step(self, params, grad):
        self.t += 1
        m, v, tmp = self.state["m"], self.state["v"], self._tmp
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - self.beta2
        v += tmp
        # lr_t folds both bias corrections into one scalar.
        lr_t = self.lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        params -= tmp


class SGD(Optimizer):
    name = "sgd"

    def step(self, params, grad):
        self.t += 1
        np.multiply(grad, self.lr, out=self._tmp)
        params -= self._tmp


OPTIMIZERS = {cls.name: cls for cls in (Adagrad, Adam, SGD)}

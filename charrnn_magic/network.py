"""The network: an embedding lookup, a stack of recurrent layers and a softmax head.

All weights live in one flat array (``Network.flat``) and all gradients in another of the same
layout (``Network.grad``); each named weight is a view into it. The optimiser then updates every
weight with a few whole-array operations, a snapshot for the sampler is one ``copy()``, and a
checkpoint is one tensor per weight without any copying.

A training window's arrays come from the network's workspace (``workspace.Workspace``, one per
thread) and are reused by the next window of the same shape; evaluation allocates its own.

Shapes: T steps, B sequences, V vocabulary size, H hidden units, G = gates·H.
"""
from __future__ import annotations

import copy

import numpy as np

from . import budget
from .cells import CELLS
from .workspace import FRESH, PerThread, Workspace

#: The types a network's weights can have (``CharRNN(dtype=...)``); the first is the default.
DTYPES = ("float32", "float64")

#: The spread of a gated network's first embedding table: a character then adds to the gates
#: about as much as a typical hidden state does, as in an nn.Embedding -> nn.LSTM model, rather
#: than the 1/√H of a one-hot input. Held out on tinyshakespeare after 800 steps (Adam 0.004,
#: batch 32, window 50): LSTM 2x256 1.846 -> 1.706, GRU 2x128 1.740 -> 1.705.
TABLE_STD = 0.3


class Network:
    def __init__(self, cell: str, vocab_size: int, hidden_size: int, layers: int,
                 dropout: float = 0.0, dtype="float32"):
        self.cell_name = cell
        self.cells = [CELLS[cell](hidden_size) for _ in range(layers)]
        self.vocab_size, self.hidden_size, self.dropout = vocab_size, hidden_size, dropout
        self.dtype = np.dtype(dtype)
        V, H = vocab_size, hidden_size
        self.shapes: dict[str, tuple] = {}
        for l, c in enumerate(self.cells):
            G = c.gates * H
            # Layer 0's input weights are an embedding table: row v is what character v adds to
            # the gates, exactly what a one-hot vector times a weight matrix would give.
            self.shapes[f"l{l}.Wx"] = (V if l == 0 else H, G)
            self.shapes[f"l{l}.Wh"] = (H, G)
            self.shapes[f"l{l}.b"] = (G,)
            for name, shape in c.extra_params().items():
                self.shapes[f"l{l}.{name}"] = shape
        self.shapes["Wy"] = (H, V)
        self.shapes["by"] = (V,)
        self.size = sum(int(np.prod(s)) for s in self.shapes.values())
        budget.check_architecture(cell, H, layers, self.dtype.itemsize, self.dtype.name, V, 2)
        self._workspaces = PerThread()
        self.rebind(np.zeros(self.size, self.dtype), np.zeros(self.size, self.dtype))

    def rebind(self, flat: np.ndarray | None = None, grad: np.ndarray | None = None) -> None:
        """Make ``flat`` (weights) and/or ``grad`` this network's arrays, with every named view
        into them: e.g. arrays in memory shared with another process (see ``second_worker.py``)."""
        if flat is not None:
            self.flat = flat
            self.params = self.views(flat)
            self._layer_params = [self._per_layer(self.params, l) for l in range(len(self.cells))]
        if grad is not None:
            self.grad = grad
            self.grads = self.views(grad)
            self._layer_grads = [self._per_layer(self.grads, l) for l in range(len(self.cells))]

    def replica(self) -> "Network":
        """A network sharing this one's weights (the same flat array) with a gradient buffer of
        its own, to compute the gradient of part of a batch in another thread."""
        other = copy.copy(self)
        other._workspaces = PerThread()
        other.rebind(grad=np.zeros_like(self.grad))
        return other

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into a flat array of this network's layout."""
        out, offset = {}, 0
        for name, shape in self.shapes.items():
            n = int(np.prod(shape))
            out[name] = flat[offset : offset + n].reshape(shape)
            offset += n
        return out

    def layer_params(self, params: dict, l: int) -> dict:
        return self._per_layer(params, l)

    @staticmethod
    def _per_layer(params: dict, l: int) -> dict:
        prefix = f"l{l}."
        return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}

    @property
    def workspace(self) -> Workspace:
        """The calling thread's arrays reused from one training window to the next."""
        return self._workspaces.workspace

    @staticmethod
    def project(l: int, below: np.ndarray, p: dict, ws: Workspace = FRESH) -> np.ndarray:
        """The input term of layer ``l`` for every step at once, bias included, (T, B, G): an
        embedding lookup of the (T, B) ids for layer 0, one matrix product of the (T, B, H)
        outputs of the layer below otherwise. ``p``: the layer's weights."""
        Wx, b = p["Wx"], p["b"]
        if l == 0:
            table = np.add(Wx, b, out=ws.empty(f"l{l}.table", Wx.shape, Wx.dtype))     # (V,G)
            # mode="clip": ids are in range, and "raise" would buffer ``out`` (slower).
            return np.take(table, below, axis=0, mode="clip",
                           out=ws.empty(f"l{l}.XW", (*below.shape, Wx.shape[1]), Wx.dtype))
        T, B, H = below.shape
        XW = np.matmul(below.reshape(T * B, H), Wx,
                       out=ws.empty(f"l{l}.XW", (T * B, Wx.shape[1]), Wx.dtype)).reshape(T, B, -1)
        XW += b
        return XW

    def init_weights(self, rng: np.random.Generator) -> None:
        """The classic RNN starts from N(0, 0.01²) weights as min-char-rnn does; the gated cells
        from U(-1/√H, 1/√H) with the LSTM's forget-gate bias at 1 so that it remembers at first,
        and their embedding table (layer 0's ``Wx``) from N(0, ``TABLE_STD``²)."""
        H = self.hidden_size
        for name, view in self.params.items():
            is_bias = name.endswith(("b", "bhn", "by"))
            if is_bias:
                view[...] = 0.0
            elif self.cell_name == "rnn":
                # Drawn in float64, then cast.
                view[...] = rng.standard_normal(view.shape) * 0.01
            elif name == "l0.Wx":
                view[...] = rng.standard_normal(view.shape) * TABLE_STD
            else:
                k = 1.0 / np.sqrt(H)
                view[...] = rng.uniform(-k, k, view.shape)
        if self.cell_name == "lstm":
            for l in range(len(self.cells)):
                self.params[f"l{l}.b"][H : 2 * H] = 1.0

    def initial_state(self, batch: int) -> list[tuple]:
        H = self.hidden_size
        return [tuple(np.zeros((batch, H), self.dtype) for _ in range(c.state_size))
                for c in self.cells]

    def loss(self, X, Y, mask, state, rng=None, grads: bool = True):
        """Summed cross-entropy of a window, and (when ``grads``) the gradients into ``self.grad``.

        X, Y: (T, B) input and target ids. mask: (T, B) 1 for real characters, 0 for padding, or
        None.
        state: per layer, the tuple of (B, H) arrays the window starts from. rng draws the dropout
        masks (None: no dropout). Returns (summed loss in nats, state at the end of the window).
        The gradients are those of summed-over-time, averaged-over-batch loss, which for one
        sequence is the classic min-char-rnn objective.
        """
        T, B = X.shape
        H, V = self.hidden_size, self.vocab_size
        dropout = self.dropout if rng is not None else 0.0
        ws = self.workspace if grads else FRESH      # evaluation's shapes would only be held on to
        dtype = self.dtype
        caches, new_state = [], []
        inputs = None                                     # (T,B,H) output of the layer below
        for l, cell in enumerate(self.cells):
            p = self._layer_params[l]
            XW = self.project(l, X if l == 0 else inputs, p, ws)      # (T,B,G)
            outputs, last, cache = cell.forward(XW, state[l], p, ws, f"l{l}.")
            new_state.append(last)
            keep = None
            if dropout:
                # Inverted dropout on each layer's output (the input of the next layer or the head).
                draws = ws.empty(f"l{l}.draws", (T, B, H), np.float32)
                rng.random(dtype=np.float32, out=draws)
                kept = np.greater_equal(draws, dropout, out=ws.empty(f"l{l}.kept", (T, B, H), bool))
                keep = ws.empty(f"l{l}.keep", (T, B, H), dtype)
                keep[...] = kept
                keep /= 1.0 - dropout
                dropped = ws.empty(f"l{l}.dropped", (T, B, H), dtype)
                outputs = np.multiply(outputs, keep, out=dropped)
            caches.append((inputs, cache, keep))
            inputs = outputs

        top = inputs.reshape(T * B, H)
        logits = np.matmul(top, self.params["Wy"], out=ws.empty("logits", (T * B, V), dtype))
        logits += self.params["by"]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits, out=ws.empty("probs", (T * B, V), dtype))
        total = probs.sum(axis=1)                                      # (T·B,)
        rows, targets = np.arange(T * B), Y.ravel()
        log_p = logits[rows, targets] - np.log(total)                 # (T·B,) log p(target)
        weights = None if mask is None else mask.ravel().astype(self.dtype)
        loss = -float(log_p.sum() if weights is None else log_p @ weights)
        if not grads:
            return loss, new_state

        # Backward: d(loss)/d(logits) = softmax - onehot(target), masked, averaged over the batch.
        dlogits = probs
        dlogits /= total[:, None]
        dlogits[rows, targets] -= 1.0
        dlogits *= (1.0 / B) if weights is None else (weights / B)[:, None]
        g = self.grads
        np.matmul(top.T, dlogits, out=g["Wy"])
        np.sum(dlogits, axis=0, out=g["by"])
        top_layer = len(self.cells) - 1
        dH = np.matmul(dlogits, self.params["Wy"].T,
                       out=ws.empty(f"l{top_layer}.dH", (T * B, H), dtype)).reshape(T, B, H)
        for l in range(top_layer, -1, -1):
            cell, p, gl = self.cells[l], self._layer_params[l], self._layer_grads[l]
            inputs, cache, keep = caches[l]
            if keep is not None:
                dH *= keep
            # The backward's arrays are free again once the layer is done: one set for all.
            dXW = cell.backward(dH, cache, p, gl, ws, "backward.")    # (T,B,G)
            dXW2 = dXW.reshape(T * B, -1)
            np.sum(dXW2, axis=0, out=gl["b"])
            if l == 0:
                scatter_add_rows(gl["Wx"], X.ravel(), dXW2, ws)
            else:
                np.matmul(inputs.reshape(T * B, H).T, dXW2, out=gl["Wx"])
                dH = np.matmul(dXW2, p["Wx"].T,
                               out=ws.empty(f"l{l - 1}.dH", (T * B, H), dtype)).reshape(T, B, H)
        return loss, new_state


def scatter_add_rows(out: np.ndarray, ids: np.ndarray, rows: np.ndarray,
                     ws: Workspace = FRESH) -> None:
    """out[v] = sum of rows[i] where ids[i] == v (the embedding gradient), as one GEMM with a
    one-hot matrix: faster than np.add.at and than sort + np.add.reduceat or cumsum segment sums,
    despite the V·N·G products (the timings are in benchmarks/README.md)."""
    onehot = ws.zeros("onehot", (len(ids), out.shape[0]), out.dtype)       # (N, V)
    onehot[np.arange(len(ids)), ids] = 1.0
    np.matmul(onehot.T, rows, out=out)

"""Look inside a model: every unit's value at every character of a text (``model.trace(text)``).

::

    >>> tr = model.trace("He said “no” (twice).")
    >>> tr.state(0, "h").shape          # (T, H): layer 0's hidden state after each character
    >>> tr.unit(1, "c", 17)             # (T,): cell 17 of layer 1's LSTM cell state
    >>> tr.probs[t]                     # (V,): the model's distribution of the character after t
    >>> tr.mean_loss                    # the loss of the text read as one stream (see below)

State kinds, per cell (each a (T, H) array per layer; row ``t`` is the value after reading
character ``t``):

- ``rnn``:  ``h``
- ``lstm``: ``h``, ``c`` (cell state), gates ``i`` (input), ``f`` (forget), ``o`` (output) and
  ``g`` (the tanh candidate)
- ``gru``:  ``h``, gates ``r`` (reset), ``z`` (update) and ``n`` (the tanh candidate)

The trace runs the model's own forward pass (``cells.py``) without dropout, one sequence from a
zero state, in chunks of ``chunk`` characters with the state carried from one chunk to the next:
a chunked trace equals an unchunked one.

The trace's loss and evaluate's
-------------------------------
"The loss of a text" has two meanings here, and each function says which it is.
``trace.mean_loss`` is the mean of ``trace.loss``, the loss of each character after the first,
predicted from all the characters before it: the text as one stream. ``model.evaluate`` is the
measure validation uses (so it compares with ``history.val_loss``): the same for a stream-mode
model as long as the text has at most 2,000 characters, but a longer text is cut into up to
64 streams evaluated side by side, each starting from a zero state, so each stream's first
characters are predicted with less context and its mean is slightly higher. A lines-mode model's
``evaluate`` starts every line from a zero state; the trace does not.

Memory
------
Each kept state costs ``T x H`` numbers of the model's dtype; the probabilities ``T x V``. Keep
only what you need with ``layers`` and ``states``; texts longer than ``max_chars`` are refused
(with a ValueError naming the option to raise) instead of filling the memory.
"""
from __future__ import annotations

import math

import numpy as np

from . import budget
from .blas_threads import blas_threads
from .vocab import describe_chars

#: The state kinds each cell has, in the order traces list them.
KINDS = {"rnn": ("h",), "lstm": ("h", "c", "i", "f", "o", "g"), "gru": ("h", "r", "z", "n")}
#: The sigmoid gates of each cell (their activations lie in (0, 1)): what saturation counts.
GATES = {"rnn": (), "lstm": ("i", "f", "o"), "gru": ("r", "z")}
#: Longest text ``trace`` accepts by default: a GRU 2x256 keeps 8 KB per character (400 MB).
MAX_CHARS = 50_000
#: Characters per forward call.
CHUNK = 1024


class Trace:
    """What a model computed over a text. Attributes:

    ``text`` (str, T characters), ``ids`` ((T,) ids), ``chars`` (the vocabulary, id -> char),
    ``cell`` (``"rnn"``, ``"lstm"`` or ``"gru"``), ``hidden_size``, ``n_layers`` (of the model),
    ``layers`` (the layers kept), ``kinds`` (the state kinds kept),
    ``states`` (``{layer: {kind: (T, H) array}}``),
    ``probs`` ((T, V): row t is the distribution of the character after character t; the last
    row predicts past the end of the text; None when ``probs=False``),
    ``loss`` ((T-1,): nats of each character after the first, ``-log probs[t-1, ids[t]]``).
    """

    def __init__(self, text, ids, chars, cell, hidden_size, n_layers, states, probs, loss,
                 char_probs):
        self.text, self.ids, self.chars, self.cell = text, ids, chars, cell
        self.hidden_size, self.n_layers = hidden_size, n_layers
        self.states = states
        self.layers = tuple(states)
        self.kinds = tuple(next(iter(states.values()))) if states else ()
        self.probs = probs
        self.loss = loss
        self._char_probs = char_probs

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        kept = ", ".join(self.kinds) or "no states"
        shape = f"{self.cell} {self.n_layers}x{self.hidden_size}"
        return (f"Trace({len(self.text):,} characters, {shape}, "
                f"layers {list(self.layers)}: {kept}; mean loss {self.mean_loss:.4f})")

    @property
    def mean_loss(self) -> float:
        """Mean nats per predicted character (NaN for a one-character text), the text read as one
        stream from a zero state: each character predicted from all the characters before it.
        ``model.evaluate`` (and validation) cut a text of more than 2,000 characters into up to 64
        streams, each from a fresh state, and start each line afresh in lines mode: theirs is
        the figure to compare with ``history.val_loss``; this one is slightly lower on a long
        text, whose stream starts lose context there."""
        return float(self.loss.mean()) if len(self.loss) else math.nan

    @property
    def char_probs(self) -> np.ndarray:
        """(T,) the probability the model gave each character (NaN for the first, which has no
        prediction): a low value is a surprise."""
        return self._char_probs

    def state(self, layer: int, kind: str = "h") -> np.ndarray:
        """(T, H) one layer's values of one state kind (see the module docstring)."""
        check_layer_kind(self, layer, kind)
        return self.states[layer][kind]

    def unit(self, layer: int, kind: str, unit: int) -> np.ndarray:
        """(T,) one unit's value after each character."""
        values = self.state(layer, kind)
        if not _is_index(unit, self.hidden_size):
            raise ValueError(f"unit={unit!r} is out of range: layers have {self.hidden_size} units "
                             f"(0 to {self.hidden_size - 1})")
        return values[:, unit]

    def top(self, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k likeliest next characters after each character: ((T, k) ids, (T, k) probs),
        likeliest first."""
        if self.probs is None:
            raise ValueError("this trace kept no probabilities: trace again with probs=True")
        k = max(1, min(int(k), self.probs.shape[1]))
        part = np.argpartition(-self.probs, k - 1, axis=1)[:, :k]              # (T, k) unsorted
        p = np.take_along_axis(self.probs, part, axis=1)
        order = np.argsort(-p, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(p, order, axis=1)


def check_layer_kind(trace: Trace, layer, kind) -> None:
    """ValueError unless ``trace`` kept ``kind`` of ``layer``."""
    if not _is_index(layer, trace.n_layers):
        raise ValueError(f"layer={layer!r} is out of range: the model has {trace.n_layers} "
                         f"layer(s) (0 to {trace.n_layers - 1})")
    if layer not in trace.states:
        raise ValueError(f"layer {layer} was not traced: trace with layers=None (all) or "
                         "include it")
    if kind not in KINDS[trace.cell]:
        raise ValueError(f"state={kind!r} is not a state of a {trace.cell.upper()}: use one of "
                         f"{', '.join(KINDS[trace.cell])}")
    if kind not in trace.kinds:
        raise ValueError(f"state {kind!r} was not traced: trace with states=None (all) or "
                         "include it")


def trace(model, text: str, layers=None, states=None, *, max_chars: int = MAX_CHARS,
          chunk: int = CHUNK, probs: bool = True) -> Trace:
    """Run ``model`` over ``text`` and keep what every unit did: see the module docstring.

    ``layers``: the layers to keep (an int or a list; None: all). ``states``: the state kinds to
    keep (e.g. ``["h", "c"]``; None: all the cell has). ``max_chars``: the longest text accepted.
    ``chunk``: characters per forward call (memory of the intermediate arrays; any value gives
    the same trace). ``probs``: keep the (T, V) probabilities (the loss is always kept).
    """
    if not model.is_trained:
        raise ValueError("the model is not trained yet: call fit(text) first")
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, not {type(text).__name__}")
    if model._settings.get("lower"):
        text = text.lower()
    if not text:
        raise ValueError("the text is empty: give some text to trace")
    net, vocab = model._net, model.vocab
    n_layers = len(net.cells)
    layers = _choose_layers(layers, n_layers)
    kinds = _choose_kinds(states, model.cell)
    if len(text) > max_chars:
        per_char = len(layers) * len(kinds) * net.hidden_size + probs * net.vocab_size
        mb = per_char * net.dtype.itemsize * len(text) / 1e6
        raise ValueError(f"the text has {len(text):,} characters, more than "
                         f"max_chars={max_chars:,}: "
                         f"pass a larger max_chars (this trace needs {mb:,.0f} MB; fewer layers or "
                         "states need less) or a shorter text")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk={chunk!r} is out of range: use a whole number of at least 1")
    # The kept states and probabilities, the log-probabilities (float64), the ids and the loss.
    per_char = len(layers) * len(kinds) * net.hidden_size + probs * net.vocab_size
    budget.check_trace(len(text), per_char * net.dtype.itemsize + 8 + 8 + 8)
    missing = vocab.missing(text)
    if missing:
        raise ValueError(f"the text has character(s) outside the model's vocabulary: "
                         f"{describe_chars(missing)}; remove them or trace text the model knows")
    ids = vocab.encode(text)                                          # (T,)
    with model._lock:
        flat = net.flat.copy()
    params = net.views(flat)
    per_layer = [net.layer_params(params, l) for l in range(n_layers)]
    T, H, V, dtype = len(ids), net.hidden_size, net.vocab_size, net.dtype
    kept = {l: {k: np.empty((T, H), dtype) for k in kinds} for l in layers}
    P = np.empty((T, V), dtype) if probs else None
    log_p = np.empty(T - 1, np.float64)                               # log p(ids[t+1])
    state = net.initial_state(1)
    # One BLAS thread: these (1, H) products ran twice as fast that way on a busy machine.
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
        for s in range(0, T, chunk):
            X = ids[s : s + chunk, None]                              # (n, 1)
            n = len(X)
            below = X
            for l, cell in enumerate(net.cells):
                p = per_layer[l]
                out, last, cache = cell.forward(net.project(l, below, p), state[l], p)
                state[l] = tuple(a.copy() for a in last)              # views into the cache
                if l in kept:
                    for kind, values in _unpack(model.cell, cache, H).items():
                        if kind in kept[l]:
                            kept[l][kind][s : s + n] = values
                below = out
            logits = below[:, 0] @ params["Wy"]                       # (n, V)
            logits += params["by"]
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            total = e.sum(axis=1)                                     # (n,)
            if P is not None:
                np.divide(e, total[:, None], out=P[s : s + n])
            targets = ids[s + 1 : s + n + 1]                          # the next characters
            m = len(targets)
            log_p[s : s + m] = logits[np.arange(m), targets] - np.log(total[:m])
    loss = -log_p                                                     # (T-1,)
    char_probs = np.concatenate(([np.nan], np.exp(log_p)))            # (T,)
    return Trace(text, ids, list(vocab.chars), model.cell, H, n_layers, kept, P, loss, char_probs)


def _unpack(cell: str, cache, H: int) -> dict:
    """The (n, H) arrays of each state kind from a cell's forward cache (batch of one)."""
    if cell == "rnn":
        Hs = cache
        return {"h": Hs[1:, 0]}
    if cell == "lstm":
        A, Hs, Cs, _, _ = cache
        a = A[:, 0]
        return {"h": Hs[1:, 0], "c": Cs[1:, 0], "i": a[:, :H], "f": a[:, H : 2 * H],
                "o": a[:, 2 * H : 3 * H], "g": a[:, 3 * H :]}
    A, _, Hs = cache
    a = A[:, 0]
    return {"h": Hs[1:, 0], "r": a[:, :H], "z": a[:, H : 2 * H], "n": a[:, 2 * H :]}


def _choose_layers(layers, n_layers: int) -> list[int]:
    if layers is None:
        return list(range(n_layers))
    single = isinstance(layers, (int, np.integer)) and not isinstance(layers, bool)
    chosen = [layers] if single else list(layers)
    for l in chosen:
        if not _is_index(l, n_layers):
            raise ValueError(f"layer {l!r} is out of range: the model has {n_layers} layer(s) "
                             f"(0 to {n_layers - 1})")
    return sorted(set(int(l) for l in chosen))


def _is_index(i, n: int) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < n


def _choose_kinds(states, cell: str) -> tuple:
    if states is None:
        return KINDS[cell]
    chosen = [states] if isinstance(states, str) else list(states)
    for k in chosen:
        if k not in KINDS[cell]:
            raise ValueError(f"state {k!r} is not a state of a {cell.upper()}: use one of "
                             f"{', '.join(KINDS[cell])}")
    return tuple(k for k in KINDS[cell] if k in chosen)

"""A character n-gram model counted on a training text: the baseline to hold an RNN against.

::

    >>> from charrnn_magic.ngram import NGram
    >>> ng = NGram(train_text, n=4, vocab=model.vocab)      # the RNN's characters
    >>> ng.loss(text)                # (T-1,) nats of each character after the first
    >>> ng.loss(text) - model.trace(text).loss             # > 0 where the RNN does better
    >>> ng.distribution("the")       # (V,) the probabilities of the character after "the"

Each character is predicted from the ``n - 1`` characters before it (fewer at the start of a
text), with one of two smoothings, both giving every character of the vocabulary a probability
above 0 and probabilities that sum to 1:

- ``"witten-bell"`` (the default): interpolated Witten-Bell. For a context seen ``N`` times,
  followed by ``u`` distinct characters, ``P(c | ctx) = (count(ctx c) + u P(c | shorter ctx)) /
  (N + u)``, down to the empty context, which backs off to the uniform distribution. An unseen
  context uses the shorter one's distribution.
- ``"add-k"``: ``P(c | ctx) = (count(ctx c) + k) / (N + k V)`` with the full context only.

Counting is vectorised: each context is packed into one integer (base V), so the tables are
sorted arrays looked up with ``np.searchsorted``; ``V ** n`` has to fit into 63 bits.
"""
from __future__ import annotations

import numpy as np

from .vocab import Vocab, describe_chars

SMOOTHINGS = ("witten-bell", "add-k")


class NGram:
    """Character n-gram counts of ``text``: ``n`` (>= 1; 1 is unigram frequencies), ``vocab``
    (a ``Vocab`` or an iterable of characters; default: the text's own characters),
    ``smoothing`` (``"witten-bell"`` or ``"add-k"``) and ``k`` (for add-k)."""

    def __init__(self, text: str, n: int = 4, vocab=None, smoothing: str = "witten-bell",
                 k: float = 1.0):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n={n!r} is out of range: use a whole number of at least 1")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing={smoothing!r} is not supported: use 'witten-bell' or "
                             "'add-k'")
        if not (isinstance(k, (int, float)) and not isinstance(k, bool) and k > 0):
            raise ValueError(f"k={k!r} is out of range: use a positive number such as 1 or 0.1")
        if not isinstance(text, str) or not text:
            raise ValueError("the training text is empty: give some text to count")
        if vocab is None:
            vocab = Vocab.from_text(text)
        self.vocab = vocab if isinstance(vocab, Vocab) else Vocab(vocab)
        V = len(self.vocab)
        if n * np.log2(max(V, 2)) > 62:
            raise ValueError(f"n={n} is too large for {V} characters (V**n must fit 63 bits): "
                             "use a smaller n")
        self.n, self.smoothing, self.k, self.V = int(n), smoothing, float(k), V
        ids = self._encode(text)                                            # (N,)
        # Per context length m (0 .. n-1): sorted context keys with their counts and number of
        # distinct followers, and sorted (context, next) keys with their counts.
        self._tables = []
        for m in range(self.n):
            ctx = _context_keys(ids, m, V)[m:]                  # (N-m,) the contexts of t >= m
            full = ctx * V + ids[m:]
            full_keys, full_counts = np.unique(full, return_counts=True)
            ctx_keys, ctx_counts = np.unique(ctx, return_counts=True)
            _, followers = np.unique(full_keys // V, return_counts=True)     # ctx_keys' order
            self._tables.append((ctx_keys, ctx_counts, followers, full_keys, full_counts))

    def __repr__(self) -> str:
        return f"NGram(n={self.n}, {self.V} characters, {self.smoothing})"

    def _probs(self, ids: np.ndarray, positions: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(P, C) the probability of ``targets[i, j]`` (ids) after the characters of ``ids``
        before ``positions[i]``."""
        V = self.V
        P = np.full(targets.shape, 1.0 / V)                                 # (P, C) uniform
        if self.smoothing == "add-k":
            m_of = np.minimum(positions, self.n - 1)        # near the start: the context there is
            for m in np.unique(m_of):
                at = m_of == m
                ctx_keys, ctx_counts, _, full_keys, full_counts = self._tables[m]
                ctx = _context_keys(ids, int(m), V)[positions[at]]         # (Pm,)
                N = _lookup(ctx_keys, ctx, ctx_counts)
                c = _lookup(full_keys, ctx[:, None] * V + targets[at], full_counts)
                P[at] = (c + self.k) / (N[:, None] + self.k * V)
            return P
        for m in range(self.n):
            ctx_keys, ctx_counts, followers, full_keys, full_counts = self._tables[m]
            ctx = _context_keys(ids, m, V)[positions]                       # (P,)
            N, u = _lookup(ctx_keys, ctx, ctx_counts), _lookup(ctx_keys, ctx, followers)
            c = _lookup(full_keys, ctx[:, None] * V + targets, full_counts)   # (P, C)
            seen = (N > 0) & (positions >= m)              # positions < m have no such context
            mixed = (c + u[:, None] * P) / np.maximum(N + u, 1)[:, None]
            P = np.where(seen[:, None], mixed, P)
        return P

    def distribution(self, context: str = "") -> np.ndarray:
        """(V,) the probability of each character (in ``vocab.chars`` order) after ``context``
        (its last n-1 characters count)."""
        ids = np.append(self._encode(context), 0)    # a slot to predict
        return self._probs(ids, np.array([len(ids) - 1]), np.arange(self.V)[None, :])[0]

    def loss(self, text: str) -> np.ndarray:
        """(T-1,) nats of each character of ``text`` after the first, ``-log P(c_t | c_<t)``: the
        same positions as ``Trace.loss``."""
        if not isinstance(text, str) or len(text) < 2:
            raise ValueError("the text is too short: give at least two characters")
        ids = self._encode(text)
        positions = np.arange(1, len(ids))
        return -np.log(self._probs(ids, positions, ids[positions, None])[:, 0])

    def _encode(self, text: str) -> np.ndarray:
        missing = self.vocab.missing(text)
        if missing:
            raise ValueError(f"the text has character(s) outside the n-gram's vocabulary: "
                             f"{describe_chars(missing)}; count on text that has them, or pass "
                             "vocab=")
        return self.vocab.encode(text).astype(np.int64)

    def mean_loss(self, text: str) -> float:
        """Mean nats per predicted character of ``text``."""
        return float(self.loss(text).mean())


def _context_keys(ids: np.ndarray, m: int, V: int) -> np.ndarray:
    """(T,) the m ids before each position packed base V (nearest last); positions t < m get
    partial keys, which callers must not use for order m."""
    key = np.zeros(len(ids), np.int64)
    for j in range(m, 0, -1):                          # ids[t-m] is the most significant digit
        before = np.zeros(len(ids), np.int64)
        before[j:] = ids[: len(ids) - j] if j < len(ids) else ids[:0]
        key = key * V + before
    return key


def _lookup(keys: np.ndarray, query: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == query, 0 where the query is not among the sorted keys."""
    if len(keys) == 0:
        return np.zeros(query.shape, values.dtype)
    i = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[i] == query, values[i], 0)

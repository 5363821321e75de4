"""The loss of a text under a network, without dropout or gradients: ``mean_loss`` (what
``CharRNN.evaluate`` reports) and ``ValidationSample`` (what each validation of a run evaluates).

A text is cut into up to 64 streams evaluated side by side, each from a fresh state
(``stream_cut``), or, in lines mode, each line from a fresh state. The work is done in chunks, so
that a stop request can end it between them.
"""
from __future__ import annotations

import numpy as np

from .blas_threads import blas_threads
from .data import LineBatches, evaluation_text
from .text import normalize


def evaluate(model, text: str) -> float:
    """``CharRNN.evaluate``: the ``mean_loss`` of ``text`` under a trained ``model``, the text
    taken as the model took its training text (normalised unless ``raw_text``, lower-cased for
    ``lower``)."""
    if not model.is_trained:
        raise ValueError("the model is not trained yet: call fit(text) first")
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, not {type(text).__name__}")
    settings = model._settings
    text = text if settings.get("raw_text") else normalize(text)
    if settings.get("lower"):
        text = text.lower()
    ids, newline, spans = evaluation_text(text, model.vocab, model.mode)
    with model._lock, blas_threads(model.blas_threads):
        return float(mean_loss(model._net, ids, model.mode, newline, spans))


#: Most held-out characters one validation evaluates (``fit(full_validation=True)``: all).
VALIDATION_CHARS = 100_000
#: Streams a stream-mode validation sample is cut into, each from a fresh state.
VALIDATION_STREAMS = 64


class ValidationSample:
    """The part of the hold-out that every validation of a run evaluates, the same each time.

    A hold-out up to ``limit`` characters (None: no limit) is evaluated whole. A bigger one is
    sampled: in stream mode, ``VALIDATION_STREAMS`` evenly spaced windows holding ``limit``
    characters in all; in lines mode, evenly spaced lines up to ``limit`` characters.
    """

    def __init__(self, ids, mode, newline, spans, limit=VALIDATION_CHARS):
        self.mode, self.newline, self.ids, self.spans = mode, newline, ids, spans
        self.windows = None
        if mode == "stream" and limit is not None and len(ids) > limit:
            length = max(2, limit // VALIDATION_STREAMS)
            starts = np.linspace(0, len(ids) - length, VALIDATION_STREAMS).astype(np.int64)
            self.windows = np.stack([ids[s : s + length] for s in starts])      # (S, length)
        elif mode == "lines" and limit is not None and spans[1].sum() + len(spans[1]) > limit:
            starts, lengths = spans[:2]
            per_line = (lengths.sum() + len(lengths)) / len(lengths)
            keep = max(1, int(limit / per_line))
            pick = np.unique(np.linspace(0, len(starts) - 1, keep).astype(np.int64))
            self.spans = tuple(a[pick] for a in spans)          # (starts, lengths[, whole])
        self.chars = (self.windows.size if self.windows is not None else
                      len(ids) if mode == "stream" else int(self.spans[1].sum()))

    def loss(self, net, stop=None) -> float:
        if self.windows is None:
            return mean_loss(net, self.ids, self.mode, self.newline, self.spans, stop)
        X = np.ascontiguousarray(self.windows[:, :-1].T)
        Y = np.ascontiguousarray(self.windows[:, 1:].T)
        return streams_loss(net, X, Y, stop) / X.size


def mean_loss(net, ids: np.ndarray, mode: str, newline_id: int | None, line_spans=None,
              stop=None) -> float:
    """Mean nats per predicted character of ``ids`` under ``net``, without dropout or gradients.

    Stream mode: the text is cut into up to 64 streams evaluated side by side (each from a fresh
    state, padded with a mask so that every character after the first of each stream counts).
    Lines mode: each line from a fresh state, with its closing newline; ``line_spans`` is
    (starts, lengths) or (starts, lengths, whole), whole False for a line cut short, whose
    closing newline does not count. The work is done in chunks; ``stop()``, when given, is asked
    between them and True raises KeyboardInterrupt.
    """
    if mode == "lines":
        starts, lengths, *whole = line_spans
        whole = whole[0] if whole else np.ones(len(starts), bool)
        total = count = 0.0
        for group in _line_groups(lengths):
            X, Y, mask = LineBatches.pad(ids, starts[group], lengths[group], newline_id,
                                         whole[group])                                   # (T, b)
            state = net.initial_state(X.shape[1])
            for p in range(0, len(X), 256):            # a long line: window by window, as streams
                check_stop(stop)
                loss, state = net.loss(X[p : p + 256], Y[p : p + 256], mask[p : p + 256], state,
                                       grads=False)
                total += loss
            count += mask.sum()
        return total / count
    n = len(ids) - 1
    S, L = stream_cut(n)
    state = net.initial_state(S)
    total = 0.0
    for p in range(0, L, 256):
        check_stop(stop)
        # Window p of every stream, gathered from ids: no copy of the whole text.
        at = np.arange(p, min(p + 256, L))[:, None] + (np.arange(S) * L)[None, :]   # (w,S)
        mask = at < n                                                               # (w,S)
        at = np.minimum(at, n - 1)
        X, Y = ids[at].astype(np.int32), ids[at + 1].astype(np.int32)               # (w,S)
        loss, state = net.loss(X, Y, mask, state, grads=False)
        total += loss
    return total / n


def stream_cut(n: int) -> tuple[int, int]:
    """(streams, predictions per stream, rounded up) ``mean_loss`` cuts ``n`` predictions into:
    up to 64 streams of at least 1,000."""
    streams = int(min(64, max(1, n // 1000)))
    return streams, -(-n // streams)


def streams_loss(net, X, Y, stop=None, chunk=256) -> float:
    """Summed loss of the (time, stream) arrays ``X``/``Y``, each stream from a fresh state,
    ``chunk`` time steps at a time."""
    state = net.initial_state(X.shape[1])
    total = 0.0
    for p in range(0, X.shape[0], chunk):
        check_stop(stop)
        loss, state = net.loss(np.ascontiguousarray(X[p : p + chunk]),
                               np.ascontiguousarray(Y[p : p + chunk]), None, state, grads=False)
        total += loss
    return total


def check_stop(stop):
    if stop is not None and stop():
        raise KeyboardInterrupt


def _line_groups(lengths, most: int = 256, budget: int = 1 << 16):
    """Slices of consecutive lines to evaluate together: at most ``most`` lines, padded to
    at most ``budget`` positions (lines x longest line), or one line alone when it is longer."""
    start, longest = 0, 0
    for i, n in enumerate(lengths.tolist()):
        longest_with = max(longest, n + 1)
        if i > start and (i - start == most or (i - start + 1) * longest_with > budget):
            yield slice(start, i)
            start, longest_with = i, n + 1
        longest = longest_with
    if len(lengths) > start:
        yield slice(start, len(lengths))

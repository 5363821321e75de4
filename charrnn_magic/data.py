"""Training data: the two ways of cutting a text into batches, and the validation split.

*stream* (the classic min-char-rnn): the text is one long sequence, cut into B parallel streams read
in windows of ``seq_length``; the hidden state runs on from one window to the next and is reset when
the streams wrap around (one wrap is one epoch).

*lines* (the names example): each non-empty line is an example. It is read from a fresh state,
starting from a newline (the "start" token) and ending by predicting a newline (the "end" token).
Lines are shuffled each epoch and padded into batches; the mask marks what is real. Training
reads at most ``MAX_LINE`` characters of a line (see ``LineBatches``), so a step's memory is
bounded by batch x ``MAX_LINE`` whatever the text's longest line.
"""
from __future__ import annotations

import warnings

import numpy as np

from .vocab import Vocab, describe_chars

#: Lines mode trains on at most this many characters of each line; the rest of a longer line
#: is left out (with a ``LongLinesCut`` warning), and the model is not taught to end a line
#: where it was cut. Evaluation reads whole lines.
MAX_LINE = 1000


class LongLinesCut(UserWarning):
    """Lines mode cut lines longer than ``MAX_LINE`` characters for training."""


#: The data modes, each with what it means (``fit(mode=...)``; the magics' ``--mode`` help).
MODES = {"stream": "one long text (the default)",
         "lines": "each line is one example (names, titles, ...)"}


def encode_text(text: str, vocab: Vocab | None, mode: str):
    """(vocabulary, ids) of a training text: ``vocab`` when given (a ValueError names any
    character outside it), else one made from the text. A ValueError also says when the text
    is empty or has fewer than two different characters."""
    if not text:
        raise ValueError("the text is empty: give some text to train on")
    if vocab is None:
        vocab = Vocab.from_text(text + ("\n" if mode == "lines" else ""))
    ids = vocab.encode(text)
    if len(vocab) < 2 or (mode == "stream" and ids.min() == ids.max()):
        raise ValueError(f"the text has only one distinct character "
                         f"({describe_chars(text[:1])}): a model needs text with at least two "
                         "different characters")
    return vocab, ids


def evaluation_text(text: str, vocab: Vocab, mode: str):
    """(ids, newline id, line spans or None) of a text to evaluate, for ``evaluation.mean_loss``; a
    ValueError names any character outside ``vocab``, or says the text is too short."""
    ids = vocab.encode(text)
    newline = vocab.chars.index("\n") if "\n" in vocab else None
    spans = None
    if mode == "lines":
        spans = line_spans(ids, newline)
        if not len(spans[0]):
            raise ValueError("the text has no non-empty lines to evaluate")
    elif len(ids) < 2:
        raise ValueError("the text is too short to evaluate: give at least two characters")
    return ids, newline, spans


def held_out_count(n: int, val_fraction: float) -> int:
    """How many of ``n`` characters (stream mode) or lines (lines mode) validation takes."""
    return int(round(n * val_fraction))


#: Where stream mode takes its validation part from (``fit(holdout=...)``; ``--holdout``).
HOLDOUTS = {"start": "the start of the text, so that training reads its end (chosen)",
            "end": "the end of the text (the classic)"}


def split_stream(ids: np.ndarray, val_fraction: float, holdout: str = "start"):
    """(train ids, validation ids), both views. ``holdout="start"`` validates on the start of the
    text, so that training reads its end, the text closest to what the model goes on to write: a
    held-out end scored 0.13 nats worse on the text that follows (benchmarks/README.md)."""
    n_val = held_out_count(len(ids), val_fraction)
    if holdout == "start":
        return ids[n_val:], ids[:n_val]
    cut = len(ids) - n_val
    return ids[:cut], ids[cut:]


def line_spans(ids: np.ndarray, newline_id: int):
    """Start offsets and lengths (without the newline) of the non-empty lines of ``ids``."""
    breaks = np.flatnonzero(ids == newline_id)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(ids)]))
    keep = ends > starts
    return starts[keep], ends[keep] - starts[keep]


def validation_lines(starts, lengths, max_line: int = MAX_LINE):
    """(starts, lengths, whole) of the validation lines a training run reads, each cut to
    ``max_line`` as training cuts them (``whole`` False for a cut line: its closing newline is
    not a target), so no line costs more to validate than to train on. How many of them each
    validation reads is ``train.ValidationSample``'s to bound."""
    return starts, np.minimum(lengths, max_line), lengths <= max_line


def split_lines(starts, lengths, val_fraction: float, seed: int):
    """A seeded random choice of ``val_fraction`` of the lines for validation; the rest for
    training."""
    n_val = held_out_count(len(starts), val_fraction)
    order = np.random.default_rng(seed).permutation(len(starts))
    val = np.sort(order[:n_val])
    train = np.sort(order[n_val:])
    return (starts[train], lengths[train]), (starts[val], lengths[val])


class StreamBatches:
    """Windows of (T, B) input and target ids from B parallel streams of one text."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_length: int):
        B, T = batch_size, seq_length
        if len(ids) - 1 < T:
            raise ValueError(
                f"the training text has {len(ids)} characters, fewer than one window of "
                f"seq_length={T} plus one: give more text or a smaller seq_length"
            )
        L = (len(ids) - 1) // B                      # characters per stream
        if L < T:
            most = (len(ids) - 1) // T
            raise ValueError(
                f"batch_size={B} is larger than the text allows: with seq_length={T} this text "
                f"fills at most {most} parallel streams; use batch_size <= {most} or a smaller "
                f"seq_length"
            )
        self.batch_size, self.seq_length = B, T
        self.inputs = ids[: B * L].reshape(B, L).T          # (L, B) views: stream b is column b
        self.targets = ids[1 : B * L + 1].reshape(B, L).T
        # Unlike min-char-rnn, the last, shorter window of each pass is kept, so that every
        # character is trained on (a short poem is then memorised to its final letter).
        self.batches_per_epoch = -(-L // T)

    def batch(self, index: int):
        """Window ``index`` of the epoch: (X, Y, mask=None), each (T, B) (shorter for the last)."""
        p = index * self.seq_length
        X = np.ascontiguousarray(self.inputs[p : p + self.seq_length], dtype=np.int32)
        Y = np.ascontiguousarray(self.targets[p : p + self.seq_length], dtype=np.int32)
        return X, Y, None


class LineBatches:
    """Padded batches of lines: (T, B) inputs, targets and a 0/1 mask, T the longest line + 1.

    A line longer than ``max_line`` is trained on its first ``max_line`` characters only, without
    its closing newline as a target (it did not end there); ``cut`` is how many lines were cut,
    and a ``LongLinesCut`` warning says so in one line.
    """

    def __init__(self, ids: np.ndarray, starts, lengths, batch_size: int, newline_id: int,
                 max_line: int = MAX_LINE):
        if len(starts) == 0:
            raise ValueError("the training text has no non-empty lines: give text with at least "
                             "one line")
        if batch_size > len(starts):
            raise ValueError(
                f"batch_size={batch_size} is larger than the text allows: it has {len(starts)} "
                f"training lines; use batch_size <= {len(starts)}"
            )
        self.whole = lengths <= max_line                        # (N,) lines trained to their end
        self.cut = int(len(lengths) - self.whole.sum())
        if self.cut:
            warnings.warn(LongLinesCut(
                f"lines mode: {self.cut:,} line(s) longer than {max_line:,} characters "
                f"(the longest "
                f"{int(lengths.max()):,}) are trained on their first {max_line:,} only; use "
                "stream mode for long text"), stacklevel=2)
            lengths = np.minimum(lengths, max_line)
        self.ids, self.starts, self.lengths = ids, starts, lengths
        self.batch_size, self.newline = batch_size, newline_id
        self.batches_per_epoch = len(starts) // batch_size
        self.seq_length = int(lengths.max()) + 1

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(len(self.starts))

    def batch(self, index: int, order: np.ndarray):
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.pad(self.ids, self.starts[chosen], self.lengths[chosen], self.newline,
                        self.whole[chosen])

    @staticmethod
    def pad(ids, starts, lengths, newline, whole=None):
        """Inputs '\\n' + line, targets line + '\\n', right-padded with a mask. All (T, B).
        ``whole`` (B,): False for a cut line, whose closing newline is not a target."""
        T = int(lengths.max()) + 1
        j = np.arange(T)[:, None]                                 # (T,1) position in the example
        inside = j < lengths[None, :]                             # (T,B) a character of the line
        source = np.where(inside, starts[None, :] + j, 0)         # (T,B) where it is in ids
        Y = np.where(inside, ids[source], newline).astype(np.int32)
        X = np.full_like(Y, newline)
        X[1:] = Y[:-1]
        mask = j <= lengths[None, :]                              # the closing newline counts
        if whole is not None:
            mask &= (j < lengths[None, :]) | whole[None, :]       # ... where the line ends there
        return X, Y, mask

"""One fit call's data and read position (``TrainingSession``): the text cut into batches and a
validation part, and where in it training reads next."""
from __future__ import annotations

import hashlib

import numpy as np

from .data import (
    LineBatches,
    StreamBatches,
    line_spans,
    split_lines,
    split_stream,
    validation_lines,
)
from .evaluation import VALIDATION_CHARS, ValidationSample


class TrainingSession:
    """One fit call: its data, what it trains, and where in the data training reads next.

    It is made in two steps, so that a mistake changes nothing. ``TrainingSession(vocab, ids,
    settings)`` cuts the text into batches and a validation part (of which each validation
    evaluates a fixed sample of at most ``validation_chars`` characters; None: all of it),
    raising ValueError for what does not fit (in stream mode it settles
    ``settings["seq_length"]``). ``attach`` then hands over what training changes: the network,
    its optimiser, the random generator (dropout masks, the order of the lines), the lock held
    while the weights change, the history, the step count and the read position.

    The read position stays with the model so that a later fit on the same text and settings,
    or a saved and loaded model, carries on exactly where this one stopped: which epoch and
    batch, the hidden state each stream carries (stream mode), the shuffled order of the lines
    (lines mode).
    """

    def __init__(self, vocab, ids, settings: dict,
                 validation_chars: int | None = VALIDATION_CHARS):
        self.settings, self.mode = settings, settings["mode"]
        self.newline = vocab.chars.index("\n") if "\n" in vocab else None
        self.val_spans = None
        if self.mode == "stream":
            train, val = split_stream(ids, settings["val_fraction"], settings["holdout"])
            self.val_ids = val if len(val) >= 2 else None
            self.train_ids = train
            self.batches = StreamBatches(train, settings["batch_size"], settings["seq_length"])
            settings["seq_length"] = self.batches.seq_length
        else:
            starts, lengths = line_spans(ids, self.newline)
            (ts, tl), (vs, vl) = split_lines(starts, lengths, settings["val_fraction"],
                                             settings["seed"])
            self.val_ids = ids if len(vs) else None
            self.val_spans = validation_lines(vs, vl)
            self.batches = LineBatches(ids, ts, tl, settings["batch_size"], self.newline)
        #: What validation evaluates: all of the held-out part, or a fixed sample of it.
        self.validation = None
        if self.val_ids is not None:
            self.validation = ValidationSample(self.val_ids, self.mode, self.newline,
                                               self.val_spans, validation_chars)
        # Over the ids' bytes in place: a copy of a 1 GB text's ids took 15 s here, this 1 s.
        digest = hashlib.sha1(np.ascontiguousarray(ids).view(np.uint8)).hexdigest()[:16]
        self.key = (f"{self.mode}:{settings['batch_size']}:{settings['seq_length']}:"
                    f"{settings['val_fraction']}:{settings['holdout']}:{digest}")
        self.net = self.optimizer = self.rng = self.lock = self.history = self.position = None
        self.step, self.on_step = 0, None
        self.continued = False      # whether the read position (same text, settings) was kept

    def attach(self, *, net, optimizer, rng, lock, history, step: int, position, on_step=None):
        """Hand over what training changes; ``on_step(step)`` is called after every step with
        the new step count. Returns the read position to keep: ``position`` when it belongs to
        this text and these settings, else a fresh one (the start of the text)."""
        self.net, self.optimizer, self.rng, self.lock = net, optimizer, rng, lock
        self.history = history
        self.step, self.on_step = step, on_step
        self.continued = position is not None and position["key"] == self.key
        if not self.continued:
            position = {"key": self.key, "epoch": 0, "index": None, "state": None, "order": None}
        self.position = position
        return position

    def next_batch(self):
        pos, net = self.position, self.net
        if pos["index"] is None or pos["index"] >= self.batches.batches_per_epoch:
            pos["epoch"] += pos["index"] is not None
            pos["index"] = 0
            if self.mode == "stream":
                pos["state"] = net.initial_state(self.batches.batch_size)     # reset at the wrap
            else:
                pos["order"] = self.batches.epoch_order(self.rng)
        if self.mode == "stream":
            return (*self.batches.batch(pos["index"]), pos["state"])
        fresh = net.initial_state(self.batches.batch_size)
        return (*self.batches.batch(pos["index"], pos["order"]), fresh)

    def advance(self, new_state):
        pos = self.position
        pos["index"] += 1
        if self.mode == "stream":
            pos["state"] = new_state

    def count_step(self):
        self.step += 1
        if self.on_step is not None:
            self.on_step(self.step)

    def validation_loss(self, stop=None):
        """Mean loss of the validation sample, or None without a validation part. ``stop()`` is
        asked between chunks; when it says True, KeyboardInterrupt is raised."""
        if self.validation is None:
            return None
        return float(self.validation.loss(self.net, stop))

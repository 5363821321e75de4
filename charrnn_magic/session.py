"""One fit call, from the text to the parts training changes: ``prepare_fit`` checks everything,
then normalises and encodes the text, settles the settings (the defaults rule on a first fit),
cuts the data (``TrainingSession``: batches, a validation part, and where training reads next),
and builds the network and the optimiser; ``train.run`` then trains it."""
from __future__ import annotations

import hashlib

import numpy as np

from . import budget
from .data import (
    LineBatches,
    StreamBatches,
    encode_text,
    line_spans,
    split_lines,
    split_stream,
    validation_lines,
)
from .defaults_from_text import (
    CHOSEN_KEYS,
    default_steps,
    first_fit_choice,
    most_passes,
    settle_first_fit,
)
from .evaluation import VALIDATION_CHARS, ValidationSample
from .network import Network
from .optim import OPTIMIZERS
from .settings import AUTO, check_architecture, check_int, check_stop_rules, resolve
from .stopping import StopRules
from .text import normalize


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
        # Over the ids' bytes in place: a copy of a big text's ids would cost many times more.
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


def prepare_fit(model, text, steps, epochs, minutes, target_loss, *, eval_every, seed,
                full_validation, **given):
    """Check everything, then set up ``model``'s vocabulary, weights and data for a fit on
    ``text`` (``fit``'s arguments; ``given``: its training settings, None where not given);
    nothing changes on error. Returns the attached ``TrainingSession`` and the ``StopRules``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, not {type(text).__name__}")
    check_stop_rules(steps, epochs, minutes, target_loss)
    check_int("eval_every", eval_every, 1, optional=True)
    check_int("seed", seed, 0, optional=True)
    first, notes, whole = model._net is None, [], False
    arch = {k: getattr(model, k) for k in CHOSEN_KEYS}
    if first:
        arch, previous, chose = first_fit_choice(arch, model._fit_defaults, model._preset,
                                                 len(text), given, minutes)
        check_architecture(*arch.values(), model.dtype)
    else:
        previous = model._settings
    settings = resolve(given, previous)
    mode = settings["mode"]
    if model._settings.get("mode") not in (None, mode):
        raise ValueError(f"this model was trained in {model._settings['mode']} mode; it "
                         f"cannot continue in {mode} mode: train a new model for that")
    text = text if settings["raw_text"] else normalize(text)
    vocab, ids = encode_text(text.lower() if settings["lower"] else text, model.vocab, mode)
    budget.check_fit(model, arch, len(vocab), len(ids), settings)     # before any big array
    if first:
        notes, whole = settle_first_fit(ids, vocab, settings, given, model._fit_defaults, arch,
                                        chose, minutes)
    # The seed is settled first: it also picks the validation lines, which must stay the
    # same when training continues. A continued fit carries on with the model's own seed.
    if first:
        drawn = seed is None
        settings["seed"] = int(np.random.SeedSequence().entropy % 2**63) if drawn else seed
    else:
        settings["seed"] = model._settings["seed"]
    session = TrainingSession(vocab, ids, settings,
                              None if full_validation else VALIDATION_CHARS)
    per_epoch = session.batches.batches_per_epoch
    cap = (most_passes(len(ids), minutes, steps, epochs, settings["val_fraction"])
           if model._preset == AUTO else None)
    # A stream learned whole and given no stop rule trains until it recites the text.
    recite = whole and mode == "stream"
    rules = StopRules.of_fit(steps, cap or epochs, minutes, target_loss, per_epoch,
                             default_steps(per_epoch, whole, recite), recite)
    if cap:
        rules.steps_detail = f"{cap} passes over the text (the most a time budget trains)"
        notes.append(f"(at most {cap} passes over the text, whatever the budget: more did not "
                     "pay on the texts measured; give epochs or steps to train longer)")

    # Everything is valid: from here on the model changes.
    model.fit_notes = [n for n in notes if n]
    if first:
        model.cell, model.hidden_size, model.layers, model.dropout = arch.values()
        model._rng = np.random.default_rng(settings["seed"])
        model.vocab = vocab
        model._net = Network(model.cell, len(vocab), model.hidden_size, model.layers,
                             model.dropout, model.dtype)
        model._net.init_weights(model._rng)
    opt = model._optimizer
    if opt is None or opt.name != settings["optimizer"]:
        make = OPTIMIZERS[settings["optimizer"]]
        model._optimizer = make(model._net.size, model._net.dtype, settings["lr"])
    model._optimizer.lr = settings["lr"]
    model._optimizer.weight_decay = settings["weight_decay"]
    model._settings = settings
    model.training_text = text.lower() if settings["lower"] else text
    model._position = session.attach(net=model._net, optimizer=model._optimizer, rng=model._rng,
                                     lock=model._lock, history=model.history, step=model.step,
                                     position=model._position, on_step=model._count_step)
    return session, rules

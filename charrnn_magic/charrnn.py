"""``CharRNN``: the one object users (and the notebook front ends) train, sample, evaluate and save.

    >>> from charrnn_magic import CharRNN
    >>> model = CharRNN()              # the model is chosen from the text at the first fit
    >>> history = model.fit(text, minutes=5, seed=1)      # or steps=, epochs=, target_loss=
    >>> model.sample(length=200, temperature=0.8, prime="ROMEO:")
    >>> model.evaluate(other_text)                                # mean nats per character
    >>> model.save("shakespeare.safetensors"); CharRNN.load("shakespeare.safetensors")

A facade: it holds a model's parts and hands them to the modules that do the work: ``settings``
checks the settings, ``data`` cuts the text, ``train`` trains, ``sampling`` samples,
``checkpoint`` stores.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from . import budget, checkpoint, sampling, timeline
from .data import encode_text, evaluation_text, line_spans
from .defaults import (
    LEARN_WHOLE_BELOW,
    choose,
    default_steps,
    describe_choice,
    fit_to_text,
    learn_whole_note,
    most_passes,
)
from .model import Network
from .optim import OPTIMIZERS
from .sampling import LINE_END, generate
from .settings import (
    ARCH_KEYS,
    AUTO,
    PRESETS,
    TRAIN_DEFAULTS,
    check_architecture,
    check_int,
    check_stop_rules,
    resolve,
)
from .text import normalize
from .threads import blas_threads
from .train import (
    VALIDATION_CHARS,
    History,
    StopRules,
    TrainingSession,
    Workers,
    mean_loss,
    run,
    where_training_runs,
)
from .vocab import Vocab

__all__ = ["CharRNN", "PRESETS", "ARCH_KEYS", "LINE_END"]

#: The architecture a first fit may choose from the text (the dtype is always the user's).
_CHOSEN_KEYS = ARCH_KEYS[:-1]


class CharRNN:
    """A character-level recurrent language model in pure NumPy.

    cell: ``"rnn"`` (vanilla tanh RNN, the classic min-char-rnn), ``"lstm"`` or ``"gru"``.
    hidden_size: units per layer. layers: how many recurrent layers are stacked.
    dropout: share of each layer's outputs zeroed during training (0 disables).
    dtype: ``"float32"`` (fast, the default) or ``"float64"``.
    Each of ``cell``, ``hidden_size``, ``layers`` and ``dropout`` left out (None) is chosen by the
    first ``fit`` from the size of the text and the time budget (the rule is in
    ``charrnn_magic/defaults.py``; ``fit_notes`` then says what was chosen and why).
    ``CharRNN.from_preset("classic")`` is the classic min-char-rnn: vanilla RNN 100, Adagrad.
    The vocabulary and the weights are made by the first ``fit``.

    Speed knobs (attributes, on the class or one model): ``workers`` (workers sharing each
    batch; by default two for big models), ``worker_process`` (the second worker is a child
    process; default on) and ``blas_threads`` (BLAS threads, default one). The measurements
    behind each default are in ``benchmarks/README.md``.
    """

    PRESETS = PRESETS
    #: BLAS threads for training and evaluation (sampling always uses one). One, because
    #: OpenBLAS's waiting threads stall a step badly as soon as anything else wants a core.
    blas_threads = 1
    #: Workers that share each training batch (1 or 2); None: 2 when a step is big enough for
    #: the second core to pay (see ``workers_from_macs``) and 1 otherwise.
    workers = None
    #: Where the second worker runs: a child process of its own (True: the two halves then share
    #: no GIL, which is faster), or a thread (False). Falls back to a thread, with a warning,
    #: where no process can start.
    worker_process = True
    #: Multiply-adds of one step's recurrent products (batch x hidden x gates*hidden x layers)
    #: from which ``workers=None`` uses two, with the second worker in a child process: about
    #: where two workers started to beat one.
    workers_from_macs = 1_000_000
    #: The same with the second worker in a thread (``worker_process = False``, or no POSIX):
    #: the threads' shared GIL costs more, so only bigger steps pay.
    thread_workers_from_macs = 8_000_000
    #: The most weight snapshots a model keeps of its training (``model.timeline``; 0: none).
    #: Each costs ``n_params`` × 4 bytes (float32): see ``charrnn_magic.timeline``.
    snapshots = 20

    def __init__(self, cell: str | None = None, hidden_size: int | None = None,
                 layers: int | None = None, dropout: float | None = None, dtype: str = "float32"):
        # What is left out is checked with a stand-in: it is chosen (validly) at the first fit.
        dtype_name = check_architecture(cell or "rnn", 1 if hidden_size is None else hidden_size,
                                        1 if layers is None else layers,
                                        0.0 if dropout is None else dropout, dtype)
        self.cell = cell
        self.hidden_size = None if hidden_size is None else int(hidden_size)
        self.layers = None if layers is None else int(layers)
        self.dropout = None if dropout is None else float(dropout)
        self.dtype = dtype_name
        #: What the last fit chose by itself, and why, one line each (the progress header).
        self.fit_notes: list[str] = []
        self.vocab: Vocab | None = None
        self.step = 0
        self.history = History()
        self._net: Network | None = None
        self._optimizer = None
        self._settings: dict = {}
        self._fit_defaults: dict = {}
        self._preset = AUTO                     # the preset the model was made from
        self._rng: np.random.Generator | None = None
        self._position: dict | None = None      # where training reads next (see TrainingSession)
        self._lock = threading.Lock()           # guards the weights against a concurrent reader
        self._fit_lock = threading.Lock()       # held while a fit runs
        self._timeline = timeline.Recorder()    # weight snapshots (guarded by _lock)
        #: The text of this model's last fit in this session (lower-cased for ``lower``), kept
        #: by reference for the inspector's n-gram comparison; not saved, None after ``load``.
        self.training_text: str | None = None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "CharRNN":
        """A model built from ``PRESETS[name]``; its training settings (and ``keep_best`` and
        ``patience``) become ``fit``'s defaults. ``"auto"`` is ``CharRNN()``: all chosen from the
        text; ``"classic"`` the classic min-char-rnn. ``overrides`` win over the preset."""
        if name not in PRESETS:
            raise ValueError(f"no preset named {name!r}: use one of {', '.join(PRESETS)}")
        preset = {**PRESETS[name], **overrides}
        model = cls(**{k: preset.pop(k) for k in ARCH_KEYS if k in preset})
        model._fit_defaults, model._preset = preset, name
        return model

    # ------------------------------------------------------------------ info
    @property
    def mode(self):
        return self._settings.get("mode")

    @property
    def is_trained(self) -> bool:
        return self._net is not None and self.step > 0

    @property
    def is_training(self) -> bool:
        return self._fit_lock.locked()

    @property
    def n_params(self) -> int:
        return self._net.size if self._net is not None else 0

    def config(self) -> dict:
        """Architecture and the training settings of the last fit, JSON-able."""
        return {"cell": self.cell, "hidden_size": self.hidden_size, "layers": self.layers,
                "dropout": self.dropout, "dtype": self.dtype, **self._settings}

    def summary(self) -> str:
        if self.layers is None or self.hidden_size is None:
            size = "size from the text"
        else:
            size = f"{self.layers}x{self.hidden_size}" if self.layers > 1 else str(self.hidden_size)
        parts = [self.cell or "cell from the text", size]
        if self.vocab is not None:
            parts.append(f"vocab {len(self.vocab)}")
        parts.append(f"{self.step:,} steps" if self.step else "untrained")
        if self.history.last_loss is not None:
            parts.append(f"loss {self.history.last_loss:.3f}")
        if self.history.last_val_loss is not None:
            parts.append(f"val {self.history.last_val_loss:.3f}")
        return f"CharRNN({', '.join(parts)})"

    __repr__ = summary

    # ------------------------------------------------------------------ training
    def fit(self, text: str, steps: int | None = None, epochs: float | None = None,
            minutes: float | None = None, target_loss: float | None = None, *,
            mode=None, seq_length=None, batch_size=None, optimizer=None, lr=None, clip=None,
            clip_mode=None, val_fraction=None, holdout=None, lower=None, lr_schedule=None,
            raw_text=None, weight_decay=None,
            seed=None, keep_best=None, patience=None, full_validation=False, eval_every=None,
            callback=None, stop_event=None) -> History:
        """Train on ``text`` until a stop rule fires; calling it again continues training.

        Stop rules (the first to fire ends training; none given means ``steps=1000``, or, for a
        short text learned whole, the end of the first pass after which a greedy sample recites
        it, within at most 200 passes; in lines mode, 60 passes):
        ``steps``, ``epochs`` (passes over the training text), ``minutes``, ``target_loss``
        (smoothed training loss in nats per character). ``minutes`` without ``steps`` or
        ``epochs`` also stops after at most 15 passes (more for a text under 100,000
        characters: ``defaults.most_passes``), unless the model comes from a named preset: more
        passes did not pay on the texts measured.

        Settings (``None`` keeps the previous fit's value; on a first fit, the preset's, else the
        one chosen from the size of the text, see ``charrnn_magic/defaults.py``):
        ``mode`` ``"stream"`` (one long text, the default) or ``"lines"`` (each line an example);
        ``seq_length`` (chosen: 50; in lines mode the longest line decides); ``batch_size``
        (chosen: 32, or 1 for a text learned whole, or what a short text fills); ``optimizer``
        ``"adam"`` (chosen, lr 0.004; 0.01 for a text learned whole), ``"adagrad"`` (the classic,
        lr 0.1) or ``"sgd"`` (lr 0.1); ``lr``; ``clip`` (chosen: 1; 0 disables) with ``clip_mode``
        ``"norm"`` (the whole gradient, chosen) or ``"value"`` (each element, the classic);
        ``val_fraction`` held out for validation (0.1, at most 50,000 characters of a stream, a
        seeded random tenth of the lines in lines mode; a text under 2,000 characters is
        learned whole, 0), from where ``holdout`` says in
        stream mode (``"start"``, chosen: training then reads the end of the text; ``"end"``, the
        classic's); ``lower`` to
        lower-case the text (and later primes and evaluations); ``lr_schedule`` ``"cosine"``
        (chosen) to lower the learning rate along half a cosine to 2 % of ``lr`` by the end of
        the run (steps, epochs or minutes; a run with only ``target_loss`` has no known end, and
        keeps ``lr``), or ``"constant"``; ``weight_decay`` shrinks every weight by ``lr`` ×
        ``weight_decay`` at each step, apart from the gradient's step (decoupled, as in AdamW;
        chosen: 0.1, none for a text learned whole). What a fit chose by itself is in
        ``fit_notes``: the settings on a first fit, the cap on passes on any fit given only
        ``minutes``.
        The text is normalised first (see ``charrnn_magic.text.normalize``): a leading BOM is
        dropped and ``\r\n`` and lone ``\r`` line ends become ``\n``, as are later primes and
        evaluated texts; ``raw_text=True`` keeps every character as given (the model then also
        takes primes and evaluations as they are).

        ``seed`` seeds the weights and the training order when the model is first trained: the same
        seed and settings give bit-identical weights. With a validation part: ``keep_best``
        (default True) ends with the weights that had the best validation loss of the run
        (``history.weights_step`` says which step's weights the model holds); ``patience`` stops
        once validation has not improved for that many steps (None, the default: for 3
        validations and 15 % of the planned run while it is clearly above its best, or for 6
        and 30 % on a flat plateau; 0: never), and ``history.stop_detail`` says so. Each
        validation evaluates the same sample of at most 100,000 held-out characters;
        ``full_validation=True`` evaluates all of them.
        ``eval_every``: steps between validations (default: 20 per run).
        ``callback(progress)`` is called after every step with a ``Progress``; ``stop_event`` (a
        ``threading.Event``) ends training after the current step when set.

        Ctrl-C ends training cleanly after the current step: the model keeps what it learned and
        ``history.interrupted`` is True. A loss that becomes NaN raises ``TrainingDiverged`` and
        the model keeps its last finite weights. Returns the model's ``History``.
        """
        if not self._fit_lock.acquire(blocking=False):
            raise RuntimeError("this model is already training (in another thread): stop that run "
                               "first, or train a copy")
        try:
            check_int("patience", patience, 0, optional=True)
            if keep_best is None:
                keep_best = self._fit_defaults.get("keep_best", True)
            if patience is None:
                patience = self._fit_defaults.get("patience")
            session, rules = self._prepare(
                text, steps, epochs, minutes, target_loss, mode=mode, seq_length=seq_length,
                batch_size=batch_size, optimizer=optimizer, lr=lr, clip=clip, clip_mode=clip_mode,
                val_fraction=val_fraction, holdout=holdout, lower=lower, lr_schedule=lr_schedule,
                raw_text=raw_text, weight_decay=weight_decay,
                seed=seed, eval_every=eval_every, full_validation=full_validation)
            with self._lock:
                self._timeline.thin(self.snapshots)
            with blas_threads(self.blas_threads):
                history = run(session, rules, callback=callback, stop_event=stop_event,
                              eval_every=eval_every, keep_best=bool(keep_best), patience=patience,
                              workers=self._workers())
            self._take_snapshot(self.step)     # the model as the fit leaves it
            return history
        finally:
            self._fit_lock.release()

    def where_training_runs(self) -> str:
        """Where the next fit computes its batches, in words: ``"1 worker (this process)"``, or
        two workers with the second in a child process (or a thread), and how to change it."""
        if self._net is None:
            return "decided at the first fit, from the model's size"
        count = self._workers().count(self._net, self._settings["batch_size"])
        return where_training_runs(count, self.worker_process)

    def _workers(self) -> Workers:
        """The worker knobs of this model (or its class), for ``train.run`` to decide with."""
        return Workers(self.workers, self.worker_process, self.workers_from_macs,
                       self.thread_workers_from_macs)

    def _first_fit_choice(self, n_chars: int, given: dict, minutes):
        """(architecture, first-fit defaults of the training settings, (whether the architecture
        was chosen, whether training settings were)): what is not given (to the constructor, to
        ``fit`` or by the preset) is chosen from the text."""
        preset = {k: v for k, v in self._fit_defaults.items() if k in TRAIN_DEFAULTS}
        mode = given["mode"] or preset.get("mode") or TRAIN_DEFAULTS["mode"]
        chosen = choose(n_chars, minutes, mode)
        arch = {k: chosen[k] if getattr(self, k) is None else getattr(self, k)
                for k in _CHOSEN_KEYS}
        chose_arch = any(getattr(self, k) is None for k in _CHOSEN_KEYS)
        if self._preset != AUTO:
            # A named preset keeps its meaning: what it leaves out is the engine's classic value,
            # except that a short text is still learned whole.
            base = {**TRAIN_DEFAULTS, "val_fraction": chosen["val_fraction"], **preset}
            return arch, base, (chose_arch, False)
        rule = {k: v for k, v in chosen.items() if k in TRAIN_DEFAULTS}
        base = {**TRAIN_DEFAULTS, **rule, **preset}     # from_preset("auto", lr=...) too
        keys = ("optimizer", "lr_schedule", "batch_size", "seq_length", "clip", "clip_mode",
                "weight_decay")
        chose_settings = any(given[k] is None and k not in preset for k in keys)
        return arch, base, (chose_arch, chose_settings)

    def _prepare(self, text, steps, epochs, minutes, target_loss, *, eval_every, seed,
                 full_validation, **given):
        """Check everything, then set up vocabulary, weights and data; nothing changes on error.
        Returns the attached ``TrainingSession`` and the ``StopRules``."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, not {type(text).__name__}")
        check_stop_rules(steps, epochs, minutes, target_loss)
        check_int("eval_every", eval_every, 1, optional=True)
        check_int("seed", seed, 0, optional=True)
        first, notes, whole = self._net is None, [], False
        if first:
            arch, previous, chose = self._first_fit_choice(len(text), given, minutes)
            check_architecture(*arch.values(), self.dtype)
        else:
            arch, previous = {k: getattr(self, k) for k in _CHOSEN_KEYS}, self._settings
        settings = resolve(given, previous)
        mode = settings["mode"]
        if self._settings.get("mode") not in (None, mode):
            raise ValueError(f"this model was trained in {self._settings['mode']} mode; it "
                             f"cannot continue in {mode} mode: train a new model for that")
        text = text if settings["raw_text"] else normalize(text)
        vocab, ids = encode_text(text.lower() if settings["lower"] else text, self.vocab, mode)
        budget.check_fit(self, arch, len(vocab), len(ids), settings)     # before any big array
        if first:
            if (given["val_fraction"] is None and "val_fraction" not in self._fit_defaults
                    and len(ids) < LEARN_WHOLE_BELOW):
                notes.append(learn_whole_note(len(ids)))
                whole = settings["val_fraction"] == 0
            n_lines = 0
            if mode == "lines" and "\n" in vocab:
                n_lines = len(line_spans(ids, vocab.chars.index("\n"))[0])
            explicit = {k for k, v in given.items() if v is not None}
            notes.append(fit_to_text(len(ids), n_lines, settings, explicit))
            notes.insert(0, describe_choice(arch, settings, len(ids), *chose, minutes))
        # The seed is settled first: it also picks the validation lines, which must stay the
        # same when training continues. A continued fit carries on with the model's own seed.
        if self._net is None:
            drawn = seed is None
            settings["seed"] = int(np.random.SeedSequence().entropy % 2**63) if drawn else seed
        else:
            settings["seed"] = self._settings["seed"]
        session = TrainingSession(vocab, ids, settings,
                                  None if full_validation else VALIDATION_CHARS)
        per_epoch = session.batches.batches_per_epoch
        cap = (most_passes(len(ids), minutes, steps, epochs, settings["val_fraction"])
               if self._preset == AUTO else None)
        # A stream learned whole and given no stop rule trains until it recites the text.
        recite = whole and mode == "stream"
        rules = StopRules.of_fit(steps, cap or epochs, minutes, target_loss, per_epoch,
                                 default_steps(per_epoch, whole, recite), recite)
        if cap:
            rules.steps_detail = f"{cap} passes over the text (the most a time budget trains)"
            notes.append(f"(at most {cap} passes over the text, whatever the budget: more did not "
                         "pay on the texts measured; give epochs or steps to train longer)")

        # Everything is valid: from here on the model changes.
        self.fit_notes = [n for n in notes if n]
        if self._net is None:
            self.cell, self.hidden_size, self.layers, self.dropout = arch.values()
            self._rng = np.random.default_rng(settings["seed"])
            self.vocab = vocab
            self._net = Network(self.cell, len(vocab), self.hidden_size, self.layers, self.dropout,
                                self.dtype)
            self._net.init_weights(self._rng)
        opt = self._optimizer
        if opt is None or opt.name != settings["optimizer"]:
            make = OPTIMIZERS[settings["optimizer"]]
            self._optimizer = make(self._net.size, self._net.dtype, settings["lr"])
        self._optimizer.lr = settings["lr"]
        self._optimizer.weight_decay = settings["weight_decay"]
        self._settings = settings
        self.training_text = text.lower() if settings["lower"] else text
        self._position = session.attach(net=self._net, optimizer=self._optimizer, rng=self._rng,
                                        lock=self._lock, history=self.history, step=self.step,
                                        position=self._position, on_step=self._count_step)
        return session, rules

    def _count_step(self, step: int):
        self.step = step
        if self.snapshots > 0 and self._timeline.due(step):
            self._take_snapshot(step)

    def _take_snapshot(self, step: int) -> None:
        if step <= 0 or self._net is None:
            return
        with self._lock:
            limit = self.snapshots
            self._timeline.add(step, self._net.flat.copy() if limit > 0 else None, limit)

    # ------------------------------------------------------------------ timeline
    @property
    def timeline(self) -> "timeline.Timeline":
        """The weight snapshots taken as the model trained, oldest first: ``Snapshot(step,
        weights)`` records, at most ``CharRNN.snapshots`` (20), spread evenly over the whole
        training; its repr states the memory they take (``n_params`` × 4 bytes each, float32).
        ``at_step`` makes a model of one (see ``charrnn_magic.timeline``)."""
        with self._lock:
            return self._timeline.view(self.snapshots)

    def at_step(self, step: int) -> "CharRNN":
        """A new ``CharRNN`` with the weights the model had after training step ``step`` (one
        of ``model.timeline.steps``): sample, evaluate, trace, inspect or save it as any model.
        Its history and timeline stop at that step. Training it goes on from those weights with
        a fresh optimiser state, from the start of the text; the model itself is unchanged."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ValueError(f"step must be a whole number, not {step!r}")
        with self._lock:
            snap = self._timeline.find(int(step))
            steps = [s.step for s in self._timeline.snapshots]
            kept = self._timeline.up_to(int(step)) if snap is not None else None
        if snap is None:
            if not steps:
                raise ValueError(f"there is no snapshot of step {step}: this model has none "
                                 "(they are taken while it trains; CharRNN.snapshots sets how "
                                 "many)")
            near = sorted(steps, key=lambda s: abs(s - step))[:3]
            raise ValueError(f"there is no snapshot of step {step}: the nearest are "
                             f"{', '.join(f'{s:,}' for s in sorted(near))} "
                             f"(model.timeline.steps lists all {len(steps)})")
        copy = type(self)(self.cell, self.hidden_size, self.layers, self.dropout, self.dtype)
        copy.vocab, copy.step = self.vocab, int(step)
        copy._settings, copy._fit_defaults = dict(self._settings), dict(self._fit_defaults)
        copy.training_text = self.training_text
        net = Network(self.cell, len(self.vocab), self.hidden_size, self.layers, self.dropout,
                      self.dtype)
        net.flat[:] = snap.weights
        copy._net = net
        copy._optimizer = OPTIMIZERS[self._settings["optimizer"]](net.size, net.dtype,
                                                                  self._settings["lr"])
        copy._rng = np.random.default_rng([self._settings["seed"], int(step)])
        copy._timeline = kept
        h, ch = self.history, copy.history
        n = sum(1 for s in h.step if s <= step)
        ch.step, ch.loss = list(h.step[:n]), list(h.loss[:n])
        m = sum(1 for s in h.val_step if s <= step)
        ch.val_step, ch.val_loss = list(h.val_step[:m]), list(h.val_loss[:m])
        return copy

    # ------------------------------------------------------------------ sampling
    def sample(self, length: int = 200, temperature: float = 1.0, prime: str | None = None,
               seed_char: str | None = None, top_k: int | None = None, top_p: float | None = None,
               stop=LINE_END, count: int = 1, seed: int | None = None):
        """Generate text. Returns a str, or a list of ``count`` strs when ``count > 1``.

        ``prime``: text fed through the network first (not repeated in the result); ``seed_char``:
        one character the result starts with. Without either, a stream-mode model starts after a
        newline and a lines-mode model at the start of a line. ``temperature`` 0 is greedy (always
        the likeliest character; so is any temperature below ``MIN_TEMPERATURE``, 1e-6, where
        1/T would overflow); higher is more adventurous. ``top_k`` keeps the k likeliest
        characters, ``top_p`` the smallest set holding that much probability. ``stop``: a character
        that ends a sample (kept in the text), or None for none; the default, ``LINE_END``, stops
        a lines-mode model at the end of the line (the newline is not kept) and a stream-mode
        model nowhere. ``length`` is the most characters returned. ``seed`` makes it
        reproducible; all ``count`` samples are generated together. A wrong argument raises a
        ValueError that names it.
        """
        texts, _ = self._sample(length, temperature, prime, seed_char, top_k, top_p, stop, count,
                                seed, False)
        return texts[0] if count == 1 else texts

    def sample_with_probs(self, length: int = 200, temperature: float = 1.0, prime=None,
                          seed_char=None, top_k=None, top_p=None, stop=LINE_END, count: int = 1,
                          seed=None):
        """(text, probs): a sample and, for each of its characters, the probability the model gave
        it (at temperature 1; NaN for a seed character, which was given, not generated). With
        ``count > 1``, a list of texts and a list of arrays, the same texts ``sample`` gives."""
        texts, probs = self._sample(length, temperature, prime, seed_char, top_k, top_p, stop,
                                    count, seed, True)
        return (texts[0], probs[0]) if count == 1 else (texts, probs)

    def sample_stream(self, length: int = 200, temperature: float = 1.0, prime=None, seed_char=None,
                      top_k=None, top_p=None, stop=LINE_END, seed=None):
        """Like ``sample``, but a generator that yields each character as it is produced (the
        arguments are checked at the call, before the first character)."""
        plan = self._sample_plan(length, temperature, prime, seed_char, top_k, top_p, stop, 1, seed)
        return self._stream(plan)

    def _stream(self, plan):
        seed_char = plan.pop("seed_char")
        chars = self.vocab.chars
        if seed_char is not None:
            yield seed_char
        with blas_threads(1):
            for ids in generate(**plan):
                i = ids[0]
                if i < 0 or (i == plan["stop_id"] and self.mode == "lines"):
                    return
                yield chars[i]

    def _sample(self, length, temperature, prime, seed_char, top_k, top_p, stop, count, seed,
                with_probs):
        plan = self._sample_plan(length, temperature, prime, seed_char, top_k, top_p, stop, count,
                                 seed)
        seed_char = plan.pop("seed_char")                  # lower-cased for a `lower` model
        with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
            ids, probs = sampling.collect(generate(**plan, with_probs=with_probs), self.vocab,
                                          plan["length"], count, with_probs)
        drop = plan["stop_id"] if self.mode == "lines" else None
        return sampling.decode(ids, probs, self.vocab, seed_char=seed_char,
                               stop_id=plan["stop_id"], drop_stop_id=drop)

    def _sample_plan(self, length, temperature, prime, seed_char, top_k, top_p, stop, count, seed):
        if not self.is_trained:
            raise ValueError("the model is not trained yet: call fit(text) first")
        with self._lock:
            flat = self._net.flat.copy()
        return sampling.plan(self.vocab, self._net, flat, lines=self.mode == "lines",
                             lower=bool(self._settings.get("lower")),
                             raw_text=bool(self._settings.get("raw_text")), length=length,
                             temperature=temperature, prime=prime, seed_char=seed_char, top_k=top_k,
                             top_p=top_p, stop=stop, count=count, seed=seed)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, text: str) -> float:
        """Mean loss of ``text`` under the model, in nats per character (lower is better)."""
        if not self.is_trained:
            raise ValueError("the model is not trained yet: call fit(text) first")
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, not {type(text).__name__}")
        text = self._normalized(text)
        if self._settings.get("lower"):
            text = text.lower()
        ids, newline, spans = evaluation_text(text, self.vocab, self.mode)
        with self._lock, blas_threads(self.blas_threads):
            return float(mean_loss(self._net, ids, self.mode, newline, spans))

    def _normalized(self, text: str) -> str:
        """``text`` as this model's training text was taken: normalised, unless fit with
        ``raw_text=True``."""
        return text if self._settings.get("raw_text") else normalize(text)

    def bits_per_char(self, text: str) -> float:
        """Mean loss of ``text`` in bits per character."""
        return self.evaluate(text) / math.log(2)

    # ------------------------------------------------------------------ files
    def save(self, path, snapshots: bool = False) -> Path:
        """Save everything needed to sample or to resume training exactly (safetensors file,
        written atomically: an interrupted save never destroys an existing file; a symbolic link
        is written through). See ``charrnn_magic.checkpoint`` for what the file holds.
        ``snapshots=True`` also stores ``model.timeline`` (``n_params`` × 4 bytes each, float32),
        which ``load`` restores."""
        return checkpoint.save_model(self, path, snapshots=snapshots)

    @classmethod
    def load(cls, path) -> "CharRNN":
        """A model saved with ``save``. Every field and tensor is checked before anything is
        built (see ``charrnn_magic.checkpoint``); a ValueError names what is wrong with a bad
        file."""
        return checkpoint.load_model(cls, path)

    # ------------------------------------------------------------------ notebook
    def panel(self, **options):
        """The live sampling panel (ipywidgets) for this model; ``options`` set the controls'
        starting values (see ``charrnn_magic.notebook.sampler_panel``). The one place the engine
        reaches up to the notebook layer, and only when called."""
        from .notebook.panel import sampler_panel
        return sampler_panel(self, **options)

    # ------------------------------------------------------------------ looking inside
    def trace(self, text: str, layers=None, states=None, **options):
        """What every unit did over ``text``: a ``Trace`` with each layer's states and gates at
        every character, the probabilities of each next character and the loss of each one
        (see ``charrnn_magic.trace``; options ``max_chars``, ``chunk``, ``probs``)."""
        from .trace import trace
        return trace(self, text, layers, states, **options)

    def find_units(self, text: str, features=None, top: int = 5, **options):
        """The ``top`` units (of every layer and state) most correlated with each feature of
        ``text``: position in the line, inside quotes, bracket depth, ... or your own (see
        ``charrnn_magic.units.find_units``; ``options`` go to ``trace``)."""
        from .units import find_units
        return find_units(self.trace(text, **options), features, top)

    def inspect(self, text: str, **options):
        """A panel (ipywidgets) that colours ``text`` by any unit's activation, with the
        model's predictions, the unit finder and gate saturation (see
        ``charrnn_magic.notebook.inspector``); opens the notebook layer only when called."""
        from .notebook.inspector import inspector_panel
        return inspector_panel(self, text, **options)

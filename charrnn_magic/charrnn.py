"""``CharRNN``: the one object users (and the notebook front ends) train, sample, evaluate and save.

    >>> from charrnn_magic import CharRNN
    >>> model = CharRNN(cell="lstm", hidden_size=128, layers=2)     # or CharRNN() for the classic
    >>> history = model.fit(text, steps=2000, seed=1)               # or minutes=, epochs=, target_loss=
    >>> model.sample(length=200, temperature=0.8, prime="ROMEO:")
    >>> model.evaluate(other_text)                                  # mean nats per character
    >>> model.save("shakespeare.safetensors"); CharRNN.load("shakespeare.safetensors")
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
from pathlib import Path

import numpy as np

from . import checkpoint
from .data import (VAL_MAX_CHARS, LineBatches, StreamBatches, line_spans, split_lines,
                   split_stream, validation_lines)
from .memory import keep_freed_memory
from .model import Network
from .optim import DEFAULT_LR, OPTIMIZERS
from .sampling import MIN_TEMPERATURE, generate
from .text import check_no_surrogates, normalize
from .train import History, StopRules, mean_loss, run
from .vocab import Vocab, describe_chars

CELL_NAMES = ("rnn", "lstm", "gru")
MODES = ("stream", "lines")
DTYPES = ("float32", "float64")

#: Training settings, and what ``None`` means for each on a model's first fit.
TRAIN_DEFAULTS = {
    "mode": "stream", "seq_length": 25, "batch_size": None, "optimizer": "adagrad", "lr": None,
    "clip": 5.0, "clip_mode": "value", "val_fraction": 0.1, "lower": False, "lr_schedule": "constant",
    "raw_text": False,
}

#: Named starting points: architecture and training settings together.
PRESETS = {
    "tiny": dict(cell="rnn", hidden_size=64, layers=1, dropout=0.0,
                 seq_length=25, batch_size=16, optimizer="adagrad", lr=0.1),
    # GRUs learned several times faster than LSTMs of the same size here (tinyshakespeare:
    # validation 1.88 after 34 s, where an LSTM 2x256 was still near 3.3), and cost 3/4 as much.
    "default": dict(cell="gru", hidden_size=128, layers=2, dropout=0.1,
                    seq_length=50, batch_size=32, optimizer="adam", lr=0.004, clip=1.0,
                    clip_mode="norm", lr_schedule="cosine"),
    "large": dict(cell="gru", hidden_size=256, layers=2, dropout=0.2,
                  seq_length=50, batch_size=32, optimizer="adam", lr=0.004, clip=1.0,
                  clip_mode="norm", lr_schedule="cosine"),
}
_ARCH_KEYS = ("cell", "hidden_size", "layers", "dropout")


class CharRNN:
    """A character-level recurrent language model in pure NumPy.

    cell: ``"rnn"`` (vanilla tanh RNN, the classic min-char-rnn), ``"lstm"`` or ``"gru"``.
    hidden_size: units per layer. layers: how many recurrent layers are stacked.
    dropout: share of each layer's outputs zeroed during training (0 disables).
    dtype: ``"float32"`` (fast, the default) or ``"float64"``.
    The vocabulary and the weights are made by the first ``fit``.

    Speed knobs (attributes, on the class or one model): ``workers`` (workers sharing each
    batch; by default two for big models), ``worker_process`` (the second worker is a child
    process; default on), ``blas_threads`` (BLAS threads, default one) and ``reuse_memory``
    (keep freed memory for the next step; default on).
    """

    PRESETS = PRESETS
    #: BLAS threads for training and evaluation (sampling always uses one). One is the robust
    #: choice: OpenBLAS's threads spin while they wait for each other, so as soon as anything
    #: else wants a core (a panel sampling beside background training, another process) a step
    #: with two threads became 4-50x slower here, and for the classic RNN's small products two
    #: threads are slower even on an idle machine. On an idle machine, large models (an LSTM
    #: 2x256 at batch 32) do train faster with ``CharRNN.blas_threads = 2``.
    blas_threads = 1
    #: On glibc (most Linux), raise the allocator's mmap and trim thresholds when training first
    #: starts, so each step reuses the last step's memory instead of page-faulting it in again
    #: (measured 20-30 % faster for an LSTM 2x256 at batch 32; see ``memory.py``). It is a change
    #: for the whole process: memory freed later stays with it rather than going back to the OS.
    reuse_memory = True
    #: Workers that share each training batch (1 or 2); None: 2 when a step is big enough for
    #: the second core to pay (see ``workers_from_macs``) and 1 otherwise.
    workers = None
    #: Where the second worker runs: a child process of its own (True: the two halves then share
    #: no GIL; measured 38-40 ms per LSTM 2x256 window against 43-55 ms for a thread), or a
    #: thread (False). Falls back to a thread, with a warning, where no process can start.
    worker_process = True
    #: Multiply-adds of one step's recurrent products (batch x hidden x gates*hidden x layers)
    #: from which ``workers=None`` uses two, with the second worker in a child process. Measured
    #: at batch 32, two workers against one: GRU 2x64 (0.8 M) 0.97x, LSTM 2x64 (1.0 M) 1.20x,
    #: RNN 200 (1.3 M) 1.17x, GRU 2x128 (3.1 M) 1.44x, LSTM 2x128 (4.2 M) 1.48x.
    workers_from_macs = 1_000_000
    #: The same with the second worker in a thread (``worker_process = False``, or no POSIX):
    #: the threads' shared GIL costs more, so only bigger steps pay.
    thread_workers_from_macs = 8_000_000

    def __init__(self, cell: str = "rnn", hidden_size: int = 100, layers: int = 1,
                 dropout: float = 0.0, dtype: str = "float32"):
        if cell not in CELL_NAMES:
            raise ValueError(f"cell={cell!r} is not a cell type: use one of {', '.join(CELL_NAMES)}")
        _check_int("hidden_size", hidden_size, 1)
        _check_int("layers", layers, 1)
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"dropout={dropout!r} is out of range: use a number from 0 up to (not including) 1")
        try:
            dtype_name = np.dtype(dtype).name
        except TypeError:
            dtype_name = None
        if dtype_name not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is not supported: use 'float32' or 'float64'")
        self.cell, self.hidden_size, self.layers = cell, int(hidden_size), int(layers)
        self.dropout, self.dtype = float(dropout), dtype_name
        self.vocab: Vocab | None = None
        self.step = 0
        self.history = History()
        self._net: Network | None = None
        self._optimizer = None
        self._settings: dict = {}
        self._fit_defaults: dict = {}
        self._rng: np.random.Generator | None = None
        self._position: dict | None = None      # where training reads next (see TrainingSession)
        self._lock = threading.Lock()           # guards the weights against a concurrent reader
        self._fit_lock = threading.Lock()       # held while a fit runs

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "CharRNN":
        """A model built from ``PRESETS[name]``; its training settings become ``fit``'s defaults."""
        if name not in PRESETS:
            raise ValueError(f"no preset named {name!r}: use one of {', '.join(PRESETS)}")
        preset = {**PRESETS[name], **overrides}
        model = cls(**{k: preset.pop(k) for k in (*_ARCH_KEYS, "dtype") if k in preset})
        model._fit_defaults = preset
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
        parts = [self.cell, f"{self.layers}x{self.hidden_size}" if self.layers > 1 else str(self.hidden_size)]
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
            clip_mode=None, val_fraction=None, lower=None, lr_schedule=None, raw_text=None,
            seed=None, keep_best=False, eval_every=None, callback=None, stop_event=None) -> History:
        """Train on ``text`` until a stop rule fires; calling it again continues training.

        Stop rules (the first to fire ends training; none given means ``steps=1000``):
        ``steps``, ``epochs`` (passes over the training text), ``minutes``, ``target_loss``
        (smoothed training loss in nats per character).

        Settings (``None`` keeps the previous fit's value, or the default on a first fit):
        ``mode`` ``"stream"`` (one long text, the default) or ``"lines"`` (each line an example);
        ``seq_length`` (25; in lines mode the longest line decides); ``batch_size`` (1 in stream
        mode, as the classic; 32 in lines mode); ``optimizer`` ``"adagrad"`` (the classic, lr 0.1),
        ``"adam"`` (lr 0.002) or ``"sgd"`` (lr 0.1); ``lr``; ``clip`` (5; 0 disables) with
        ``clip_mode`` ``"value"`` (each element, the classic) or ``"norm"`` (the whole gradient);
        ``val_fraction`` held out for validation (0.1: the tail of the text, or a seeded random
        tenth of the lines); ``lower`` to lower-case the text (and later primes and evaluations);
        ``lr_schedule`` ``"cosine"`` to lower the learning rate along half a cosine to 2 % of
        ``lr`` by the end of the run (steps, epochs or minutes; a run with only ``target_loss``
        has no known end, and keeps ``lr``), or ``"constant"`` (the default).
        The text is normalised first (see ``charrnn_magic.text.normalize``): a leading BOM is
        dropped and ``\r\n`` and lone ``\r`` line ends become ``\n``, as are later primes and
        evaluated texts; ``raw_text=True`` keeps every character as given (the model then also
        takes primes and evaluations as they are).

        ``seed`` seeds the weights and the training order when the model is first trained: the same
        seed and settings give bit-identical weights. ``keep_best`` ends with the weights that had
        the best validation loss. ``eval_every``: steps between validations (default: 20 per run).
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
            session = self._prepare(text, steps, epochs, minutes, target_loss, mode=mode,
                                    seq_length=seq_length, batch_size=batch_size, optimizer=optimizer,
                                    lr=lr, clip=clip, clip_mode=clip_mode, val_fraction=val_fraction,
                                    lower=lower, lr_schedule=lr_schedule, raw_text=raw_text,
                                    seed=seed, eval_every=eval_every)
            rules = StopRules(steps=session.run_steps, minutes=minutes, target_loss=target_loss)
            if self.reuse_memory:
                keep_freed_memory()
            with _blas_threads(self.blas_threads):
                return run(session, rules, callback=callback, stop_event=stop_event,
                           eval_every=eval_every, keep_best=keep_best,
                           lr_schedule=self._settings["lr_schedule"],
                           workers=self._training_workers(session.batches.batch_size),
                           worker_process=self.worker_process)
        finally:
            self._fit_lock.release()

    def _training_workers(self, batch_size: int) -> int:
        if self.workers is not None:
            return self.workers if batch_size >= 2 else 1
        gates = self._net.cells[0].gates
        macs = batch_size * self.hidden_size * gates * self.hidden_size * self.layers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        process = self.worker_process and os.name == "posix"
        threshold = self.workers_from_macs if process else self.thread_workers_from_macs
        return 2 if batch_size >= 2 and cores >= 2 and macs >= threshold else 1

    def _prepare(self, text, steps, epochs, minutes, target_loss, *, eval_every, seed, **given):
        """Check everything, then set up vocabulary, weights and data; nothing changes on error."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, not {type(text).__name__}")
        _check_int("steps", steps, 1, optional=True)
        _check_number("epochs", epochs, optional=True)
        _check_number("minutes", minutes, optional=True)
        _check_number("target_loss", target_loss, optional=True)
        _check_int("eval_every", eval_every, 1, optional=True)
        _check_int("seed", seed, 0, optional=True)
        s = self._resolve_settings(given)
        if not s["raw_text"]:
            text = normalize(text)
        if s["lower"]:
            text = text.lower()
        if not text:
            raise ValueError("the text is empty: give some text to train on")
        if self.vocab is None:
            vocab = Vocab.from_text(text + ("\n" if s["mode"] == "lines" else ""))
        else:
            vocab = self.vocab
            if self._settings.get("mode") not in (None, s["mode"]):
                raise ValueError(f"this model was trained in {self._settings['mode']} mode; it cannot "
                                 f"continue in {s['mode']} mode: train a new model for that")
        ids = vocab.encode(text)              # names any character outside the vocabulary
        if len(vocab) < 2 or (s["mode"] == "stream" and ids.min() == ids.max()):
            raise ValueError(f"the text has only one distinct character ({describe_chars(text[:1])}): "
                             "a model needs text with at least two different characters")
        # The seed is settled first: it also picks the validation lines, which must stay the
        # same when training continues. A continued fit carries on with the model's own seed.
        if self._net is None:
            s["seed"] = int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
        else:
            s["seed"] = self._settings["seed"]
        session = TrainingSession(self, vocab, ids, s)
        if steps is None and epochs is None and minutes is None and target_loss is None:
            steps = 1000
        session.run_steps = steps if epochs is None else (
            min(steps or math.inf, max(1, round(epochs * session.batches.batches_per_epoch))))

        # Everything is valid: from here on the model changes.
        if self._net is None:
            self._rng = np.random.default_rng(s["seed"])
            self.vocab = vocab
            self._net = Network(self.cell, len(vocab), self.hidden_size, self.layers, self.dropout, self.dtype)
            self._net.init_weights(self._rng)
        opt = self._optimizer
        if opt is None or opt.name != s["optimizer"]:
            self._optimizer = OPTIMIZERS[s["optimizer"]](self._net.size, self._net.dtype, s["lr"])
        self._optimizer.lr = s["lr"]
        self._settings = s
        session.attach()
        return session

    def _resolve_settings(self, given: dict) -> dict:
        previous = self._settings or {**TRAIN_DEFAULTS, **self._fit_defaults}
        s = {k: (previous.get(k) if v is None else v) for k, v in given.items()}
        if s["mode"] not in MODES:
            raise ValueError(f"mode={s['mode']!r} is not a data mode: use 'stream' or 'lines'")
        if s["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"optimizer={s['optimizer']!r} is not supported: use one of {', '.join(OPTIMIZERS)}")
        if given["optimizer"] is not None and given["lr"] is None and given["optimizer"] != previous.get("optimizer"):
            s["lr"] = None                      # a new optimiser starts from its own default rate
        if s["batch_size"] is None:
            s["batch_size"] = 32 if s["mode"] == "lines" else 1
        if s["lr"] is None:
            s["lr"] = DEFAULT_LR[s["optimizer"]]
        _check_int("seq_length", s["seq_length"], 1)
        _check_int("batch_size", s["batch_size"], 1)
        _check_number("lr", s["lr"], what="a positive learning rate such as 0.1")
        _check_number("clip", s["clip"], minimum=0, what="0 (no clipping) or a positive bound such as 5")
        if s["clip_mode"] not in ("value", "norm"):
            raise ValueError(f"clip_mode={s['clip_mode']!r} is not supported: use 'value' or 'norm'")
        vf = s["val_fraction"]
        if not (isinstance(vf, (int, float)) and 0 <= vf < 1):
            raise ValueError(f"val_fraction={vf!r} is out of range: use a number from 0 up to (not including) 1")
        if s["lr_schedule"] not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule={s['lr_schedule']!r} is not supported: use 'constant' or 'cosine'")
        s["lower"], s["raw_text"] = bool(s["lower"]), bool(s["raw_text"])
        s["clip"], s["lr"], s["val_fraction"] = float(s["clip"]), float(s["lr"]), float(vf)
        return s

    # ------------------------------------------------------------------ sampling
    def sample(self, length: int = 200, temperature: float = 1.0, prime: str | None = None,
               seed_char: str | None = None, top_k: int | None = None, top_p: float | None = None,
               stop=..., count: int = 1, seed: int | None = None):
        """Generate text. Returns a str, or a list of ``count`` strs when ``count > 1``.

        ``prime``: text fed through the network first (not repeated in the result); ``seed_char``:
        one character the result starts with. Without either, a stream-mode model starts after a
        newline and a lines-mode model at the start of a line. ``temperature`` 0 is greedy (always
        the likeliest character; so is any temperature below ``MIN_TEMPERATURE``, 1e-6, where
        1/T would overflow); higher is more adventurous. ``top_k`` keeps the k likeliest
        characters, ``top_p`` the smallest set holding that much probability. ``stop``: a character
        that ends a sample (kept in the text); lines-mode models stop at the end of the line (the
        newline is not kept). ``length`` is the most characters returned. ``seed`` makes it
        reproducible; all ``count`` samples are generated together.
        """
        texts, _ = self._sample(length, temperature, prime, seed_char, top_k, top_p, stop, count, seed, False)
        return texts[0] if count == 1 else texts

    def sample_with_probs(self, length: int = 200, temperature: float = 1.0, prime=None, seed_char=None,
                          top_k=None, top_p=None, stop=..., count: int = 1, seed=None):
        """(text, probs): a sample and, for each of its characters, the probability the model gave
        it (at temperature 1; NaN for a seed character, which was given, not generated). With
        ``count > 1``, a list of texts and a list of arrays, the same texts ``sample`` gives."""
        texts, probs = self._sample(length, temperature, prime, seed_char, top_k, top_p, stop, count, seed, True)
        return (texts[0], probs[0]) if count == 1 else (texts, probs)

    def sample_stream(self, length: int = 200, temperature: float = 1.0, prime=None, seed_char=None,
                      top_k=None, top_p=None, stop=..., seed=None):
        """Like ``sample``, but a generator that yields each character as it is produced."""
        plan = self._sample_plan(length, temperature, prime, seed_char, top_k, top_p, stop, 1, seed)
        seed_char = plan.pop("seed_char")
        chars = self.vocab.chars
        if seed_char is not None:
            yield seed_char
        with _blas_threads(1):
            for ids in generate(**plan):
                i = ids[0]
                if i < 0 or (i == plan["stop_id"] and self.mode == "lines"):
                    return
                yield chars[i]

    def _sample(self, length, temperature, prime, seed_char, top_k, top_p, stop, count, seed, with_probs):
        plan = self._sample_plan(length, temperature, prime, seed_char, top_k, top_p, stop, count, seed)
        seed_char = plan.pop("seed_char")                  # lower-cased for a `lower` model
        plan["with_probs"] = with_probs
        with _blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
            steps = list(generate(**plan))
        V, n = len(self.vocab), len(steps)
        # (n, count) -> (count, n); concatenate is ten times faster than stack for many tiny arrays.
        ids = np.concatenate([s[0] if with_probs else s for s in steps] or [np.zeros(0, int)]).reshape(n, count).T
        probs = np.concatenate([s[1] for s in steps]).reshape(n, count).T if with_probs and n else None
        lookup = np.array(self.vocab.chars + [""])          # id -1 (after a stop) decodes to ""
        drop_stop = self.mode == "lines" and plan["stop_id"] is not None
        texts, out_probs = [], []
        for row, prow in zip(ids, probs if with_probs else ids):
            n = len(row) if not (row < 0).any() else int(np.argmax(row < 0))
            if drop_stop and n and row[n - 1] == plan["stop_id"]:
                n -= 1
            text = "".join(lookup[np.where(row[:n] < 0, V, row[:n])])
            p = prow[:n].astype(float) if with_probs else None
            if seed_char is not None:
                text = seed_char + text
                if with_probs:
                    p = np.concatenate(([np.nan], p))
            texts.append(text)
            out_probs.append(p)
        return texts, out_probs

    def _sample_plan(self, length, temperature, prime, seed_char, top_k, top_p, stop, count, seed):
        """Check the sampling arguments and turn them into ``generate``'s keyword arguments."""
        if not self.is_trained:
            raise ValueError("the model is not trained yet: call fit(text) first")
        _check_int("length", length, 0)
        _check_int("count", count, 1)
        _check_int("top_k", top_k, 1, optional=True)
        _check_int("seed", seed, 0, optional=True)
        _check_number("temperature", temperature, minimum=0, what="0 (greedy) or more, such as 0.8")
        if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
            raise ValueError(f"top_p={top_p!r} is out of range: use a number above 0 and at most 1")
        if prime is not None and seed_char is not None:
            raise ValueError("give either prime or seed_char, not both")
        lines = self.mode == "lines"
        if isinstance(prime, str):
            check_no_surrogates(prime, "prime")
            prime = self._normalized(prime)
        if isinstance(seed_char, str):
            check_no_surrogates(seed_char, "seed_char")
        if self._settings.get("lower"):
            prime = prime.lower() if prime else prime
            seed_char = seed_char.lower() if seed_char else seed_char
        vocab = self.vocab
        if seed_char is not None:
            if not (isinstance(seed_char, str) and len(seed_char) == 1):
                raise ValueError(f"seed_char={seed_char!r} must be exactly one character")
            self._check_known(seed_char, "seed_char")
        if prime is not None:
            if not isinstance(prime, str):
                raise ValueError(f"prime must be a str, not {type(prime).__name__}")
            self._check_known(prime, "prime")
        newline = vocab.chars.index("\n") if "\n" in vocab else None
        if stop is ...:
            stop = "\n" if lines else None
        if stop is not None:
            if not (isinstance(stop, str) and len(stop) == 1):
                raise ValueError(f"stop={stop!r} must be one character or None")
            self._check_known(stop, "stop")
        start_text = prime or seed_char or ""
        context = list(vocab.encode(start_text)) if start_text else []
        if lines or not context:
            default = newline if newline is not None else (vocab.chars.index(" ") if " " in vocab else 0)
            context = [default] + context
        if seed_char is not None:
            length -= 1
        with self._lock:
            flat = self._net.flat.copy()
        return dict(seed_char=seed_char, net=self._net, flat=flat, start_ids=context, length=max(0, length),
                    temperature=0.0 if temperature < MIN_TEMPERATURE else float(temperature),
                    top_k=top_k, top_p=top_p,
                    stop_id=None if stop is None else vocab.chars.index(stop), count=count,
                    rng=np.random.default_rng(seed))

    def _check_known(self, text: str, what: str):
        missing = self.vocab.missing(text)
        if missing:
            raise ValueError(f"{what} has character(s) outside the model's vocabulary: "
                             f"{describe_chars(missing)}; use characters the model was trained on")

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
        ids = self.vocab.encode(text)                  # names any character it does not know
        newline = self.vocab.chars.index("\n") if "\n" in self.vocab else None
        spans = None
        if self.mode == "lines":
            spans = line_spans(ids, newline)
            if not len(spans[0]):
                raise ValueError("the text has no non-empty lines to evaluate")
        elif len(ids) < 2:
            raise ValueError("the text is too short to evaluate: give at least two characters")
        with self._lock, _blas_threads(self.blas_threads):
            return float(mean_loss(self._net, ids, self.mode, newline, spans))

    def _normalized(self, text: str) -> str:
        """``text`` as this model's training text was taken: normalised, unless fit with
        ``raw_text=True``."""
        return text if self._settings.get("raw_text") else normalize(text)

    def bits_per_char(self, text: str) -> float:
        """Mean loss of ``text`` in bits per character."""
        return self.evaluate(text) / math.log(2)

    # ------------------------------------------------------------------ files
    def save(self, path) -> Path:
        """Save everything needed to sample or to resume training exactly (safetensors file,
        written atomically: an interrupted save never destroys an existing file)."""
        if self._net is None:
            raise ValueError("the model is not trained yet: there is nothing to save")
        with self._lock:
            tensors = {f"weights/{k}": v.copy() for k, v in self._net.params.items()}
            tensors.update({f"optimizer/{k}": v.copy() for k, v in self._optimizer.state.items()})
            meta = {
                "vocab": self.vocab.chars, "config": self.config(), "step": self.step,
                "optimizer": {"name": self._optimizer.name, "t": self._optimizer.t},
                "rng": self._rng.bit_generator.state,
                "history": {"interrupted": self.history.interrupted, "stop_reason": self.history.stop_reason},
            }
            if self._position is not None:
                pos = self._position
                meta["position"] = {k: pos[k] for k in ("key", "epoch", "index")}
                for l, layer_state in enumerate(pos["state"] or []):
                    for j, a in enumerate(layer_state):
                        tensors[f"position/state{l}.{j}"] = a
                if pos["order"] is not None:
                    tensors["position/order"] = pos["order"]
        for name in ("step", "loss", "val_step", "val_loss"):
            tensors[f"history/{name}"] = np.asarray(getattr(self.history, name), dtype=np.float64)
        return checkpoint.write(path, tensors, meta)

    @classmethod
    def load(cls, path) -> "CharRNN":
        """A model saved with ``save``; a ValueError names what is wrong with a bad file."""
        tensors, meta = checkpoint.read(path)
        try:
            config = meta["config"]
            model = cls(**{k: config[k] for k in (*_ARCH_KEYS, "dtype")})
            model.vocab = Vocab(meta["vocab"])
            model._settings = {k: v for k, v in config.items() if k not in (*_ARCH_KEYS, "dtype")}
            net = Network(model.cell, len(model.vocab), model.hidden_size, model.layers, model.dropout, model.dtype)
            for name, view in net.params.items():
                view[...] = _tensor(tensors, f"weights/{name}", view.shape, path)
            opt = OPTIMIZERS[meta["optimizer"]["name"]](net.size, net.dtype, model._settings["lr"])
            for name, buf in opt.state.items():
                buf[...] = _tensor(tensors, f"optimizer/{name}", buf.shape, path)
            opt.t = int(meta["optimizer"]["t"])
            model._net, model._optimizer, model.step = net, opt, int(meta["step"])
            model._rng = np.random.default_rng()
            model._rng.bit_generator.state = meta["rng"]
            if "position" in meta:
                pos = dict(meta["position"])
                state_keys = sorted(k for k in tensors if k.startswith("position/state"))
                pos["state"] = None
                if state_keys:
                    pos["state"] = [tuple(tensors[f"position/state{l}.{j}"] for j in range(c.state_size))
                                    for l, c in enumerate(net.cells)]
                pos["order"] = tensors.get("position/order")
                model._position = pos
            h = model.history
            h.step, h.val_step = [int(x) for x in tensors["history/step"]], [int(x) for x in tensors["history/val_step"]]
            h.loss, h.val_loss = tensors["history/loss"].tolist(), tensors["history/val_loss"].tolist()
            h.interrupted, h.stop_reason = meta["history"]["interrupted"], meta["history"]["stop_reason"]
        except (KeyError, TypeError) as e:
            raise ValueError(f"{str(path)!r} is an incomplete charrnn_magic checkpoint (missing {e})") from None
        return model

    # ------------------------------------------------------------------ notebook
    def panel(self, **options):
        """The live sampling panel (ipywidgets) for this model; ``options`` set the controls'
        starting values (see ``charrnn_magic.notebook.sampler_panel``). The one place the engine
        reaches up to the notebook layer, and only when called."""
        from .notebook.panel import sampler_panel
        return sampler_panel(self, **options)


class TrainingSession:
    """The data of one fit call, and where in it training reads next.

    The read position lives on the model (``model._position``) so that a later fit on the same
    text and settings, or a saved and loaded model, carries on exactly where this one stopped:
    which epoch and batch, the hidden state each stream carries (stream mode), the shuffled order
    of the lines (lines mode).
    """

    def __init__(self, model, vocab, ids, s):
        self.model, self.mode = model, s["mode"]
        self.newline = vocab.chars.index("\n") if "\n" in vocab else None
        self.val_spans = None
        if self.mode == "stream":
            train, val = split_stream(ids, s["val_fraction"])
            val = val[:VAL_MAX_CHARS]             # validation time bounded, whatever the text
            self.val_ids = val if len(val) >= 2 else None
            self.batches = StreamBatches(train, s["batch_size"], s["seq_length"])
            s["seq_length"] = self.batches.seq_length
        else:
            starts, lengths = line_spans(ids, self.newline)
            (ts, tl), (vs, vl) = split_lines(starts, lengths, s["val_fraction"], s["seed"])
            self.val_ids, self.val_spans = (ids if len(vs) else None), validation_lines(vs, vl)
            self.batches = LineBatches(ids, ts, tl, s["batch_size"], self.newline)
        digest = _digest(ids)
        self.key = f"{self.mode}:{s['batch_size']}:{s['seq_length']}:{s['val_fraction']}:{digest}"
        self.run_steps = None

    def attach(self):
        pos = self.model._position
        if pos is None or pos["key"] != self.key:
            self.model._position = {"key": self.key, "epoch": 0, "index": None, "state": None, "order": None}

    def next_batch(self):
        pos, net = self.model._position, self.model._net
        if pos["index"] is None or pos["index"] >= self.batches.batches_per_epoch:
            pos["epoch"] += pos["index"] is not None
            pos["index"] = 0
            if self.mode == "stream":
                pos["state"] = net.initial_state(self.batches.batch_size)     # reset at the wrap
            else:
                pos["order"] = self.batches.epoch_order(self.model._rng)
        if self.mode == "stream":
            return (*self.batches.batch(pos["index"]), pos["state"])
        return (*self.batches.batch(pos["index"], pos["order"]), net.initial_state(self.batches.batch_size))

    def advance(self, new_state):
        pos = self.model._position
        pos["index"] += 1
        if self.mode == "stream":
            pos["state"] = new_state

    def validation_loss(self):
        if self.val_ids is None:
            return None
        return float(mean_loss(self.model._net, self.val_ids, self.mode, self.newline, self.val_spans))


def _digest(ids: np.ndarray) -> str:
    """A short hash of the text's ids, over their bytes in place (no copy of a big text: a
    copy as int32 bytes took 15 s for 1 GB here, the bytes themselves 2 s)."""
    return hashlib.sha1(memoryview(np.ascontiguousarray(ids))).hexdigest()[:16]


def _tensor(tensors, name, shape, path):
    if name not in tensors:
        raise ValueError(f"{str(path)!r} is an incomplete checkpoint: tensor {name!r} is missing")
    t = tensors[name]
    if t.shape != tuple(shape):
        raise ValueError(f"{str(path)!r} does not match its own configuration: tensor {name!r} has shape "
                         f"{t.shape}, expected {tuple(shape)}")
    return t


def _check_int(name, value, minimum, optional=False):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is out of range: use a whole number of at least {minimum}")


def _check_number(name, value, minimum=None, optional=False, what="a positive number"):
    if value is None and optional:
        return
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= minimum if minimum is not None else value > 0)
    if not ok:
        raise ValueError(f"{name}={value!r} is out of range: use {what}")


_controller = None


def _blas_threads(n):
    """A context that limits BLAS to ``n`` threads (threadpoolctl, created once: inspecting the
    loaded libraries is the slow part)."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")

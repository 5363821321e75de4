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

from . import checkpoint, evaluation, sampling, timeline
from .blas_threads import blas_threads
from .network import Network
from .sampling import LINE_END, SampleRequest
from .session import prepare_fit
from .settings import (
    ARCH_KEYS,
    AUTO,
    PRESETS,
    check_architecture,
    check_int,
    with_training_settings,
)
from .train import History, run
from .vocab import Vocab
from .workers import Workers, where_training_runs

__all__ = ["CharRNN", "PRESETS", "ARCH_KEYS", "LINE_END"]

class CharRNN:
    """A character-level recurrent language model in pure NumPy.

    cell: ``"rnn"`` (vanilla tanh RNN, the classic min-char-rnn), ``"lstm"`` or ``"gru"``.
    hidden_size: units per layer. layers: how many recurrent layers are stacked.
    dropout: share of each layer's outputs zeroed during training (0 disables).
    dtype: ``"float32"`` (fast, the default) or ``"float64"``.
    Each of ``cell``, ``hidden_size``, ``layers`` and ``dropout`` left out (None) is chosen by the
    first ``fit`` from the size of the text and the time budget (the rule is in
    ``charrnn_magic/defaults_from_text.py``; ``fit_notes`` then says what was chosen and why).
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
    @with_training_settings
    def fit(self, text: str, steps: int | None = None, epochs: float | None = None,
            minutes: float | None = None, target_loss: float | None = None, *,
            seed=None, keep_best=None, patience=None, full_validation=False, eval_every=None,
            callback=None, stop_event=None, **settings) -> History:
        """Train on ``text`` until a stop rule fires; calling it again continues training.

        Stop rules (the first to fire ends training; none given means ``steps=1000``, or, for a
        short text learned whole, the end of the first pass after which a greedy sample recites
        it, within at most 200 passes; in lines mode, 60 passes):
        ``steps``, ``epochs`` (passes over the training text), ``minutes``, ``target_loss``
        (smoothed training loss in nats per character). ``minutes`` without ``steps`` or
        ``epochs`` also stops after at most 15 passes (more for a text under 100,000
        characters: ``defaults_from_text.most_passes``), unless the model comes from a named
        preset: more passes did not pay on the texts measured.

        Settings (keyword-only; ``None`` keeps the previous fit's value; on a first fit, the
        preset's, else the one chosen from the size of the text, see
        ``charrnn_magic/defaults_from_text.py``):

        {training_settings}

        What a fit chose by itself is in ``fit_notes``: the settings on a first fit, the cap on
        passes on any fit given only ``minutes``.

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
            session, rules = prepare_fit(
                self, text, steps, epochs, minutes, target_loss, seed=seed, eval_every=eval_every,
                full_validation=full_validation, **settings)
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
        return timeline.model_at_step(self, step)

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
        request = SampleRequest(length, temperature, prime, seed_char, top_k, top_p, stop, count,
                                seed)
        texts, _ = sampling.sample_texts(self, request, with_probs=False)
        return texts[0] if count == 1 else texts

    def sample_with_probs(self, length: int = 200, temperature: float = 1.0, prime=None,
                          seed_char=None, top_k=None, top_p=None, stop=LINE_END, count: int = 1,
                          seed=None):
        """(text, probs): a sample and, for each of its characters, the probability the model gave
        it (at temperature 1; NaN for a seed character, which was given, not generated). With
        ``count > 1``, a list of texts and a list of arrays, the same texts ``sample`` gives."""
        request = SampleRequest(length, temperature, prime, seed_char, top_k, top_p, stop, count,
                                seed)
        texts, probs = sampling.sample_texts(self, request, with_probs=True)
        return (texts[0], probs[0]) if count == 1 else (texts, probs)

    def sample_stream(self, length: int = 200, temperature: float = 1.0, prime=None, seed_char=None,
                      top_k=None, top_p=None, stop=LINE_END, seed=None):
        """Like ``sample``, but a generator that yields each character as it is produced (the
        arguments are checked at the call, before the first character)."""
        request = SampleRequest(length, temperature, prime, seed_char, top_k, top_p, stop, 1, seed)
        return sampling.stream_chars(self, request)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, text: str) -> float:
        """Mean loss of ``text`` under the model, in nats per character (lower is better): the
        measure of the validation losses in ``history``, so the two compare directly. A text of
        more than 2,000 characters is cut into up to 64 streams read side by side, each from a
        fresh state (a lines-mode model reads each line from a fresh state), so each stream's
        first characters are predicted with less context than in ``trace(text).mean_loss``,
        which reads the whole text as one stream: this figure is slightly higher on a long
        text (see ``charrnn_magic.trace``)."""
        return evaluation.evaluate(self, text)

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
        """The live sampling panel (ipywidgets); ``options`` set the controls' starting values
        (see ``charrnn_magic.notebook.panel``). Opens the notebook layer only when called."""
        from .notebook.panel import sampler_panel
        return sampler_panel(self, **options)

    def export_html(self, path, **options):
        """Write the model as one self-contained web page that samples and shows its units with
        no Python and no network (see ``charrnn_magic.web.export``; options ``float32``,
        ``probe``, ``title``, ``name``). Returns the path written."""
        from .web.export import export_html
        return export_html(self, path, **options)

    def page(self, **options):
        """The same page, shown live in the notebook's output (an ``<iframe srcdoc>`` that keeps
        working in the saved notebook, nbconvert's HTML and nbviewer)."""
        from .web.export import page
        return page(self, **options)

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
        ``charrnn_magic.unit_finder.find_units``; ``options`` go to ``trace``)."""
        from .unit_finder import find_units
        return find_units(self.trace(text, **options), features, top)

    def inspect(self, text: str, **options):
        """A panel (ipywidgets) that colours ``text`` by any unit's activation, with the
        model's predictions, the unit finder and gate saturation (see
        ``charrnn_magic.notebook.inspector``); opens the notebook layer only when called."""
        from .notebook.inspector import inspector_panel
        return inspector_panel(self, text, **options)

    # ------------------------------------------------------------------ PyTorch
    def to_torch(self):
        """This model as a ``torch.nn.Module`` with the same weights, to train on in PyTorch
        (on any device): ``nn.Embedding`` -> ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (``batch_first``)
        -> ``nn.Linear``; ``module(ids)`` gives ``(logits, state)``. See
        ``charrnn_magic.torch_bridge``. Needs PyTorch (``pip install torch``)."""
        from .torch_bridge import to_torch
        return to_torch(self)

    @classmethod
    def from_torch(cls, module, vocab) -> "CharRNN":
        """A model from a PyTorch char-model (``nn.Embedding`` -> fused cell -> ``nn.Linear``,
        or its state_dict) and its ``vocab`` (a ``Vocab``, or the characters in id order as a
        str or list). See ``charrnn_magic.torch_bridge``. Needs PyTorch."""
        from .torch_bridge import from_torch
        return from_torch(cls, module, vocab)

"""IPython magics: train a character-level RNN on a cell's text and sample from it.

Load with ``%load_ext charrnn_magic`` (or ``c.InteractiveShellApp.extensions =
["charrnn_magic"]`` in ``ipython_config.py``). Then::

    %%charrnn_train --steps 2000
    The text to learn from, as many lines as you like ...

    %charrnn_sample -n 300 -t 0.8

The magics are ``%%charrnn_train`` / ``%charrnn_train``, ``%charrnn_sample``,
``%charrnn_panel``, ``%%charrnn_inspect`` / ``%charrnn_inspect``, ``%charrnn_save``,
``%charrnn_load``, ``%charrnn_list`` and ``%charrnn_info``; ``%charrnn_train?`` (and so on)
shows the full help of each.

Defaults are traitlets of :class:`CharRNNMagics`: ``%config CharRNNMagics`` lists them,
``%config CharRNNMagics.hidden_size = 256`` changes one for the session, and
``c.CharRNNMagics.hidden_size = 256`` in ``ipython_config.py`` for good.

Every mistake (no model yet, unknown name, empty cell, bad file, unknown character,
out-of-range number, unknown option) raises a plain :class:`~IPython.core.error.UsageError`
with a one-line message; nothing already trained or saved is lost by a mistake.
"""
from __future__ import annotations

import contextlib
import difflib
import keyword
import math
import os
import shlex
import warnings

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, argument_group, kwds, magic_arguments
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode

from ..cells import CELLS
from ..charrnn import CharRNN
from ..corpora import CORPORA, DEFAULT_CORPUS, load_corpus
from ..data import HOLDOUTS, MODES, LongLinesCut
from ..model import DTYPES
from ..optim import CLIP_MODES, OPTIMIZERS
from ..settings import ARCH_KEYS, AUTO, PRESETS
from ..text import check_no_surrogates, normalize
from ..trace import MAX_CHARS as MAX_TRACE_CHARS
from ..train import LR_SCHEDULES, TrainingDiverged
from ..vocab import Vocab, describe_chars, describe_missing
from . import export_magics
from .display import Sample, SampleList, mark_printed
from .options import (
    described,
    listed,
    looks_numeric,
    number_in,
    one_of,
    option_of,
    parse_char,
    read_text_file,
    split_line,
    unescape,
    whole_number,
)
from .progress import make_reporter

__all__ = ["CharRNNMagics", "load_ipython_extension", "unload_ipython_extension"]

#: fit settings that a preset or a %config default may provide.
TRAIN_KEYS = ("mode", "seq_length", "batch_size", "optimizer", "lr", "clip", "clip_mode",
              "val_fraction", "holdout", "eval_every", "lr_schedule", "weight_decay")
STOP_KEYS = ("steps", "epochs", "minutes", "target_loss")
#: What %charrnn_inspect --colour can start with.
INSPECT_COLOURS = ("activation", "surprise", "ngram")


@contextlib.contextmanager
def _warnings_as_lines(quiet: bool):
    """The engine's notes (e.g. ``LongLinesCut``) printed as one plain line each (nothing when
    ``quiet``), instead of Python's two-line warning with a source line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", LongLinesCut)
        warnings.showwarning = lambda message, *_, **__: (
            None if quiet else print(f"note: {message}"))
        yield


def _from_preset(trait_type, *choices, what: str, option: str):
    """A configurable default of an option; None (the default) leaves it to the preset."""
    return trait_type(*choices, None, allow_none=True, help=(
        f"{what} ({option}); None: from the preset, else the engine's default.")).tag(config=True)


@magics_class
class CharRNNMagics(Magics):
    """Train character-level RNNs on text from cells, files or built-in corpora, and sample.

    The traits below are the defaults of the magics' options (``%config CharRNNMagics``).
    ``None`` means: take it from the preset (``preset``), else chosen from the text by the
    engine (the rule in ``charrnn_magic/defaults.py``, the same for the Python API and
    ``python -m charrnn_magic``).
    """

    default_name = Unicode("charrnn", help="Variable a model is bound to when NAME is not given.") \
        .tag(config=True)
    preset = Unicode(AUTO, allow_none=True, help=(
        f"Preset for new models ({', '.join(PRESETS)}), filling the settings that are not "
        "given as options or configured here. auto (or None): chosen from the text; classic: "
        "the classic vanilla RNN 100 with Adagrad.")).tag(config=True)
    cell = _from_preset(CaselessStrEnum, list(CELLS), what="Cell of new models",
                        option="--cell")
    hidden_size = _from_preset(Int, what="Hidden units per layer", option="--hidden")
    layers = _from_preset(Int, what="Stacked recurrent layers", option="--layers")
    dropout = _from_preset(Float, what="Dropout between layers", option="--dropout")
    dtype = _from_preset(CaselessStrEnum, list(DTYPES), what="Type of the weights",
                         option="--dtype")
    mode = _from_preset(CaselessStrEnum, list(MODES), what="Data mode", option="--mode")
    seq_length = _from_preset(Int, what="Characters per window", option="--seq-length")
    batch_size = _from_preset(Int, what="Sequences per step", option="--batch-size")
    optimizer = _from_preset(CaselessStrEnum, list(OPTIMIZERS), what="Optimizer",
                             option="--optimizer")
    lr = _from_preset(Float, what="Learning rate", option="--lr")
    clip = _from_preset(Float, what="Gradient clipping bound, 0 = off", option="--clip")
    clip_mode = _from_preset(CaselessStrEnum, list(CLIP_MODES),
                             what="Clip each value or the global norm", option="--clip-mode")
    lr_schedule = _from_preset(CaselessStrEnum, list(LR_SCHEDULES),
                               what="Learning-rate schedule", option="--lr-schedule")
    weight_decay = _from_preset(Float, what="Weight decay per step, times the learning rate",
                                option="--weight-decay")
    val_fraction = _from_preset(Float, what="Share of the text held out",
                                option="--val-fraction")
    holdout = _from_preset(CaselessStrEnum, list(HOLDOUTS), option="--holdout",
                           what="Where stream mode holds its validation part out")
    eval_every = _from_preset(Int, what="Steps between validations", option="--eval-every")
    steps = Int(None, allow_none=True, help=(
        "Steps when no stop rule is given (--steps); None: the engine's 1000 (a short text "
        "learned whole: until it is recited).")).tag(config=True)
    minutes = Float(None, allow_none=True, help=(
        "Time budget when no stop rule is given (--minutes); None: no budget.")).tag(config=True)
    sample_every = Int(None, allow_none=True, help=(
        "Steps between preview samples while training (--sample-every); None: five previews "
        "per run when the run's steps are known; 0: none.")).tag(config=True)
    preview_length = Int(150, help="Characters in each training preview.").tag(config=True)
    preview_temperature = Float(0.8, help="Temperature of the training previews.").tag(config=True)
    progress = CaselessStrEnum(["auto", "widgets", "text"], "auto", help=(
        "How training shows progress: widgets in a notebook and text elsewhere (auto), or "
        "always one of them.")).tag(config=True)
    sample_length = Int(200, help="Default -n of %charrnn_sample.").tag(config=True)
    temperature = Float(1.0, help="Default -t of %charrnn_sample.").tag(config=True)
    quiet = Bool(False, help="Train without progress output (--quiet).").tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self._current: str | None = None   # NAME of the last model trained or loaded

    # ================================================================ %%charrnn_train
    @magic_arguments()
    # argparse %-formats the usage, and IPython puts one "%" in front of it.
    @kwds(usage="%%charrnn_train [NAME] [options]    (the cell is the text)\n"
                "  %%charrnn_train [NAME] --file PATH | --corpus NAME [options]")
    @argument("name", nargs="?", metavar="NAME",
              help="Variable to bind the model to (default: charrnn).")
    @argument_group("Text")
    @argument("-f", "--file", action="append", metavar="PATH",
              help="Train on a UTF-8 text file; repeat to join several.")
    @argument("--corpus", metavar="NAME", help="Train on a built-in text (see --list-corpora).")
    @argument("--list-corpora", action="store_true", help="List the built-in texts and stop.")
    @argument("--lower", action="store_true", default=None,
              help="Lower-case the text (and later primes) first.")
    @argument("--raw-text", action="store_true", default=None,
              help="Keep the text exactly as given: no BOM dropped, \\r line ends kept.")
    @argument("--mode", type=one_of(*MODES), help=described(MODES))
    @argument_group("Model (new models only)")
    @argument("--preset", type=one_of(*PRESETS),
              help=f"Start from a preset: {', '.join(PRESETS)} (default: auto, chosen from "
                   "the text).")
    @argument("--cell", type=one_of(*CELLS), help=listed(CELLS))
    @argument("--hidden", dest="hidden_size", type=whole_number(1), metavar="N",
              help="Hidden units per layer.")
    @argument("--layers", type=whole_number(1), metavar="N", help="Stacked recurrent layers.")
    @argument("--dropout", type=number_in(0, 1, below=True), metavar="P",
              help="Dropout between layers, 0 to <1.")
    @argument("--dtype", type=one_of(*DTYPES), help=listed(DTYPES, first="fast, the default"))
    @argument_group("Training")
    @argument("--resume", action="store_true",
              help="Continue training the model NAME (optimizer state kept).")
    @argument("--steps", type=whole_number(1), metavar="N",
              help="Train N steps (default 1000; a short text learned whole trains "
              "until a greedy sample recites it, at most 200 passes).")
    @argument("--epochs", type=number_in(0, above=True), metavar="E",
              help="Train E passes over the text.")
    @argument("--minutes", type=number_in(0, above=True), metavar="M", help="Train M minutes.")
    @argument("--target-loss", type=number_in(0, above=True), metavar="L",
              help="Stop when the smoothed loss reaches L nats/char.")
    @argument("--seq-length", type=whole_number(1), metavar="T", help="Characters per window.")
    @argument("--batch-size", type=whole_number(1), metavar="B", help="Sequences per step.")
    @argument("--optimizer", type=one_of(*OPTIMIZERS), metavar="NAME", help=listed(OPTIMIZERS))
    @argument("--lr", type=number_in(0, above=True), metavar="RATE", help="Learning rate.")
    @argument("--clip", type=number_in(0), metavar="C", help="Gradient clipping bound (0: off).")
    @argument("--clip-mode", type=one_of(*CLIP_MODES), metavar="MODE", help=described(CLIP_MODES))
    @argument("--lr-schedule", type=one_of(*LR_SCHEDULES), metavar="KIND",
              help=described(LR_SCHEDULES))
    @argument("--weight-decay", type=number_in(0), metavar="D",
              help="Shrink each weight by lr x D per step (0: off; chosen: 0.1).")
    @argument("--val-fraction", type=number_in(0, 1, below=True), metavar="F",
              help="Share of the text held out for validation (0: none).")
    @argument("--holdout", type=one_of(*HOLDOUTS), metavar="WHERE", help=described(HOLDOUTS))
    @argument("--eval-every", type=whole_number(1), metavar="N", help="Steps between validations.")
    @argument("--keep-best", action="store_true", default=None,
              help="End with the weights of the best validation loss (the default).")
    @argument("--no-keep-best", dest="keep_best", action="store_false",
              help="End with the last weights instead.")
    @argument("--patience", type=whole_number(0), metavar="N",
              help="Stop when validation has not improved for N steps (default: for 3 "
                   "validations and 15%% of the run while it is clearly above its best, or 6 "
                   "and 30%% on a flat plateau; 0: never).")
    @argument("--no-early-stop", dest="patience", action="store_const", const=0,
              help="Never stop early (the same as --patience 0).")
    @argument("--full-validation", action="store_true", default=None,
              help="Validate on all of the held-out text (default: a fixed sample of at most "
                   "100,000 characters).")
    @argument("--seed", type=whole_number(0), metavar="S",
              help="Random seed: same seed and settings, same model.")
    @argument_group("Output")
    @argument("--sample-every", type=whole_number(0), metavar="N",
              help="Show a preview sample every N steps (0: never; default: five per run).")
    @argument("--save", metavar="PATH", help="Save the model to PATH after training.")
    @argument("-q", "--quiet", action="store_true", default=None, help="No progress output.")
    @argument("--background", action="store_true",
              help="Train in a background thread; the notebook stays usable.")
    @line_cell_magic
    def charrnn_train(self, line, cell=None):
        """
        Train a character-level RNN on the cell's text, a file or a built-in corpus.

        The model is bound to NAME in your namespace (default ``charrnn``) and becomes the
        current model of %charrnn_sample. Training shows a progress bar, a loss curve and
        preview samples in a notebook (plain lines in a terminal) and ends with a one-line
        summary. Interrupt the kernel (Ctrl-C, the stop button) to stop early: the model keeps
        everything it learned, and --resume continues from there.

        Examples::

            %%charrnn_train --steps 2000
            Hop, frog, hop! A lily pad waits;
            sing, moon, of big green gates.

            %charrnn_train --corpus verse --minutes 2
            %charrnn_train --list-corpora
            %charrnn_train poems --file poems.txt --file more.txt --cell gru --hidden 256
            %charrnn_train names --file names.txt --mode lines --lower --preset tiny
            %charrnn_train poems --file poems.txt --resume --steps 1000 --lr 0.001
            %charrnn_train --corpus pydoc --background --minutes 30
            %charrnn_train --corpus pydoc --preset large --minutes 10 \\
                --lr-schedule cosine --keep-best

        Settings not given are chosen from the text: the model's size, dropout, batch, window,
        learning rate and weight decay follow from how many characters there are (and
        --minutes), and the
        first line of the progress says what was chosen and why. A text under 2,000 characters
        is learned whole (nothing held out), so a greedy sample recites it. --preset (or
        %config, e.g. ``%config CharRNNMagics.hidden_size = 256``; ``%config CharRNNMagics``
        lists them all) fixes settings instead; ``--preset classic`` is the classic
        min-char-rnn. With a validation part, the model ends with the weights of its best
        validation (--no-keep-best: the last ones) and training stops once validation has not
        improved for 3 validations and 15 % of the run and is clearly above its best, or for 6
        and 30 % on a flat plateau (--patience N, --no-early-stop). With
        --resume the model keeps its architecture and the settings of its last training; options
        change them. Without --steps/--epochs/--minutes/--target-loss, training runs 1000 steps;
        a short text learned whole trains until a greedy sample recites it (tried after each
        pass, at most 200 passes; in lines mode, 60 passes). With several, the first one
        reached stops it. --minutes alone also stops after at most 15 passes over the text
        (more under 100,000 characters; not with --preset): more passes did not pay on the
        texts measured.

        Options ``{expr}`` and ``$var`` are expanded by IPython as in every magic, so
        ``%charrnn_train --file {path}`` works.
        """
        args = self._parse(self.charrnn_train, line, "charrnn_train")
        if args.list_corpora:
            self._print_corpora()
            return None
        name = self._check_name(args.name or self.default_name)
        text, source = self._training_text(args, cell)
        ns = self.shell.user_ns
        old = ns.get(name)
        if old is not None and not is_model(old):
            raise UsageError(f"{name!r} already holds a {type(old).__name__} in your namespace: "
                             f"give the model another NAME (e.g. %charrnn_train {name}_model ...) "
                             f"or `del {name}` first")
        if args.resume:
            model = self._resumable(name, old, args)
        else:
            if old is not None and old.is_training:
                raise UsageError(f"{name!r} is still training in the background: stop it first "
                                 "(its Stop button), or train under another NAME")
            model = self._new_model(args)
        fit_kwargs = self._fit_kwargs(args, resume=args.resume)
        quiet = self.quiet if args.quiet is None else args.quiet

        if args.background:
            return self._train_in_background(name, model, text, fit_kwargs, args, quiet)

        # None: five previews in a run whose length is known (the reporter decides).
        sample_every = args.sample_every if args.sample_every is not None else self.sample_every
        reporter = make_reporter(
            model, name=name, quiet=quiet,
            widgets={"auto": None, "widgets": True, "text": False}[self.progress],
            sample_every=sample_every, sample_length=self.preview_length,
            temperature=self.preview_temperature, target_loss=fit_kwargs.get("target_loss"))
        step = model.step       # the header is made at the first step, once the model is chosen
        reporter.start(lambda: self._header(name, model, text, source, fit_kwargs, step,
                                            reporter.last))
        try:
            with _warnings_as_lines(quiet):
                history = model.fit(text, callback=reporter, **fit_kwargs)
        except TrainingDiverged as exc:
            reporter.fail()
            if args.resume:
                self._current = name   # same object, last finite weights restored by the engine
            raise UsageError(f"{exc} (the model in {name!r} was "
                             f"{'kept with those weights' if args.resume else 'not replaced'})") \
                from None
        except ValueError as exc:      # the engine's word for bad input, before any work
            raise UsageError(str(exc)) from None

        if not model.is_trained:
            # Interrupted before the first step of a new model: keep whatever NAME held.
            reporter.finish(history)
            return None
        ns[name] = model
        self._current = name
        reporter.finish(history)
        if old is not None and old is not model and not quiet:
            print(f"(this replaced the previous model in {name!r}; --resume continues a model "
                  "instead)")
        if history.interrupted and not quiet:
            print(f"to continue: {self._resume_command(name, args, cell)}")
        if args.save:
            self._save(name, model, args.save, quiet)
        return None

    @staticmethod
    def _resume_command(name, args, cell) -> str:
        if cell is not None:
            return f"%%charrnn_train {name} --resume (with the same cell)"
        source = " ".join(f"--file {shlex.quote(f)}" for f in args.file or ()) or (
            f"--corpus {args.corpus}")
        return f"%charrnn_train {name} --resume {source}"

    def _training_text(self, args, cell) -> tuple[str, str]:
        """(text, where it came from), or a UsageError saying how to give text."""
        given = [s for s, on in (("the cell", cell is not None), ("--file", bool(args.file)),
                                 ("--corpus", args.corpus is not None)) if on]
        if len(given) > 1:
            raise UsageError(f"give the text one way only, not {' and '.join(given)}: the cell "
                             "(%%charrnn_train), --file PATH, or --corpus NAME")
        if cell is not None:
            if not cell.strip():
                raise UsageError("the cell is empty: put the text to learn below the "
                                 "%%charrnn_train line, or use %charrnn_train --file PATH "
                                 "or --corpus NAME")
            try:
                check_no_surrogates(cell, "the cell")
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            return cell, "the cell"
        if args.file:
            seen = {}
            for path in args.file:
                try:
                    where = os.path.realpath(os.path.expanduser(path)) if path.strip() else path
                except (ValueError, UnicodeError):        # NUL, lone surrogate: read_text says
                    where = path
                if where in seen:
                    raise UsageError(f"--file {path} is given twice (as {seen[where]!r} too): give "
                                     "each file once (joined twice, its text would be in both "
                                     "the training and the validation part)")
                seen[where] = path
            texts = [read_text_file(path, raw=bool(args.raw_text)) for path in args.file]
            if len(texts) == 1:
                return texts[0], args.file[0]
            # Each file on its own lines, so the last line of one does not run into the next.
            return "".join(t if t.endswith("\n") else t + "\n" for t in texts), \
                f"{len(texts)} files"
        if args.corpus is not None:
            try:
                return load_corpus(args.corpus), f"corpus {args.corpus.strip().lower()}"
            except ValueError as exc:
                raise UsageError(f"{exc} (see %charrnn_train --list-corpora)") from None
        raise UsageError("%charrnn_train needs text: write it in a cell below %%charrnn_train, "
                         "or give --file PATH or --corpus NAME (try --corpus "
                         f"{DEFAULT_CORPUS})")

    def _resumable(self, name, old, args):
        if old is None:
            raise UsageError(f"--resume: there is no model {name!r} to continue; train it first "
                             f"without --resume{self._known_suffix()}")
        if old.is_training:
            raise UsageError(f"{name!r} is already training in the background: stop that run "
                             "first (its Stop button)")
        if args.preset:
            raise UsageError("--preset sets up a new model; it cannot be combined with --resume")
        for key in ARCH_KEYS:
            if getattr(old, key) is None:     # made by hand and never trained: not chosen yet
                setattr(args, key, None)
        for key in ARCH_KEYS:
            value = getattr(args, key)
            if value is not None and value != getattr(old, key):
                raise UsageError(
                    f"{option_of(key)} cannot change when resuming: {name!r} has {key} "
                    f"{getattr(old, key)!r}; drop {option_of(key)}, or train a new model under "
                    "another NAME")
        return old

    def _preset_name(self, args) -> str:
        name = args.preset or self.preset or AUTO
        if name not in PRESETS:
            raise UsageError(f"CharRNNMagics.preset = {name!r} is not a preset: use one of "
                             f"{', '.join(PRESETS)} (or None)")
        return name

    def _settings(self, args, keys) -> dict:
        """What the magic hands to the engine: option > preset named on the line > %config
        default > configured preset (the engine applies the preset, and chooses the rest)."""
        line_preset = PRESETS[self._preset_name(args)] if args.preset else {}
        out = {}
        for key in keys:
            value = getattr(args, key)
            if value is None and key not in line_preset:
                value = getattr(self, key, None)
            if value is not None:
                out[key] = value
        return out

    def _new_model(self, args):
        try:
            return CharRNN.from_preset(self._preset_name(args), **self._settings(args, ARCH_KEYS))
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _fit_kwargs(self, args, resume: bool) -> dict:
        kw = {}
        stop = {k: getattr(args, k) for k in STOP_KEYS if getattr(args, k) is not None}
        if not stop:
            stop = {k: getattr(self, k) for k in ("steps", "minutes")
                    if getattr(self, k) is not None}
        kw.update(stop)
        if resume:
            # Only what the line says: the engine keeps the previous fit's settings for the rest.
            kw.update({k: getattr(args, k) for k in TRAIN_KEYS if getattr(args, k) is not None})
        else:
            kw.update(self._settings(args, TRAIN_KEYS))
        if args.lower:
            kw["lower"] = True
        if args.raw_text:
            kw["raw_text"] = True
        if args.seed is not None:
            kw["seed"] = args.seed
        for key in ("keep_best", "patience", "full_validation"):
            if getattr(args, key) is not None:
                kw[key] = getattr(args, key)
        return kw

    def _header(self, name, model, text, source, fit_kwargs, from_step, progress) -> str:
        size = f"{model.layers}x{model.hidden_size}"
        vocab = len(model.vocab) if model.vocab is not None else len(
            Vocab.from_text(text.lower() if fit_kwargs.get("lower") else text))
        rules = []
        if "steps" in fit_kwargs:
            rules.append(f"{fit_kwargs['steps']:,} steps")
        if "epochs" in fit_kwargs:
            rules.append(f"{fit_kwargs['epochs']:g} epochs")
        if "minutes" in fit_kwargs:
            rules.append(f"{fit_kwargs['minutes']:g} min")
        if "target_loss" in fit_kwargs:
            rules.append(f"until loss {fit_kwargs['target_loss']:g}")
        if not rules and progress is not None and progress.run_steps:
            rules.append(f"{progress.run_steps:,} steps")           # the engine's default
        verb = f"resuming {name} from step {from_step:,}" if from_step else f"training {name}"
        return (f"{verb}: {model.cell} {size}, {len(text):,} characters from {source}, "
                f"vocabulary {vocab}; {' or '.join(rules)}. Interrupt the kernel to stop early.")

    def _train_in_background(self, name, model, text, fit_kwargs, args, quiet):
        if args.save:
            raise UsageError("--save cannot wait for a background run: save with "
                             f"%charrnn_save {name} PATH when it has finished")
        try:
            from .panel import train_in_background
        except ImportError as exc:
            raise UsageError(f"--background needs ipywidgets ({exc}); train without it") from None
        try:
            run = train_in_background(model, text, **fit_kwargs)
        except (ValueError, RuntimeError) as exc:
            raise UsageError(str(exc)) from None
        self.shell.user_ns[name] = model
        self._current = name
        if not quiet:
            print(f"{name} is training in the background: sample it or open %charrnn_panel "
                  f"{name} meanwhile; the Stop button (or .stop() on the returned object) ends it")
        return run

    def _print_corpora(self):
        width = max(map(len, CORPORA))
        print("Built-in texts (%charrnn_train --corpus NAME):")
        for key, description in CORPORA.items():
            print(f"  {key:<{width}}  {description}")

    # ================================================================ %charrnn_sample
    @magic_arguments()
    @argument("name", nargs="?", metavar="NAME",
              help="Model to sample from (default: the last one trained or loaded).")
    @argument("-n", "--length", type=whole_number(0), metavar="LENGTH",
              help="Characters to generate (lines mode: the longest line). Default 200.")
    @argument("-t", "--temperature", type=number_in(0), metavar="T",
              help="0: greedy; <1 safer; >1 wilder. Default 1.0.")
    @argument("-s", "--seed-char", metavar="C",
              help="Start with this character: a, space, newline (\\n), tab.")
    @argument("-p", "--prime", metavar="TEXT",
              help="Feed TEXT first, then continue it (quote it; \\n is a newline).")
    @argument("-k", "--top-k", type=whole_number(1), metavar="K",
              help="Sample among the K likeliest characters only.")
    @argument("--top-p", type=number_in(0, 1, above=True), metavar="P",
              help="Sample among the likeliest characters holding P of the probability.")
    @argument("-c", "--count", type=whole_number(1), metavar="N", help="Make N samples.")
    @argument("-r", "--random-seed", type=whole_number(0), metavar="S",
              help="Seed: the same seed and options give the same text.")
    @argument("--stop", metavar="C", help="End a sample at this character (e.g. newline).")
    @argument("-q", "--quiet", action="store_true", help="Return the text without printing it.")
    @line_magic
    def charrnn_sample(self, line):
        """
        Generate text from a trained model: print it and return it.

        Returns a ``str``; with --count N > 1, a list of N strs (printed one after another,
        each under a ``--- sample i ---`` line; one per line for a lines-mode model). The primed
        text is not repeated in the result; a seed character is (it is the sample's first
        character). The returned value is not
        echoed again as ``Out[n]``.

        Examples::

            %charrnn_sample
            %charrnn_sample -n 500 -t 0.7
            %charrnn_sample poems --prime "The lamplighter " -t 0.5 --top-k 5
            %charrnn_sample --seed-char newline -n 300 --random-seed 42
            %charrnn_sample names --count 10 -t 0.9
            text = %charrnn_sample -n 1000 --quiet
            %charrnn_sample --prime {my_variable}

        Characters the model never saw (in --prime or --seed-char) are named in the error,
        with close ones it knows (other case, no accent).
        """
        args = self._parse(self.charrnn_sample, line, "charrnn_sample")
        name, model = self._model(args.name, trained=True)
        seed_char = parse_char(args.seed_char) if args.seed_char is not None else None
        prime = unescape(args.prime) if args.prime is not None else None
        if prime is not None and not model.config().get("raw_text"):
            prime = normalize(prime)              # as the engine takes it: \r\n is a newline
        if seed_char is not None and prime is not None:
            raise UsageError("give --seed-char or --prime, not both")
        if prime == "":
            raise UsageError("--prime is empty: give the text to continue, e.g. --prime \"The \"")
        options = dict(length=self.sample_length if args.length is None else args.length,
                       temperature=self.temperature if args.temperature is None
                       else args.temperature,
                       top_k=args.top_k, top_p=args.top_p, count=args.count or 1,
                       seed=args.random_seed)
        for what, text in (("--seed-char", seed_char), ("--prime", prime)):
            if text is not None:
                self._check_known(name, model, text, what)
        if seed_char is not None:
            options["seed_char"] = seed_char
        if prime is not None:
            options["prime"] = prime
        if args.stop is not None:
            options["stop"] = parse_char(args.stop, "--stop")
            self._check_known(name, model, options["stop"], "--stop")
        try:
            result = model.sample(**options)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if options["count"] == 1:
            value = Sample(result)
            if not args.quiet:
                print(value)
        else:
            value = SampleList(Sample(s) for s in result)
            if not args.quiet and model.mode == "lines":
                print("\n".join(value))                   # one name (line) each
            elif not args.quiet:
                for i, s in enumerate(value, 1):
                    print(f"--- sample {i} ---")
                    print(s)
        return value if args.quiet else mark_printed(value, self.shell)

    def _check_known(self, name, model, text, what):
        try:
            check_no_surrogates(text, what)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        lower = bool(model.config().get("lower"))
        probe = text.lower() if lower else text
        missing = model.vocab.missing(probe)
        if missing:
            known = "".join(model.vocab.chars)
            raise UsageError(
                f"{what} has {len(missing)} character(s) that {name!r} never saw: "
                f"{describe_missing(missing, model.vocab.chars)}; it knows {len(known)}: "
                f"{describe_chars(model.vocab.chars, limit=30)}")

    # ================================================================ %charrnn_panel
    @magic_arguments()
    @argument("name", nargs="?", metavar="NAME",
              help="Model (default: the last one trained or loaded).")
    @argument("-t", "--temperature", type=number_in(0, 2), metavar="T", help="Start temperature.")
    @argument("-n", "--length", type=whole_number(1), metavar="LENGTH", help="Start length.")
    @argument("-c", "--count", type=whole_number(1), metavar="N", help="Start number of samples.")
    @argument("-k", "--top-k", type=whole_number(0), metavar="K", help="Start top-k (0: off).")
    @argument("-r", "--random-seed", type=whole_number(0), metavar="S", help="Start seed.")
    @line_magic
    def charrnn_panel(self, line):
        """
        Show the live sampling panel of a model: sliders for temperature, length, seed
        character, top-k, and a priming text; the sample updates as you move them.

        Examples::

            %charrnn_panel
            %charrnn_panel poems -t 0.5 -n 400
            panel = %charrnn_panel       # keep a handle: panel.temperature.value = 1.2

        While the model trains in the background (%charrnn_train --background) the panel
        follows it, about once a second.
        """
        args = self._parse(self.charrnn_panel, line, "charrnn_panel")
        name, model = self._model(args.name, trained=True)
        try:
            from .panel import sampler_panel
        except ImportError as exc:
            raise UsageError(f"the panel needs ipywidgets: {exc}") from None
        options = {key: value for key, value in (
            ("temperature", args.temperature), ("length", args.length), ("count", args.count),
            ("top_k", args.top_k), ("seed", args.random_seed)) if value is not None}
        try:
            return sampler_panel(model, **options)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    # ================================================================ %charrnn_inspect
    @magic_arguments()
    @kwds(usage="%%charrnn_inspect [NAME] [options]    (the cell is the text)\n"
                "  %%charrnn_inspect [NAME] --file PATH | --sample N [options]")
    @argument("name", nargs="?", metavar="NAME",
              help="Model (default: the last one trained or loaded).")
    @argument_group("Text (one way; the cell by default)")
    @argument("-f", "--file", metavar="PATH", help="Inspect a UTF-8 text file.")
    @argument("--sample", type=whole_number(1), metavar="N",
              help="Inspect N characters the model writes itself.")
    @argument("-t", "--temperature", type=number_in(0), metavar="T",
              help="Temperature of --sample (default 0.8).")
    @argument("-r", "--random-seed", type=whole_number(0), metavar="S",
              help="Seed of --sample (default 0).")
    @argument("--max-chars", type=whole_number(1), metavar="N",
              help=f"Longest text accepted (default {MAX_TRACE_CHARS:,}).")
    @argument_group("What to show first")
    @argument("--layer", type=whole_number(0), metavar="L", help="Layer (default 0).")
    @argument("--state", metavar="S", help="State: h, c or a gate (i f o g; r z n). Default h.")
    @argument("--unit", type=whole_number(0), metavar="U", help="Unit (default 0).")
    @argument("--colour", type=one_of(*INSPECT_COLOURS), metavar="MODE",
              help=f"{listed(INSPECT_COLOURS, first='the default')}")
    @argument("--window", type=whole_number(1), metavar="N",
              help="Characters per page (at most 3,000; default 2,000).")
    @argument("--step", type=whole_number(1), metavar="K",
              help="The model as it was at training step K (one of model.timeline.steps).")
    @argument_group("The n-gram comparison")
    @argument("--ngram", type=whole_number(0), metavar="N",
              help="Order of the n-gram (default 4; 0: none).")
    @argument("--train-file", metavar="PATH",
              help="Count the n-gram on this file (default: the model's training text).")
    @argument("--train-corpus", metavar="NAME",
              help="Count the n-gram on a built-in text (see %%charrnn_train --list-corpora).")
    @line_cell_magic
    def charrnn_inspect(self, line, cell=None):
        """
        Look inside a model: its units over a text, coloured character by character.

        Opens the inspector panel (``model.inspect``): the text coloured by any unit's
        activation (choose layer, state and unit with the sliders), by the probability the
        model gave each character ("surprise"), or by where it beats an n-gram ("ngram"); the
        5 likeliest next characters in each character's hover text (or under it, with the
        toggle); a unit finder listing the units most correlated with features of the text
        (position in the line, inside quotes, bracket depth, ...); and the gate saturation
        plot of an LSTM or GRU. Returns the panel: ``panel = %charrnn_inspect`` keeps it.

        The text is the cell's (``%%charrnn_inspect``), a file (--file PATH), or the model's
        own writing (--sample N: N characters at temperature -t, default 0.8, seed -r,
        default 0). It may only have characters the model knows.

        The n-gram (order --ngram, default 4) is counted on --train-file or --train-corpus
        when given, else on the text the model was last trained on in this session (the
        whole of it, validation part included); a loaded model does not keep its training
        text, so without --train-file it shows no n-gram comparison. --ngram 0 leaves it out.

        --step K inspects the model as it was at training step K: one of the weight
        snapshots taken while it trained (``model.timeline.steps`` lists them).

        Examples::

            %%charrnn_inspect
            He said "no" (twice), and left.

            %charrnn_inspect --file poem.txt --layer 1 --state c --unit 17
            %charrnn_inspect --sample 2000 -t 0.8
            %charrnn_inspect docs --file notes.txt --train-corpus pydoc --ngram 5
            %charrnn_inspect --sample 1000 --step 200 --colour surprise
            panel = %charrnn_inspect --file poem.txt
        """
        args = self._parse(self.charrnn_inspect, line, "charrnn_inspect")
        name, model = self._model(args.name, trained=True)
        if args.step is not None:
            try:
                model = model.at_step(args.step)
            except ValueError as exc:
                raise UsageError(f"--step: {exc}") from None
        text, what = self._inspected_text(name, model, args, cell)
        max_chars = args.max_chars or MAX_TRACE_CHARS
        if len(text) > max_chars:
            raise UsageError(f"{what} has {len(text):,} characters, more than --max-chars "
                             f"{max_chars:,}: give a shorter text or a larger --max-chars")
        self._check_known(name, model, text, what)
        options = {"max_chars": max_chars}
        for key in ("layer", "state", "unit", "window"):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
        train_text, n = self._ngram_text(name, model, args)
        if train_text is not None:
            options.update(train_text=train_text, n=n)
        if args.colour is not None:
            if args.colour == "ngram" and train_text is None:
                raise UsageError("--colour ngram needs the n-gram's text: give --train-file "
                                 "PATH or --train-corpus NAME (and not --ngram 0)")
            options["colour"] = {"ngram": "vs n-gram"}.get(args.colour, args.colour)
        try:
            from .inspector import inspector_panel
        except ImportError as exc:
            raise UsageError(f"the inspector needs ipywidgets: {exc}") from None
        try:
            return inspector_panel(model, text, **options)
        except ValueError as exc:
            raise UsageError(str(exc).replace("window=", "--window ").replace(
                "layer=", "--layer ").replace("unit=", "--unit ").replace(
                "state=", "--state ")) from None

    def _inspected_text(self, name, model, args, cell) -> tuple[str, str]:
        """(text, how to name it in a message), or a UsageError saying how to give text."""
        given = [s for s, on in (("the cell", cell is not None), ("--file", args.file is not None),
                                 ("--sample", args.sample is not None)) if on]
        if len(given) > 1:
            raise UsageError(f"give the text one way only, not {' and '.join(given)}: the cell "
                             "(%%charrnn_inspect), --file PATH, or --sample N")
        if args.sample is None and (args.temperature is not None or
                                    args.random_seed is not None):
            raise UsageError("-t and -r are for --sample N: add --sample, or leave them out")
        if cell is not None:
            if not cell.strip():
                raise UsageError("the cell is empty: put the text to inspect below the "
                                 "%%charrnn_inspect line, or use %charrnn_inspect --file PATH "
                                 "or --sample N")
            return cell, "the cell"
        if args.file is not None:
            text = read_text_file(args.file)
            if not text:
                raise UsageError(f"--file {args.file!r} is empty: give a file with some text")
            return text, f"--file {args.file!r}"
        if args.sample is not None:
            temperature = 0.8 if args.temperature is None else args.temperature
            seed = 0 if args.random_seed is None else args.random_seed
            try:
                return model.sample(args.sample, temperature=temperature, stop=None,
                                    seed=seed), "the sample"
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        raise UsageError("%charrnn_inspect needs text: write it in a cell below "
                         "%%charrnn_inspect, or give --file PATH, or --sample N for the "
                         f"model's own (e.g. %charrnn_inspect {name} --sample 1000)")

    def _ngram_text(self, name, model, args) -> tuple[str | None, int]:
        """(text to count the n-gram on, or None for no n-gram; its order)."""
        n = 4 if args.ngram is None else args.ngram
        if args.train_file is not None and args.train_corpus is not None:
            raise UsageError("give the n-gram's text one way: --train-file or --train-corpus")
        if n == 0:
            if args.train_file is not None or args.train_corpus is not None:
                raise UsageError("--ngram 0 leaves the n-gram out: drop --train-file / "
                                 "--train-corpus, or give an order of 1 or more")
            return None, 0
        if args.train_file is not None:
            text, what = read_text_file(args.train_file), f"--train-file {args.train_file!r}"
        elif args.train_corpus is not None:
            try:
                text = load_corpus(args.train_corpus)
            except ValueError as exc:
                raise UsageError(f"--train-corpus: {exc}") from None
            what = f"--train-corpus {args.train_corpus}"
        else:
            text, what = getattr(model, "training_text", None), None
            if text is None:
                if args.ngram is not None:
                    raise UsageError(f"--ngram: {name!r} does not keep its training text (it "
                                     "was loaded): give the n-gram's text with --train-file "
                                     "PATH or --train-corpus NAME")
                return None, n
        if model.config().get("lower"):
            text = text.lower()
        if len(text) < 2:
            raise UsageError(f"{what or 'the training text'} is too short for an n-gram")
        if what is not None:
            self._check_known(name, model, text, what)
        if n * math.log2(max(len(model.vocab), 2)) > 62:
            raise UsageError(f"--ngram {n} is too large for {len(model.vocab)} characters: "
                             "use a smaller order")
        return text, n

    # ================================================================ save / load
    @magic_arguments()
    @kwds(usage="charrnn_save [NAME] PATH [--snapshots]")
    @argument("first", metavar="[NAME]", help="Model to save (default: the current one).")
    @argument("path", nargs="?", metavar="PATH", help="File to write (.safetensors).")
    @argument("--snapshots", action="store_true",
              help="Also save the training timeline's weight snapshots.")
    @line_magic
    def charrnn_save(self, line):
        """
        Save a model to a file: weights, vocabulary, settings, optimizer state and history,
        enough to sample or to resume training exactly. The file is written next to its
        final place and then renamed, so a failed save never spoils an existing file.
        The format (safetensors) cannot run code when loaded. --snapshots also saves the weight
        snapshots of the training timeline (``model.timeline``; each as big as the weights),
        so that %charrnn_load brings them back.

        Examples::

            %charrnn_save poems.safetensors          # the current model
            %charrnn_save poems.safetensors --snapshots
            %charrnn_save names names.safetensors    # the model bound to `names`
            %charrnn_save "my models/poems.safetensors"
        """
        args = self._parse(self.charrnn_save, line, "charrnn_save")
        name, path = (None, args.first) if args.path is None else (args.first, args.path)
        name, model = self._model(name)
        if not model.is_trained:
            raise UsageError(f"{name!r} is not trained yet: there is nothing to save")
        self._save(name, model, path, quiet=False, snapshots=args.snapshots)

    def _save(self, name, model, path, quiet, snapshots=False):
        try:
            written = (model.save(os.path.expanduser(path), snapshots=True) if snapshots
                       else model.save(os.path.expanduser(path)))
        except (ValueError, OSError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"could not save {name!r} to {path!r}: {detail} (the model is "
                             "unchanged, and so is any file already there)") from None
        if not quiet:
            print(f"saved {name} ({model.summary()}) to {written}")

    @magic_arguments()
    @argument("path", metavar="PATH", help="A file written by %%charrnn_save or model.save().")
    @argument("name", nargs="?", metavar="NAME", help="Variable to bind it to (default: charrnn).")
    @line_magic
    def charrnn_load(self, line):
        """
        Load a saved model and bind it to NAME (default ``charrnn``); it becomes the current
        model. The file is checked before anything in your namespace changes.

        Examples::

            %charrnn_load poems.safetensors
            %charrnn_load names.safetensors names
            %charrnn_train names --file more_names.txt --resume   # carries on exactly
        """
        args = self._parse(self.charrnn_load, line, "charrnn_load")
        name = self._check_name(args.name or self.default_name)
        old = self.shell.user_ns.get(name)
        if old is not None and not is_model(old):
            raise UsageError(f"{name!r} already holds a {type(old).__name__} in your namespace: "
                             f"load into another NAME (%charrnn_load {args.path} NAME)")
        if old is not None and old.is_training:
            raise UsageError(f"{name!r} is training in the background: stop it first, or load "
                             "into another NAME")
        path = os.path.expanduser(args.path)
        try:
            model = CharRNN.load(path)
        except (ValueError, OSError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"could not load {args.path!r}: {detail}") from None
        self.shell.user_ns[name] = model
        self._current = name
        print(f"loaded {name} = {model.summary()} from {path}")

    # ================================================================ list / info
    @magic_arguments()
    @line_magic
    def charrnn_list(self, line):
        """
        List the models in your namespace: name, cell, size, vocabulary, steps trained and the
        latest losses. ``*`` marks the current model (the one %charrnn_sample uses by default).
        """
        self._parse(self.charrnn_list, line, "charrnn_list")
        models = self._models()
        if not models:
            print("no models yet: train one with %%charrnn_train, or %charrnn_load PATH")
            return
        current = self._current_name()
        rows = [("", "name", "cell", "size", "vocab", "steps", "loss", "val")]
        for key, m in models:
            h = m.history
            rows.append(("*" if key == current else "", key, m.cell,
                         f"{m.layers}x{m.hidden_size}",
                         str(len(m.vocab)) if m.vocab is not None else "-", f"{m.step:,}",
                         f"{h.last_loss:.3f}" if h.last_loss is not None else "-",
                         (f"{h.last_val_loss:.3f}" if h.last_val_loss is not None else "-")
                         + ("  (training)" if m.is_training else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

    @magic_arguments()
    @argument("name", nargs="?", metavar="NAME", help="Model (default: the current one).")
    @line_magic
    def charrnn_info(self, line):
        """
        Describe a model: its summary, parameters, vocabulary, every setting, and where it
        trains (one worker, or two: this process and a child process or a second thread).

        Examples::

            %charrnn_info
            %charrnn_info names
        """
        args = self._parse(self.charrnn_info, line, "charrnn_info")
        name, model = self._model(args.name)
        print(f"{name} = {model.summary()}")
        print(f"  parameters     {model.n_params:,}")
        if model.vocab is not None:
            print(f"  vocabulary     {len(model.vocab)}: "
                  f"{describe_chars(model.vocab.chars, limit=80)}")
        for key, value in model.config().items():
            print(f"  {key:<14} {value}")
        if model.vocab is not None:
            print(f"  {'training on':<14} {model.where_training_runs()}")
        h = model.history
        if h.step:
            how = {"steps": "ran all its steps", "epochs": "ran all its epochs",
                   "minutes": "used its time budget", "target_loss": "reached the target loss",
                   "interrupted": "was interrupted", "stopped": "was stopped",
                   "no_improvement": "stopped early: validation had stopped improving",
                   "recited": "stopped once it recited the text"}
            print(f"  last run       {how.get(h.stop_reason, h.stop_reason or '?')}")
            if h.stop_detail:
                print(f"                 {h.stop_detail}")

    # ================================================================ helpers
    def _parse(self, magic, line, magic_name):
        """Parse ``line`` with the magic's parser; every problem is a one-line UsageError."""
        parser = magic.parser
        takes_value = {o for o, a in parser._option_string_actions.items() if a.nargs != 0}
        argv = split_line(line, magic_name, takes_value)
        try:
            args, extras = parser.parse_known_args(argv)
        except UsageError as exc:
            raise UsageError(f"%{magic_name}: {exc}; see %{magic_name}? for the options") \
                from None
        if extras:
            word = extras[0]
            if word.startswith("-") and len(word) > 1 and not looks_numeric(word):
                known = [o for o in parser._option_string_actions if o.startswith("--")]
                close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UsageError(f"%{magic_name}: unknown option {word}{hint}; "
                                 f"see %{magic_name}? for the options")
            raise UsageError(f"%{magic_name}: unexpected argument {word!r}; "
                             f"see %{magic_name}? for the usage")
        return args

    def _check_name(self, name: str) -> str:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"{name!r} cannot be a variable name: use letters, digits and _, "
                             "not starting with a digit (e.g. charrnn2)")
        return name

    def _models(self) -> list[tuple[str, object]]:
        hidden = self.shell.user_ns_hidden
        return [(k, v) for k, v in list(self.shell.user_ns.items())
                if not k.startswith("_") and k not in hidden and is_model(v)]

    def _current_name(self) -> str | None:
        ns = self.shell.user_ns
        for candidate in (self._current, self.default_name):
            if candidate is not None and is_model(ns.get(candidate)):
                return candidate
        models = self._models()
        return models[0][0] if len(models) == 1 else None

    def _known_suffix(self) -> str:
        names = [k for k, _ in self._models()]
        return f" (the models here: {', '.join(names)})" if names else ""

    def _model(self, name: str | None, trained: bool = False):
        """(name, model) for NAME, or the current model; UsageError saying what to do."""
        ns = self.shell.user_ns
        if name is None:
            name = self._current_name()
            if name is None:
                names = [k for k, _ in self._models()]
                if names:
                    raise UsageError(f"which model? there are several ({', '.join(names)}): "
                                     "give its NAME")
                raise UsageError("no model yet: train one with %%charrnn_train (a cell of "
                                 "text) or %charrnn_train --corpus verse, or load one with "
                                 "%charrnn_load PATH")
        else:
            obj = ns.get(name)
            if not is_model(obj):
                if looks_numeric(name):
                    raise UsageError(f"{name!r} is not a model name: for a length write -n {name}")
                names = [k for k, _ in self._models()]
                what = (f"there is no model {name!r}" if obj is None else
                        f"{name!r} is a {type(obj).__name__}, not a model")
                raise UsageError(what + (f"; the models here: {', '.join(names)}" if names else
                                         f"; train one with %%charrnn_train {name}"))
        model = ns[name]
        if trained and not model.is_trained:
            raise UsageError(f"{name!r} is not trained yet: train it with %%charrnn_train {name}")
        return name, model


def is_model(obj) -> bool:
    """A CharRNN, also one made before an autoreload replaced the class."""
    return isinstance(obj, CharRNN) or (
        type(obj).__name__ == "CharRNN" and type(obj).__module__.startswith("charrnn_magic"))


# ==================================================================== extension entry points
def load_ipython_extension(ip):
    """Register the magics with ``ip`` (``%load_ext charrnn_magic`` calls this)."""
    unload_ipython_extension(ip)     # loading twice must not leave two instances behind
    ip.register_magics(magics := CharRNNMagics(shell=ip))
    ip.register_magics(export_magics.ExportMagics(ip, magics))


def unload_ipython_extension(ip):
    """Remove the magics again: ``%unload_ext`` then ``%load_ext`` (or ``%reload_ext``) works."""
    manager = ip.magics_manager
    export_magics.unregister(ip)
    instance = manager.registry.pop(CharRNNMagics.__name__, None)
    if instance is None:
        return
    for kind, table in instance.magics.items():
        for magic_name, _func in table.items():
            # Only our own entries: another extension may have taken a name since.
            if getattr(manager.magics[kind].get(magic_name), "__self__", None) is instance:
                del manager.magics[kind][magic_name]
    # Magics.__init__ added the instance to the shell's configurables (for %config).
    ip.configurables[:] = [c for c in ip.configurables if c is not instance]

"""``%%charrnn_train`` / ``%charrnn_train``: train a model on a cell's text, files or a built-in
corpus, in the foreground (progress as widgets or lines) or in the background.

Its setting options (``--cell``, ``--lr``, ``--weight-decay``, ...) and their ``%config``
traits are made from the engine's declaration (``charrnn_magic.settings.SETTINGS``); which
source of a setting wins is ``settings.front_end_settings``.
"""
from __future__ import annotations

import os
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, argument_group, kwds, magic_arguments
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode

from ..charrnn import CharRNN
from ..corpora import CORPORA, DEFAULT_CORPUS, load_corpus
from ..settings import (
    ARCH_KEYS,
    ARCHITECTURE,
    AUTO,
    BY_NAME,
    PRESETS,
    RUN,
    SETTINGS,
    TRAINING,
    front_end_settings,
    of_kind,
    preset_option_spec,
)
from ..text import check_no_surrogates
from ..train import TrainingDiverged
from ..vocab import Vocab
from .magic_base import MagicsBase, is_model, name_argument, warnings_as_lines
from .options import (
    SettingDefaults,
    read_text_file,
    setting_arguments,
    spec_arguments,
    whole_number,
)
from .progress import make_reporter

#: The stop rules, which a %config default (steps, minutes) fills when a line gives none.
STOP_RULES = ("steps", "epochs", "minutes", "target_loss")


@magics_class
class TrainMagics(MagicsBase, SettingDefaults):
    """``%%charrnn_train``. The traits of ``SettingDefaults`` (one per configurable setting)
    and these are the defaults of its options (``%config CharRNNMagics``). ``None`` means:
    take it from the preset (``preset``), else chosen from the text by the engine (the rule in
    ``charrnn_magic/defaults_from_text.py``, the same for the Python API and ``python -m
    charrnn_magic``).
    """

    preset = Unicode(AUTO, allow_none=True, help=(
        f"Preset for new models ({', '.join(PRESETS)}), filling the settings that are not "
        "given as options or configured here. auto (or None): chosen from the text; classic: "
        "the classic vanilla RNN 100 with Adagrad.")).tag(config=True)
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
    quiet = Bool(False, help="Train without progress output (--quiet).").tag(config=True)

    @magic_arguments()
    # argparse %-formats the usage, and IPython puts one "%" in front of it.
    @kwds(usage="%%charrnn_train [NAME] [options]    (the cell is the text)\n"
                "  %%charrnn_train [NAME] --file PATH | --corpus NAME [options]")
    @name_argument("Variable to bind the model to (default: charrnn).")
    @argument_group("Text")
    @argument("-f", "--file", action="append", metavar="PATH",
              help="Train on a UTF-8 text file; repeat to join several.")
    @argument("--corpus", metavar="NAME", help="Train on a built-in text (see --list-corpora).")
    @argument("--list-corpora", action="store_true", help="List the built-in texts and stop.")
    @argument_group("Model (new models only)")
    @spec_arguments([preset_option_spec()])
    @setting_arguments(ARCHITECTURE)
    @argument_group("Training")
    @argument("--resume", action="store_true",
              help="Continue training the model NAME (optimizer state kept).")
    @setting_arguments(TRAINING)
    @argument_group("Stop rules, validation and seed")
    @setting_arguments(RUN)
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
            with warnings_as_lines(quiet):
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
            value, option = getattr(args, key), BY_NAME[key].option_name
            if value is not None and value != getattr(old, key):
                raise UsageError(
                    f"{option} cannot change when resuming: {name!r} has {key} "
                    f"{getattr(old, key)!r}; drop {option}, or train a new model under "
                    "another NAME")
        return old

    def _preset_name(self, args) -> str:
        name = args.preset or self.preset or AUTO
        if name not in PRESETS:
            raise UsageError(f"CharRNNMagics.preset = {name!r} is not a preset: use one of "
                             f"{', '.join(PRESETS)} (or None)")
        return name

    def _settings(self, args, kinds) -> dict:
        """The settings of these kinds the magic hands to the engine, from the line, the
        preset named on it and %config (``settings.front_end_settings`` says which wins)."""
        names = [s.name for s in of_kind(*kinds) if s.name not in STOP_RULES]
        line_preset = PRESETS[self._preset_name(args)] if args.preset else {}
        configured = {s.name: getattr(self, s.name) for s in SETTINGS if s.configurable}
        return front_end_settings(names, vars(args), line_preset, configured)

    def _new_model(self, args):
        try:
            return CharRNN.from_preset(self._preset_name(args),
                                       **self._settings(args, [ARCHITECTURE]))
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _fit_kwargs(self, args, resume: bool) -> dict:
        stop = {k: getattr(args, k) for k in STOP_RULES if getattr(args, k) is not None}
        if not stop:
            stop = {k: getattr(self, k) for k in ("steps", "minutes")
                    if getattr(self, k) is not None}
        if resume:
            # Only what the line says: the engine keeps the previous fit's settings for the rest.
            given = {s.name: getattr(args, s.name) for s in of_kind(TRAINING, RUN)
                     if s.name not in STOP_RULES and getattr(args, s.name) is not None}
        else:
            given = self._settings(args, [TRAINING, RUN])
        return {**stop, **given}

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

    @staticmethod
    def _print_corpora():
        width = max(map(len, CORPORA))
        print("Built-in texts (%charrnn_train --corpus NAME):")
        for key, description in CORPORA.items():
            print(f"  {key:<{width}}  {description}")

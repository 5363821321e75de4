"""``%%charrnn_inspect`` / ``%charrnn_inspect``: open the inspector panel of a model over a
text (the cell's, a file's, or the model's own sample)."""
from __future__ import annotations

import math

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, argument_group, kwds, magic_arguments

from ..corpora import load_corpus
from ..settings import listed
from ..trace import MAX_CHARS as MAX_TRACE_CHARS
from .magic_base import MagicsBase, name_argument, seed_option, temperature_option
from .options import one_of, read_text_file, whole_number

#: What %charrnn_inspect --colour can start with.
INSPECT_COLOURS = ("activation", "surprise", "ngram")


@magics_class
class InspectMagics(MagicsBase):
    """``%%charrnn_inspect``."""

    # ================================================================ %charrnn_inspect
    @magic_arguments()
    @kwds(usage="%%charrnn_inspect [NAME] [options]    (the cell is the text)\n"
                "  %%charrnn_inspect [NAME] --file PATH | --sample N [options]")
    @name_argument()
    @argument_group("Text (one way; the cell by default)")
    @argument("-f", "--file", metavar="PATH", help="Inspect a UTF-8 text file.")
    @argument("--sample", type=whole_number(1), metavar="N",
              help="Inspect N characters the model writes itself.")
    @temperature_option("Temperature of --sample (default 0.8).")
    @seed_option("Random seed of --sample (default 0).")
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
        own writing (--sample N: N characters at temperature -t, default 0.8, random seed
        --seed, default 0). It may only have characters the model knows.

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
                                    args.seed is not None):
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
            seed = 0 if args.seed is None else args.seed
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

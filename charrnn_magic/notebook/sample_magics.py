"""``%charrnn_sample`` (text from a model, printed and returned) and ``%charrnn_panel`` (the
live sampler panel)."""
from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Float, Int

from ..text import normalize
from .display import Sample, SampleList, mark_printed
from .magic_base import MagicsBase, name_argument, seed_option, temperature_option
from .options import number_in, parse_char, unescape, whole_number


@magics_class
class SampleMagics(MagicsBase):
    """``%charrnn_sample`` and ``%charrnn_panel``."""

    sample_length = Int(200, help="Default -n of %charrnn_sample.").tag(config=True)
    temperature = Float(1.0, help="Default -t of %charrnn_sample.").tag(config=True)

    # ================================================================ %charrnn_sample
    @magic_arguments()
    @name_argument("Model to sample from (default: the last one trained or loaded).")
    @argument("-n", "--length", type=whole_number(0), metavar="LENGTH",
              help="Characters to generate (lines mode: the longest line). Default 200.")
    @temperature_option("0: greedy; <1 safer; >1 wilder. Default 1.0.")
    @argument("-s", "--seed-char", metavar="C",
              help="Start with this character: a, space, newline (\\n), tab.")
    @argument("-p", "--prime", metavar="TEXT",
              help="Feed TEXT first, then continue it (quote it; \\n is a newline).")
    @argument("-k", "--top-k", type=whole_number(1), metavar="K",
              help="Sample among the K likeliest characters only.")
    @argument("--top-p", type=number_in(0, 1, above=True), metavar="P",
              help="Sample among the likeliest characters holding P of the probability.")
    @argument("-c", "--count", type=whole_number(1), metavar="N", help="Make N samples.")
    @seed_option("Random seed: the same seed and options give the same text.")
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
            %charrnn_sample --seed-char newline -n 300 --seed 42
            %charrnn_sample names --count 10 -t 0.9
            text = %charrnn_sample -n 1000 --quiet
            %charrnn_sample --prime {my_variable}

        Characters the model never saw (in --prime or --seed-char) are named in the error,
        with close ones it knows (other case, no accent).

        --seed S is the random seed, as in every magic (-r S and --random-seed S, the first
        spellings, still work); -s is the seed character (--seed-char).
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
                       seed=args.seed)
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

    # ================================================================ %charrnn_panel
    @magic_arguments()
    @name_argument()
    @temperature_option("Start temperature.", maximum=2)
    @argument("-n", "--length", type=whole_number(1), metavar="LENGTH", help="Start length.")
    @argument("-c", "--count", type=whole_number(1), metavar="N", help="Start number of samples.")
    @argument("-k", "--top-k", type=whole_number(0), metavar="K", help="Start top-k (0: off).")
    @seed_option("Start seed.")
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
        follows it, about once a second. The options set the controls' starting values;
        --seed S (or -r S, --random-seed S) the random seed.
        """
        args = self._parse(self.charrnn_panel, line, "charrnn_panel")
        name, model = self._model(args.name, trained=True)
        try:
            from .panel import sampler_panel
        except ImportError as exc:
            raise UsageError(f"the panel needs ipywidgets: {exc}") from None
        options = {key: value for key, value in (
            ("temperature", args.temperature), ("length", args.length), ("count", args.count),
            ("top_k", args.top_k), ("seed", args.seed)) if value is not None}
        try:
            return sampler_panel(model, **options)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

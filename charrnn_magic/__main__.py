"""``python -m charrnn_magic``: train a model on a built-in text and show what it writes.

    python -m charrnn_magic                       # half a minute on the default corpus
    python -m charrnn_magic --corpus pydoc --minutes 5 --save pydoc.safetensors

The model and its training settings are chosen from the text and the time budget, as
``CharRNN().fit`` and the magics choose them; ``--preset`` fixes them instead.
"""
from __future__ import annotations

import argparse
import sys

from . import PRESETS, CharRNN
from .corpora import CORPORA, DEFAULT_CORPUS, load_corpus
from .progress import make_reporter
from .settings import AUTO
from .text import read_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m charrnn_magic",
        description="Train a character-level RNN on a built-in text, then print samples.")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, choices=list(CORPORA),
                        help=f"built-in text to train on (default: {DEFAULT_CORPUS})")
    parser.add_argument("--file", metavar="PATH",
                        help="train on this UTF-8 text file instead of a built-in text")
    parser.add_argument("--raw-text", action="store_true",
                        help="keep the text as it is: no BOM dropped, \\r line ends kept")
    parser.add_argument("--preset", default=AUTO, choices=list(PRESETS),
                        help="model size and training settings (default: auto, chosen from the "
                             "text and the time budget; classic: the classic min-char-rnn)")
    # The default corpus is small: its passes (defaults.most_passes) end the run before this.
    parser.add_argument("--minutes", type=float, default=0.5,
                        help="training time (default: 0.5; with the auto preset at most 15 passes "
                             "over the text, more for a text under 100,000 characters)")
    parser.add_argument("--steps", type=int, help="train this many steps instead of for --minutes")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--no-keep-best", dest="keep_best", action="store_false", default=None,
                        help="end with the last weights, not those of the best validation")
    parser.add_argument("--no-early-stop", dest="patience", action="store_const", const=0,
                        help="train for all of --minutes/--steps even when validation stops "
                             "improving")
    parser.add_argument("--save", metavar="PATH",
                        help="save the trained model to PATH (.safetensors)")
    args = parser.parse_args(argv)

    try:
        text = read_text(args.file, raw=args.raw_text) if args.file else load_corpus(args.corpus)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = f"file {args.file}" if args.file else f"'{args.corpus}' corpus"
    model = CharRNN.from_preset(args.preset)
    reporter = make_reporter(model, name="model", sample_every=None)
    # Made at the first step, once the model is chosen.
    reporter.start(lambda: f"Training a {model.cell.upper()} ({model.layers}x{model.hidden_size}"
                           f", preset {args.preset}) on the {source} ({len(text):,} characters)")
    rule = {"steps": args.steps} if args.steps else {"minutes": args.minutes}
    options = {k: getattr(args, k) for k in ("keep_best", "patience")
               if getattr(args, k) is not None}
    try:
        history = model.fit(text, seed=args.seed, callback=reporter, raw_text=args.raw_text,
                            **rule, **options)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reporter.finish(history)
    for temperature in (0.5, 0.8, 1.0):
        print(f"\n--- sample at temperature {temperature} ---")
        print(model.sample(400, temperature=temperature, seed=args.seed))
    if args.save:
        print(f"\nsaved to {model.save(args.save)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

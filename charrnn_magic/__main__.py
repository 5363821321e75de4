"""``python -m charrnn_magic``: train a model on a built-in text and show what it writes.

    python -m charrnn_magic                       # half a minute on the default corpus
    python -m charrnn_magic --corpus pydoc --minutes 5 --save pydoc.safetensors
    python -m charrnn_magic --cell lstm --hidden 256 --lr-schedule cosine --steps 2000

The model and its training settings are chosen from the text and the time budget, as
``CharRNN().fit`` and the magics choose them; ``--preset`` fixes them instead, and each setting's
option (the same as ``%%charrnn_train``'s, made from ``charrnn_magic.settings.SETTINGS``) fixes
that one.
"""
from __future__ import annotations

import argparse
import sys

from .charrnn import CharRNN
from .corpora import CORPORA, DEFAULT_CORPUS, load_corpus
from .progress import make_reporter
from .settings import (
    ARCHITECTURE,
    AUTO,
    PRESETS,
    RUN,
    TRAINING,
    front_end_settings,
    of_kind,
    option_specs,
    preset_option_spec,
)
from .text import read_text

#: What this command does when an option is not given, where the engine's default differs.
#: The default corpus is small: its passes (defaults_from_text.most_passes) end the run before
#: the time does.
DEFAULTS = {"seed": 1, "minutes": 0.5}
STOP_RULES = ("steps", "epochs", "minutes", "target_loss")
GROUPS = {ARCHITECTURE: "model (new models only)", TRAINING: "training settings",
          RUN: "this run"}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m charrnn_magic",
        description="Train a character-level RNN on a built-in text, then print samples. "
                    "Settings not given are chosen from the text and the time budget.")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, choices=list(CORPORA),
                        help=f"built-in text to train on (default: {DEFAULT_CORPUS})")
    parser.add_argument("--file", metavar="PATH",
                        help="train on this UTF-8 text file instead of a built-in text")
    parser.add_argument("--save", metavar="PATH",
                        help="save the trained model to PATH (.safetensors)")
    flags, keywords = preset_option_spec()
    parser.add_argument(*flags, **keywords)
    for kind, title in GROUPS.items():
        group = parser.add_argument_group(title)
        for setting in of_kind(kind):
            for flags, keywords in option_specs(setting):
                if setting.name in DEFAULTS and "type" in keywords:
                    keywords["help"] += (f" Default here: {DEFAULTS[setting.name]}"
                                         + (" when no other stop rule is given."
                                            if setting.name in STOP_RULES else "."))
                group.add_argument(*flags, **keywords)
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None}
    if not any(k in given for k in STOP_RULES):
        given["minutes"] = DEFAULTS["minutes"]
    given.setdefault("seed", DEFAULTS["seed"])
    preset = args.preset or AUTO
    try:
        text = (read_text(args.file, raw=bool(args.raw_text)) if args.file
                else load_corpus(args.corpus))
        model = CharRNN.from_preset(preset, **front_end_settings(
            [s.name for s in of_kind(ARCHITECTURE)], given, PRESETS[preset], {}))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = f"file {args.file}" if args.file else f"'{args.corpus}' corpus"
    reporter = make_reporter(model, name="model", sample_every=None)
    # Made at the first step, once the model is chosen.
    reporter.start(lambda: f"Training a {model.cell.upper()} ({model.layers}x{model.hidden_size}"
                           f", preset {preset}) on the {source} ({len(text):,} characters)")
    fit_kwargs = front_end_settings([s.name for s in of_kind(TRAINING, RUN)], given,
                                    PRESETS[preset], {})
    try:
        history = model.fit(text, callback=reporter, **fit_kwargs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    reporter.finish(history)
    for temperature in (0.5, 0.8, 1.0):
        print(f"\n--- sample at temperature {temperature} ---")
        print(model.sample(400, temperature=temperature, seed=given["seed"]))
    if args.save:
        print(f"\nsaved to {model.save(args.save)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

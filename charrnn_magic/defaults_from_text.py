"""Defaults chosen from the text: the model and its training settings follow from how much text
there is (and from the time budget, when one is given).

One rule for every front end (``CharRNN.fit``, the magics, ``python -m charrnn_magic``):

* :func:`choose` picks the architecture and the training settings for a text of ``n_chars``
  characters (the table in ``RULE``);
* a text shorter than ``LEARN_WHOLE_BELOW`` characters is learned whole: holding out part of it
  would keep that part from ever being learned, so nothing is held out (``val_fraction`` 0);
  a longer one holds out a tenth, at most ``VAL_MOST_CHARS`` characters of a stream;
* :func:`fit_to_text` shrinks a batch size or window that a short text cannot fill;
* :func:`most_passes` caps a run that has only a time budget at ``MOST_PASSES`` passes over the
  text.

Whatever is given explicitly (to the constructor, to ``fit``, or by a preset) wins over the rule;
``CharRNN.from_preset("classic")`` is the seeds' classic (vanilla RNN 100, Adagrad, batch 1).
"""
from __future__ import annotations

from .data import held_out_count, line_spans
from .settings import ARCH_KEYS, AUTO, TRAIN_DEFAULTS

__all__ = ["choose", "first_fit_choice", "settle_first_fit", "fit_to_text", "most_passes",
           "describe_choice", "size_of", "LEARN_WHOLE_BELOW", "MOST_PASSES", "VAL_MOST_CHARS",
           "RULE"]

#: The architecture a first fit may choose from the text (the dtype is always the user's).
CHOSEN_KEYS = ARCH_KEYS[:-1]

#: Below this many characters a text is learned whole (no validation split): the model can then
#: recite it; a held-out end would never be learned.
LEARN_WHOLE_BELOW = 2_000

#: From ``BIG_FROM`` characters, the bigger model when the time budget gives it
#: ``BIG_MIN_PASSES`` passes over the training text at ``BIG_CHARS_PER_SECOND`` (what it trains
#: on 2 cores): slower per character than the 2x128, it wins only with enough passes. Dropout
#: 0.2 from ``BIG_TEXT`` characters, 0.3 below. (The measurements behind this file's constants
#: are in benchmarks/README.md, "The figures behind the engine's defaults": they change with the
#: machine and each re-run, the code only says what it chooses.)
BIG_FROM = 20_000
BIG_CHARS_PER_SECOND = 25_000
BIG_MIN_PASSES = 12
BIG_TEXT = 300_000
BIG_MODEL = dict(cell="gru", hidden_size=256, layers=2, dropout=0.2, lr=0.004, seq_length=50)
BIG_MODEL_SHORT_TEXT_DROPOUT = 0.3

#: (fewest characters, what is chosen), by text size; read by :func:`choose`: the winner of
#: held-out loss after a fixed budget per size; the 20k boundary is interpolated.
RULE = (
    # Learned whole: one stream (batch 1), a 1x128 GRU at lr 0.01, to recite the text within
    # the 1,000 steps of a plain %%charrnn_train.
    (0, dict(cell="gru", hidden_size=128, layers=1, dropout=0.0, lr=0.01, seq_length=50,
             batch_size=1, weight_decay=0.0)),
    (LEARN_WHOLE_BELOW, dict(cell="gru", hidden_size=128, layers=2, dropout=0.3, lr=0.004,
                             seq_length=50)),
    (BIG_FROM, dict(cell="gru", hidden_size=128, layers=2, dropout=0.1, lr=0.004,
                    seq_length=50)),
)

#: Decoupled weight decay (AdamW's) of every choice but a text learned whole, which is meant to
#: be learned to the letter.
WEIGHT_DECAY = 0.1

#: A stream's validation part holds at most this many characters: enough to rank a run's steps,
#: while the rest of a tenth of a big text is better trained on.
VAL_MOST_CHARS = 50_000

#: What every choice of the rule shares.
COMMON = dict(optimizer="adam", clip=1.0, clip_mode="norm", lr_schedule="cosine",
              batch_size=32, val_fraction=0.1, holdout="start", weight_decay=WEIGHT_DECAY)


def choose(n_chars: int, minutes: float | None = None, mode: str = "stream") -> dict:
    """The architecture (``cell``, ``hidden_size``, ``layers``, ``dropout``) and the training
    settings (optimizer, ``lr``, schedule, clipping, ``batch_size``, ``seq_length``,
    ``val_fraction``) for a text of ``n_chars`` characters, trained for ``minutes`` (None: no
    time budget). ``mode`` "lines" uses the same sizes (its window is the longest line)."""
    row = next(c for start, c in reversed(RULE) if n_chars >= start)
    chosen = {**COMMON, **row}
    if n_chars < LEARN_WHOLE_BELOW:
        chosen["val_fraction"] = 0.0
        return chosen
    if mode == "stream" and n_chars * chosen["val_fraction"] > VAL_MOST_CHARS:
        chosen["val_fraction"] = VAL_MOST_CHARS / n_chars
    if n_chars >= BIG_FROM and minutes is not None and big_model_fits(n_chars, minutes):
        chosen.update(BIG_MODEL)
        if n_chars < BIG_TEXT:
            chosen["dropout"] = BIG_MODEL_SHORT_TEXT_DROPOUT
    return chosen


def big_model_fits(n_chars: int, minutes: float) -> bool:
    """Whether ``minutes`` give the bigger model ``BIG_MIN_PASSES`` passes over the training part
    of ``n_chars`` characters."""
    n_train = n_chars * (1 - COMMON["val_fraction"])
    return BIG_MIN_PASSES * n_train <= minutes * 60 * BIG_CHARS_PER_SECOND


#: Lines learned whole and given no stop rule train this many passes (at least 1,000 steps).
LEARN_WHOLE_PASSES = 60
#: A stream learned whole and given no stop rule trains until a greedy sample recites it
#: (``StopRules.until_recited``), for at most this many passes (at least 1,000 steps), its
#: learning rate planned for all of them (a fixed 60 passes recited too few texts near
#: ``LEARN_WHOLE_BELOW`` characters).
RECITE_MOST_PASSES = 200


def default_steps(batches_per_epoch: int, learning_whole: bool, reciting: bool = False) -> int:
    """Steps of a run given no stop rule: 1000, or, for a text learned whole when that is more,
    ``LEARN_WHOLE_PASSES`` passes (at most ``RECITE_MOST_PASSES`` when ``reciting`` may stop
    it sooner)."""
    passes = RECITE_MOST_PASSES if reciting else LEARN_WHOLE_PASSES
    return max(1000, passes * batches_per_epoch) if learning_whole else 1000


#: A run given only a time budget stops after at most this many passes over a text of
#: ``MOST_PASSES_FROM`` characters or more (more passes over a shorter one: ``most_passes``), so
#: that its learning-rate decay ends within the passes a text can use.
MOST_PASSES = 15
MOST_PASSES_FROM = 100_000


def most_passes(n_chars: int, minutes: float | None, steps: int | None, epochs: float | None,
                val_fraction: float) -> int | None:
    """The passes over a text of ``n_chars`` characters that a run is capped at, when the only
    length given is a time budget (``minutes``) and part of the text is held out for validation
    (a text learned whole needs its passes); None otherwise. ``MOST_PASSES`` from
    ``MOST_PASSES_FROM`` characters, more for a shorter text (15 x sqrt(100k / n): 47 at 10k)."""
    if minutes is None or steps is not None or epochs is not None or not val_fraction:
        return None
    return round(MOST_PASSES * max(1.0, (MOST_PASSES_FROM / max(n_chars, 1)) ** 0.5))


def size_of(n_chars: int) -> str:
    """``98 characters``, ``10k characters``, ``106k characters``, ``1.1M characters``."""
    if n_chars < 10_000:
        return f"{n_chars:,} characters"
    if n_chars < 1_000_000:
        return f"{n_chars / 1000:.0f}k characters"
    return f"{n_chars / 1e6:.1f}M characters"


def describe_architecture(cell, hidden_size, layers, dropout) -> str:
    """``2×128 GRU, dropout 0.2`` (``1×64 GRU`` without dropout)."""
    text = f"{layers}×{hidden_size} {cell.upper()}"
    return text + (f", dropout {dropout:g}" if dropout else "")


def describe_choice(arch: dict, settings: dict, n_chars: int, chose_arch: bool,
                    chose_settings: bool, minutes: float | None = None) -> str | None:
    """The line the progress header shows for what the rule chose, e.g. ``2×128 GRU, dropout
    0.2: 106k characters; Adam lr 0.004 cosine, batch 32, window 50``; None when nothing was."""
    if not (chose_arch or chose_settings):
        return None
    why = size_of(n_chars) + (f" in {minutes:g} min" if minutes is not None else "")
    window = ("a line at a time" if settings["mode"] == "lines" else
              f"window {settings['seq_length']}")
    decay = (f", weight decay {settings['weight_decay']:g}" if settings["weight_decay"] else "")
    train = (f"{settings['optimizer'].capitalize()} lr {settings['lr']:g} "
             f"{settings['lr_schedule']}{decay}, batch {settings['batch_size']}, {window}")
    if chose_arch:
        line = f"{describe_architecture(**arch)}: {why}"
        return line + (f"; {train}" if chose_settings else "")
    return f"{train}: chosen for {describe_architecture(**arch)} and {why}"


def learn_whole_note(n_chars: int) -> str:
    return (f"(the text is short, {n_chars:,} characters: the model learns all of it, with no "
            "validation; give val_fraction to hold some out)")


def fit_to_text(n_chars: int, n_lines: int, settings: dict, explicit: set) -> str | None:
    """Shrink a batch size or window (in ``settings``) that a text of ``n_chars`` characters
    (``n_lines`` non-empty lines) cannot fill, unless it was given explicitly (the engine then
    explains what does not fit). Returns a note about what changed, or None."""
    changes = []
    if settings["mode"] == "stream":
        # The engine holds out the start of the text.
        n_train = n_chars - held_out_count(n_chars, settings["val_fraction"])
        T = settings["seq_length"]
        if "seq_length" not in explicit and 2 <= n_train - 1 < T:
            changes.append(f"window {n_train - 1} instead of {T}")
            T = settings["seq_length"] = n_train - 1
        B, most = settings["batch_size"], (n_train - 1) // T
        if "batch_size" not in explicit and B > most >= 1:
            changes.append(f"batch size {most} instead of {B}")
            settings["batch_size"] = most
    else:
        n_train = n_lines - held_out_count(n_lines, settings["val_fraction"])
        B = settings["batch_size"]
        if "batch_size" not in explicit and B > n_train >= 1:
            changes.append(f"batch size {n_train} instead of {B}")
            settings["batch_size"] = n_train
    if changes:
        return f"(the text is short: {' and '.join(changes)})"
    return None


def first_fit_choice(arch_given: dict, fit_defaults: dict, preset: str, n_chars: int,
                     given: dict, minutes):
    """(architecture, first-fit defaults of the training settings, (whether the architecture
    was chosen, whether training settings were)) for a model made from ``preset`` with
    ``arch_given`` (``CHOSEN_KEYS``, None where left out) and the preset's ``fit_defaults``:
    what is not given (to the constructor, to ``fit`` or by the preset) is chosen from the text
    of ``n_chars`` characters."""
    preset_settings = {k: v for k, v in fit_defaults.items() if k in TRAIN_DEFAULTS}
    mode = given["mode"] or preset_settings.get("mode") or TRAIN_DEFAULTS["mode"]
    chosen = choose(n_chars, minutes, mode)
    arch = {k: chosen[k] if arch_given[k] is None else arch_given[k] for k in CHOSEN_KEYS}
    chose_arch = any(arch_given[k] is None for k in CHOSEN_KEYS)
    if preset != AUTO:
        # A named preset keeps its meaning: what it leaves out is the engine's classic value,
        # except that a short text is still learned whole.
        base = {**TRAIN_DEFAULTS, "val_fraction": chosen["val_fraction"], **preset_settings}
        return arch, base, (chose_arch, False)
    rule = {k: v for k, v in chosen.items() if k in TRAIN_DEFAULTS}
    base = {**TRAIN_DEFAULTS, **rule, **preset_settings}     # from_preset("auto", lr=...) too
    keys = ("optimizer", "lr_schedule", "batch_size", "seq_length", "clip", "clip_mode",
            "weight_decay")
    chose_settings = any(given[k] is None and k not in preset_settings for k in keys)
    return arch, base, (chose_arch, chose_settings)


def settle_first_fit(ids, vocab, settings: dict, given: dict, fit_defaults: dict, arch: dict,
                     chose: tuple, minutes) -> tuple[list, bool]:
    """After a first fit's text is encoded (``ids``): whether it is learned whole, and the batch
    size or window shrunk to what it can fill (in ``settings``). Returns the notes that say
    what was chosen and why (None where there is nothing to say) and whether the text is
    learned whole."""
    notes, whole = [], False
    if (given["val_fraction"] is None and "val_fraction" not in fit_defaults
            and len(ids) < LEARN_WHOLE_BELOW):
        notes.append(learn_whole_note(len(ids)))
        whole = settings["val_fraction"] == 0
    n_lines = 0
    if settings["mode"] == "lines" and "\n" in vocab:
        n_lines = len(line_spans(ids, vocab.chars.index("\n"))[0])
    explicit = {k for k, v in given.items() if v is not None}
    notes.append(fit_to_text(len(ids), n_lines, settings, explicit))
    notes.insert(0, describe_choice(arch, settings, len(ids), *chose, minutes))
    return notes, whole

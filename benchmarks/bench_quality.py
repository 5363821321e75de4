"""Model quality: held-out loss (nats per character) after a fixed wall-clock training budget.

Two tasks, each trained through the engine's public API as a user would: ``CharRNN().fit(text,
minutes=M)`` with no option but the stop rule (and ``mode="lines"`` for names), so the model and
its settings are the ones chosen from the text (``charrnn_magic/defaults_from_text.py``;
``--preset`` names a preset instead). Each is scored with ``model.evaluate`` on text the training
never saw, not even for choosing the best weights:

- tinyshakespeare, stream mode: the last 10 % of the file is held out. `fit` gets the first 90 %
  and, by default, itself sets aside a tenth of that for validation (keeping the best weights
  and stopping early), so the held-out score is not flattered by selecting on it.
  Budget 10 minutes; target <= 1.45 (<= 1.55 for a budget of 3 minutes or less).
- names.txt, lines mode: 10 % of the names (a seeded shuffle: the file is sorted by popularity,
  so "the last 10 %" would be the rare names only) are held out. Budget 5 minutes; target <= 1.95.
- lstm: the Python API's call `CharRNN(cell="lstm", hidden_size=256, layers=2).fit(train,
  minutes=3)` on tinyshakespeare's first 90 % (the training settings chosen for that
  architecture), scored on the last 10 %. Target <= 1.60.

    python benchmarks/bench_quality.py                                  # the full run, ~18 minutes
    python benchmarks/bench_quality.py --minutes 0.5 --names-minutes 0.5 --lstm-minutes 0.5
                                                                        # a smoke run
"""
from __future__ import annotations

import argparse
import random
import time

import _common
from _common import print_table

# Published or measured reference points, for context in the table (nats per character).
REFERENCE = {
    "tinyshakespeare": "classic min-char-rnn ~2.05; torch LSTM 2x256 Adam 1.53 at best",
    "names": "MLP ~2.17; WaveNet-style 1.99; small transformer ~1.92",
    "lstm": "torch LSTM 2x256 Adam 1.53 at best after 3 min",
}
LSTM_API = dict(cell="lstm", hidden_size=256, layers=2)


def target(name: str, minutes: float) -> float:
    if name == "tinyshakespeare":
        return 1.55 if minutes <= 3 else 1.45
    return {"names": 1.95, "lstm": 1.60}[name]


class Reporter:
    """Prints one progress line every `every` seconds: a long run should not look hung."""

    def __init__(self, every: float = 30.0):
        self.every, self.next_at, self.last = every, every, None

    def __call__(self, p) -> None:
        self.last = p
        if p.elapsed >= self.next_at:
            self.next_at += self.every
            val = f"{p.val_loss:.3f}" if p.val_loss is not None else "-"
            print(f"   {p.elapsed:6.0f} s  step {p.step:>7,}  loss {p.loss:.3f}  val {val}  "
                  f"{p.chars_per_sec:,.0f} chars/s", flush=True)


def run_task(name: str, train_text: str, heldout_text: str, preset_name: str | None,
             minutes: float, mode: str, seed: int) -> list[str]:
    from charrnn_magic import CharRNN

    made = f"preset {preset_name!r}" if preset_name else f"CharRNN(**{LSTM_API})"
    print(f"\n== {name}: {made}, {minutes:g} min, mode {mode}")
    print(f"   train {len(train_text):,} chars, held out {len(heldout_text):,} chars", flush=True)

    model = CharRNN.from_preset(preset_name) if preset_name else CharRNN(**LSTM_API)
    rep = Reporter(every=max(5.0, minutes * 60 / 10))
    start = time.perf_counter()
    lines = {"mode": "lines"} if mode == "lines" else {}
    hist = model.fit(train_text, minutes=minutes, seed=seed, callback=rep, **lines)
    train_s = time.perf_counter() - start
    for note in model.fit_notes:
        print(f"   chosen: {note}")
    print(f"   settings: {model.config()}")
    if hist.stop_detail:
        print(f"   {hist.stop_detail}")
    start = time.perf_counter()
    heldout = model.evaluate(heldout_text)
    eval_s = time.perf_counter() - start

    best_val = min(hist.val_loss) if hist.val_loss else float("nan")        # nan: no validation
    cps = rep.last.chars_per_sec if rep.last else float("nan")
    sample = model.sample(length=120 if mode == "stream" else 40, temperature=0.8, seed=seed,
                          **({"count": 5} if mode == "lines" else {}))
    print(f"   sample: {sample!r}")
    print(f"   {model.summary()}")
    wanted = target(name, minutes)
    met = "yes" if heldout <= wanted else "no"
    return [name, f"{preset_name or 'given'}: {model.cell} {model.layers}x{model.hidden_size}",
            f"{minutes:g} min", f"{train_s:.0f} s", f"{model.step:,}", hist.stop_reason,
            f"{cps:,.0f}", f"{best_val:.3f}", f"{heldout:.3f}",
            f"{heldout / 0.6931471805599453:.3f}", f"<= {wanted:.2f}", met,
            f"{eval_s:.1f} s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="tinyshakespeare budget (default 10)")
    ap.add_argument("--names-minutes", type=float, default=5.0, help="names.txt budget (default 5)")
    ap.add_argument("--lstm-minutes", type=float, default=3.0,
                    help="budget of the LSTM API task (default 3)")
    ap.add_argument("--preset", default="auto",
                    help="CharRNN.PRESETS entry for tinyshakespeare (default: auto, chosen from "
                         "the text)")
    ap.add_argument("--names-preset", default=None,
                    help="preset for names.txt (default: same as --preset)")
    ap.add_argument("--only", action="append", choices=["tinyshakespeare", "names", "lstm"],
                    help="run only this task (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    print(_common.machine_line())
    ok, why = _common.engine_available()
    if not ok:
        raise SystemExit(f"the engine cannot be imported yet: {why}")
    from charrnn_magic import CharRNN

    for p in filter(None, (args.preset, args.names_preset)):
        if p not in CharRNN.PRESETS:
            raise SystemExit(f"unknown preset {p!r}: choose from {sorted(CharRNN.PRESETS)}")
    only = set(args.only or ["tinyshakespeare", "names", "lstm"])
    rows = []
    text = _common.read_data("tinyshakespeare.txt")
    cut = int(len(text) * 0.9)

    if "tinyshakespeare" in only:
        rows.append(run_task("tinyshakespeare", text[:cut], text[cut:], args.preset, args.minutes,
                             "stream", args.seed))

    if "names" in only:
        names = _common.read_data("names.txt").splitlines()
        names = [n for n in names if n]
        random.Random(1234).shuffle(names)   # fixed: every run holds out the same names
        n_held = len(names) // 10
        held, train = names[:n_held], names[n_held:]
        rows.append(run_task("names", "\n".join(train), "\n".join(held),
                             args.names_preset or args.preset, args.names_minutes, "lines",
                             args.seed))

    if "lstm" in only:
        rows.append(run_task("lstm", text[:cut], text[cut:], None, args.lstm_minutes, "stream",
                             args.seed))

    print_table(["task", "model", "budget", "trained", "steps", "stopped by", "chars/s", "best val",
                 "held-out nats/char", "bits/char", "target", "met", "eval time"], rows,
                title="Held-out loss after a fixed wall-clock budget (lower is better)")
    for r in rows:
        print(f"  {r[0]} reference: {REFERENCE[r[0]]}")


if __name__ == "__main__":
    main()

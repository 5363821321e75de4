"""Held-out loss against wall-clock time: the engine's defaults beside PyTorch, in one run.

For each corpus the last 10 % is held out and never given to training; the rest is the training
text. Then, one after the other, each in a process of its own:

- **the engine**, once per budget (0.5, 1, 3 and 10 minutes by default):
  ``CharRNN().fit(train, minutes=M)`` with no other option, so the model and its settings are the
  ones chosen from the text and the budget (``charrnn_magic/defaults_from_text.py``), then
  ``model.evaluate(held_out)``. Each budget is a run of its own, because the defaults (and the
  learning-rate schedule) depend on it.
- **PyTorch** as a user would write it at its best on this machine (``torch_reference.py``):
  ``nn.Embedding`` -> ``nn.LSTM`` 2 x 256 -> ``nn.Linear``, Adam 2e-3, batch 32, window 50,
  global-norm clip 1, 2 threads (its faster thread count in ``bench_speed.py``). One run as long
  as the longest budget, scored on the held-out text whenever its training clock passes a
  budget; the clock stops while it is scored.

Both score the held-out text the same way: cut into 64 streams, each from a fresh state, every
character after a stream's first counted (``evaluation.mean_loss``).

Corpora: ``tinyshakespeare`` (../shared/data) and ``python``, the first 1,000,000 ASCII
characters of the running Python's standard library sources (its top-level ``*.py`` files in
name order; program text, unlike the plays).

    python benchmarks/bench_curve.py                          # the full run, about 50 minutes
    python benchmarks/bench_curve.py --budgets 0.2 --only python    # a smoke run
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import sysconfig
import time

import _common
import torch_reference as tref
from _common import print_table

TORCH_MODEL = dict(cell="lstm", hidden_size=256, layers=2)
TORCH_THREADS = 2


def python_sources(limit: int = 1_000_000) -> str:
    """The first ``limit`` ASCII characters of the standard library's top-level sources."""
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    parts, size = [], 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = "".join(c for c in f.read() if c < "\x80")
        parts.append(text)
        size += len(text)
        if size >= limit:
            break
    return "".join(parts)[:limit]


def corpus(name: str) -> tuple[str, str]:
    """(training text, held-out text): the first 90 % and the last 10 %."""
    text = _common.read_data("tinyshakespeare.txt") if name == "tinyshakespeare" \
        else python_sources()
    cut = int(len(text) * 0.9)
    train, held = text[:cut], text[cut:]
    unseen = set(held) - set(train)
    if unseen:      # the engine refuses to score characters it never saw
        raise SystemExit(f"{name}: held-out characters missing from training: {sorted(unseen)}")
    return train, held


def engine_run(name: str, minutes: float, seed: int) -> dict:
    from charrnn_magic import CharRNN

    train, held = corpus(name)
    model = CharRNN()
    start = time.perf_counter()
    hist = model.fit(train, minutes=minutes, seed=seed)
    trained = time.perf_counter() - start
    return {"held_out": model.evaluate(held), "steps": model.step, "seconds": trained,
            "model": f"{model.cell.upper()} {model.layers}x{model.hidden_size}",
            "chosen": " / ".join(model.fit_notes), "stopped": hist.stop_detail or hist.stop_reason}


def torch_run(name: str, budgets: list[float], seed: int) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from charrnn_magic.evaluation import stream_cut

    tref.set_threads(TORCH_THREADS)
    train, held = corpus(name)
    trainer = tref.TorchTrainer(train, **TORCH_MODEL, **tref.PRESET_SETTINGS, seed=seed)
    ids = trainer.encode(held)

    def held_out_loss() -> float:
        # As evaluation.mean_loss: streams side by side, each from a fresh state, masked padding.
        S, L = stream_cut(len(ids) - 1)
        X = np.zeros((S, L), np.int64)
        Y = np.zeros((S, L), np.int64)
        mask = np.zeros((S, L), np.float32)
        for s in range(S):
            part = ids[s * L : s * L + L + 1]
            X[s, : len(part) - 1], Y[s, : len(part) - 1] = part[:-1], part[1:]
            mask[s, : len(part) - 1] = 1.0
        model = trainer.model.eval()
        total, state = 0.0, None
        with torch.no_grad():
            for p in range(0, L, 256):
                x = torch.from_numpy(X[:, p : p + 256].T.copy())            # (T, S)
                logits, state = model(x, state)
                nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                      torch.from_numpy(Y[:, p : p + 256].T.reshape(-1).copy()),
                                      reduction="none")
                total += float((nll * torch.from_numpy(mask[:, p : p + 256].T.reshape(-1).copy()))
                               .sum())
        model.train()
        return total / float(mask.sum())

    points, clock, steps = [], 0.0, 0
    for budget in sorted(budgets):
        while clock < budget * 60:
            start = time.perf_counter()
            trainer.train(10)
            clock += time.perf_counter() - start
            steps += 10
        points.append({"minutes": budget, "held_out": held_out_loss(), "steps": steps})
    return {"points": points, "model": "LSTM 2x256 (nn.Embedding 64)",
            "chars_per_sec": steps * trainer.chars_per_step / clock}


def in_process(fn, *args):
    """Run ``fn(*args)`` in a fresh interpreter: each program with its own thread pools."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--budgets", default="0.5,1,3,10", help="minutes, comma-separated")
    ap.add_argument("--only", action="append", choices=["tinyshakespeare", "python"])
    ap.add_argument("--no-torch", action="store_true", help="leave out the PyTorch column")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    args = ap.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    names = args.only or ["tinyshakespeare", "python"]
    with_torch = not args.no_torch and tref.available()

    print(_common.machine_line())
    results = {}
    for name in names:
        train, held = corpus(name)
        print(f"\n== {name}: train {len(train):,} chars, held out {len(held):,} chars, "
              f"{len(set(train))} distinct", flush=True)
        results[name] = {"engine": {}, "torch": None}
        if with_torch:
            r = in_process(torch_run, name, budgets, args.seed)
            results[name]["torch"] = r
            for p in r["points"]:
                print(f"   torch {r['model']}, {p['minutes']:g} min: held out "
                      f"{p['held_out']:.3f} after {p['steps']:,} steps", flush=True)
        for minutes in budgets:
            r = in_process(engine_run, name, minutes, args.seed)
            results[name]["engine"][minutes] = r
            print(f"   engine {minutes:g} min: held out {r['held_out']:.3f}, {r['model']}, "
                  f"{r['steps']:,} steps in {r['seconds']:.0f} s; {r['stopped']}", flush=True)

    rows = []
    for name, r in results.items():
        torch_at = {p["minutes"]: p for p in r["torch"]["points"]} if r["torch"] else {}
        for minutes, e in r["engine"].items():
            t = torch_at.get(minutes)
            rows.append([name, f"{minutes:g} min", f"{e['held_out']:.3f}",
                         f"{e['model']}, {e['steps']:,} steps",
                         f"{t['held_out']:.3f}" if t else "-",
                         f"{t['steps']:,} steps" if t else "-",
                         f"{t['held_out'] - e['held_out']:+.3f}" if t else "-"])
    print_table(["corpus", "budget", "engine held-out", "engine model", "torch held-out",
                 "torch", "torch - engine"], rows,
                title="Held-out loss (nats/char) after a wall-clock budget; lower is better")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": _common.machine_line(), "results": results}, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

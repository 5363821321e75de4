"""Training throughput and sampling latency: this engine against the classic algorithm and PyTorch.

All compared programs run in ONE run, ALTERNATING: each round gives every contender of a
comparison one slice of work (about --round-seconds long) in turn, A, B, C, A, B, C, ... so a
neighbour's burst of load on this shared machine hits every contender alike instead of one.
Each contender's figure is the median over the rounds; the min..max column shows the noise.
Each contender lives in a process of its own, started once and driven over a pipe, so every
program runs with its own process-wide defaults (memory allocator settings, BLAS and torch thread
pools) and none inherits another's, exactly as each would run for a user.

Throughput is measured from outside, around a fixed amount of work calibrated in a warm-up, so it
includes everything a user waits for (for the engine: the whole `fit(steps=n)` call, its
per-call set-up included). Every contender is warmed up before the first round.

Comparisons (tinyshakespeare, the classic configuration: vanilla tanh RNN, hidden 100, seq 25,
Adagrad 0.1, element-wise clip ±5):
  rnn     engine batch 1 and batch 32 (float32) | classic per-character loop (float64)
          | torch nn.RNN batch 1 and batch 32 at 1 and 2 threads
          | torch nn.Embedding + nn.RNN batch 32 at 1 and 2 threads
  lstm    engine LSTM 2x256 batch 32 | torch nn.LSTM 2x256 batch 32 at 1 and 2 threads
          (both Adam 2e-3, one-hot torch input)
  presets GRU 2x128, GRU 2x256 and LSTM 2x256, each: the engine through `CharRNN(cell=...,
          hidden_size=..., layers=...).fit(...)` with automatic workers | what a PyTorch user
          writes, nn.Embedding -> the fused nn.GRU / nn.LSTM -> nn.Linear, at 1 and 2 threads;
          all at batch 32, window 50, Adam 2e-3, global-norm clip 1
  sample  engine RNN hidden 128, `sample(length=1000)` | classic one-hot + np.random.choice loop

Every training table also gives the fraction of the two-core float32 GEMM peak each program
reaches: chars/s x the model's multiply-adds per character (forward, backward and weight
gradients, with the first layer's input a table lookup), against twice the one-core sgemm rate
measured at the start of the run (`gemm_peak`).

    python benchmarks/bench_speed.py --quick   # ~1.5 min on a quiet machine:
                                               #   a smoke run, rough figures
    python benchmarks/bench_speed.py           # ~12 min on a quiet machine:
                                               #   the figures for the README
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from typing import Callable

import _common  # noqa: F401  (sets sys.path for the package and the sibling scripts)
import classic
import torch_reference as tref
from _common import fmt_num, median, print_table, spread

SEQ = 25


@dataclass
class Contender:
    """One program in a comparison. `run(n)` does n units of work of `chars_per_unit` characters."""
    name: str
    run: Callable[[int], None]
    chars_per_unit: int
    dtype: str
    threads: str
    kind: str = ""                      # "engine" | "classic" | "torch": what the ratios divide by
    units: int = 1                      # units per round, set by the warm-up
    rates: list[float] = field(default_factory=list)   # chars/s, one per round
    meter: dict | None = None          # the engine's own chars/s meter, when it has one
    # seconds a call costs beyond its units (estimated in warm-up)
    call_overhead: float = 0.0
    macs: int = 0                       # the model's multiply-adds per character trained (0: n/a)

    @property
    def rate(self) -> float:
        return median(self.rates)


# --------------------------------------------------------------------------------------------
# Contenders. Each factory returns a Contender ready to run, or a string saying why it can't.
# --------------------------------------------------------------------------------------------

def engine_trainer(text: str, label: str, cell: str, hidden: int, layers: int, batch: int,
                   optimizer: str, lr: float, threads: int = 1, seq_length: int = SEQ,
                   clip: float = 5.0, clip_mode: str = "value"):
    """The engine through its public API: one `fit(steps=n)` call per unit of n steps, with
    `threads` BLAS threads (the engine's default is 1; 2 is faster for big models on an idle
    machine, so both are measured, as PyTorch is)."""
    ok, why = _common.engine_available()
    if not ok:
        return f"engine not importable yet ({why})"
    from charrnn_magic import CharRNN

    model = CharRNN(cell=cell, hidden_size=hidden, layers=layers, dropout=0.0, dtype="float32")
    model.blas_threads = threads
    if threads > 1:
        model.workers = 1          # BLAS threads or batch-sharing workers, not both on 2 cores
    meter = {}

    def on_progress(p):
        # the engine's own meter, shown next to ours as a cross-check
        meter["cps"] = p.chars_per_sec

    def run(steps: int) -> None:
        model.fit(text, steps=steps, batch_size=batch, seq_length=seq_length, optimizer=optimizer,
                  lr=lr, clip=clip, clip_mode=clip_mode, lr_schedule="constant", val_fraction=0,
                  callback=on_progress)

    run(1)      # the first fit builds the weights; then where training runs is known
    workers = model.where_training_runs().split(":")[0]       # e.g. "2 workers"
    return Contender(label, run, seq_length * batch, "float32",
                     f"blas {threads}, {workers}", kind="engine", meter=meter,
                     macs=macs_per_char(cell, hidden, layers, len(set(text))))


def classic_trainer(text: str):
    model = classic.ClassicRNN(text, hidden_size=100, seq_length=SEQ)
    # The tutorial never touches BLAS threads, so neither do we: NumPy's default.
    return Contender("classic per-char loop", lambda n: model.train(steps=n), SEQ, "float64",
                     "NumPy default", kind="classic")


def torch_trainer(text: str, label: str, threads: int, **cfg):
    if not tref.available():
        return f"torch not installed ({tref.TORCH_INSTALL})"
    tref.set_threads(threads)      # for this contender's process only
    trainer = tref.TorchTrainer(text, **cfg)
    return Contender(label, trainer.train, trainer.chars_per_step, "float32", str(threads),
                     kind="torch", macs=macs_per_char(cfg.get("cell", "rnn"),
                                                      cfg.get("hidden_size", 100),
                                                      cfg.get("layers", 1), trainer.vocab_size))


SAMPLE_LEN = 1000


def engine_sampler(text: str, hidden: int):
    ok, why = _common.engine_available()
    if not ok:
        return f"engine not importable yet ({why})"
    from charrnn_magic import CharRNN

    model = CharRNN(cell="rnn", hidden_size=hidden, layers=1, dropout=0.0, dtype="float32")
    # A few steps only: sampling speed does not depend on how well the weights are trained.
    model.fit(text, steps=20, val_fraction=0, seed=0)
    out = model.sample(length=SAMPLE_LEN, seed=0)
    if len(out) != SAMPLE_LEN:
        return f"engine sample(length={SAMPLE_LEN}) returned {len(out)} characters"
    return Contender(f"engine RNN h{hidden} sample(length={SAMPLE_LEN})",
                     lambda n: [model.sample(length=SAMPLE_LEN) for _ in range(n)],
                     SAMPLE_LEN, "float32", "engine's", kind="engine")


def panel_sampler(text: str, hidden: int, heatmap: bool = False):
    """The live panel's regeneration (ipywidgets, no browser): what a slider move costs."""
    ok, why = _common.engine_available()
    if not ok:
        return f"engine not importable yet ({why})"
    from charrnn_magic import CharRNN
    from charrnn_magic.notebook import sampler_panel

    model = CharRNN(cell="rnn", hidden_size=hidden, layers=1, dropout=0.0, dtype="float32")
    model.fit(text, steps=20, val_fraction=0, seed=0)
    panel = sampler_panel(model, length=SAMPLE_LEN, threaded=False)
    panel.heatmap.value = heatmap
    what = "panel regenerate, heat-map" if heatmap else "panel regenerate"
    return Contender(f"engine RNN h{hidden} {what} ({SAMPLE_LEN})",
                     lambda n: [panel.regenerate() for _ in range(n)],
                     SAMPLE_LEN, "float32", "engine's", kind="panel")


def classic_sampler(text: str, hidden: int):
    model = classic.ClassicRNN(text, hidden_size=hidden)
    return Contender(f"classic loop h{hidden} (np.random.choice)",
                     lambda n: [model.sample(SAMPLE_LEN) for _ in range(n)],
                     SAMPLE_LEN, "float64", "NumPy default", kind="classic")


GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def macs_per_char(cell: str, hidden: int, layers: int, vocab: int) -> int:
    """Multiply-adds one trained character needs: per layer the recurrent product h @ Wh forward,
    its carried gradient and its weight gradient (3 H·G), plus for every layer above the first
    the input product, its input gradient and its weight gradient (3 H·G; the first layer's input
    is a table lookup); the head forward, its input gradient and weight gradient (3 H·V). The
    same count for every program of a model, so the fractions of peak compare as the speeds do."""
    G = GATES[cell] * hidden
    return 3 * hidden * G * layers + 3 * hidden * G * (layers - 1) + 3 * hidden * vocab


def gemm_peak(seconds: float = 2.0) -> float:
    """The one-core float32 matrix-product rate, FLOP/s: the best of repeated 1024x1024x1024
    products with one BLAS thread, NumPy's BLAS (run in a child, so that this process's thread
    pools stay untouched)."""
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    p = ctx.Process(target=_gemm_rate, args=(there, seconds), daemon=True)
    p.start()
    rate = here.recv()
    p.join()
    return rate


def _gemm_rate(conn, seconds: float) -> None:
    import numpy as np
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    n = 1024
    a, b = (np.random.default_rng(0).standard_normal((n, n), dtype=np.float32) for _ in "ab")
    out = np.empty((n, n), np.float32)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    conn.send(best)


def peak_share(c: Contender, peak_two_cores: float | None) -> str:
    if not (c.macs and peak_two_cores):
        return "-"
    return f"{c.rate * c.macs * 2 / peak_two_cores:.0%}"


# --------------------------------------------------------------------------------------------
# The alternating runner: one process per contender, driven from here
# --------------------------------------------------------------------------------------------

def timed(c: Contender, units: int) -> float:
    gc.collect()  # don't let a contender pay for its own earlier garbage inside the timing
    start = time.perf_counter()
    c.run(units)
    return time.perf_counter() - start


def warm_up(c: Contender, seconds: float, round_seconds: float) -> None:
    """Run until warm, then size one round's work so it takes about `round_seconds`."""
    timed(c, 1)                           # first call: lazy weights, caches, thread pools
    units, elapsed = 1, timed(c, 1)
    one = elapsed
    while elapsed < seconds / 2 and units < 1_000_000:   # grow the probe until it is measurable
        units *= 2
        elapsed = timed(c, units)
    c.units = max(1, round(units * round_seconds / max(elapsed, 1e-9)))
    # What a call costs beyond its units (for the engine: fit()'s set-up). It stays inside the
    # measured figures; shown so a reader can see how much of a round it takes.
    c.call_overhead = max(0.0, one - elapsed / units)


def serve(conn, factory: Callable, kwargs: dict) -> None:
    """A contender's own process: build it, then warm it up or time it whenever asked."""
    c = factory(_common.read_data("tinyshakespeare.txt"), **kwargs)
    if isinstance(c, str):
        conn.send(c)
        return
    conn.send({k: getattr(c, k) for k in ("name", "chars_per_unit", "dtype", "threads", "kind",
                                          "macs")})
    while True:
        cmd, args = conn.recv()
        if cmd == "warm":
            warm_up(c, *args)
            conn.send((c.units, c.call_overhead))
        elif cmd == "run":
            conn.send((timed(c, args), dict(c.meter) if c.meter is not None else None))
        else:
            return


class Remote(Contender):
    """A contender living in its own process (see `serve`); `run` is a round trip over a pipe."""

    def __init__(self, conn, process, info: dict):
        super().__init__(run=self._run, **info)
        self.conn, self.process = conn, process

    def _run(self, units: int) -> float:
        self.conn.send(("run", units))
        seconds, meter = self.conn.recv()
        if meter is not None:
            self.meter = meter
        return seconds

    def warm_up(self, seconds: float, round_seconds: float) -> None:
        self.conn.send(("warm", (seconds, round_seconds)))
        self.units, self.call_overhead = self.conn.recv()

    def close(self) -> None:
        self.conn.send(("stop", None))
        self.process.join()


def run_alternating(contenders: list[Remote], rounds: int, warmup: float, round_seconds: float,
                    title: str) -> None:
    print(f"\n== {title}: warming up {len(contenders)} contenders", flush=True)
    for c in contenders:                # one at a time: the others wait idle in their processes
        c.warm_up(warmup, round_seconds)
        print(f"   {c.name}: {c.units} units of {c.chars_per_unit} chars per round; "
              f"per-call overhead ~{c.call_overhead * 1e3:.0f} ms", flush=True)
    for r in range(rounds):
        for c in contenders:            # A, B, C, A, B, C, ...
            c.rates.append(c.units * c.chars_per_unit / c.run(c.units))
        print(f"   round {r + 1}/{rounds}: " + ", ".join(f"{c.name} {fmt_num(c.rates[-1])}"
                                                       for c in contenders), flush=True)
    for c in contenders:
        c.close()


def build(specs, skipped: list[str]) -> list[Remote]:
    """Start one process per (name, factory, kwargs); a factory that returns a string instead of a
    contender is a skipped row, reported at the end. The processes start together (their imports
    overlap) and then wait for their turn."""
    ctx = mp.get_context("spawn")   # a fresh interpreter: nothing inherited from this process
    started = []
    for name, factory, kwargs in specs:
        here, there = ctx.Pipe()
        process = ctx.Process(target=serve, args=(there, factory, kwargs), daemon=True)
        process.start()
        started.append((name, here, process))
    out = []
    for name, conn, process in started:
        info = conn.recv()
        if isinstance(info, str):
            process.join()
            skipped.append(f"{name}: skipped, {info}")
            print(f"   {name}: skipped, {info}", flush=True)
        else:
            out.append(Remote(conn, process, info))
    return out


def best_torch(cs: list[Contender], prefix: str, kind: str = "torch") -> Contender | None:
    """The better of a program's thread counts, as the issue's targets compare against."""
    ts = [c for c in cs if c.kind == kind and c.name.startswith(prefix)]
    return max(ts, key=lambda c: c.rate) if ts else None


def ratio_value(a: Contender | None, b: Contender | None) -> float | None:
    if a is None or b is None or not b.rate:
        return None
    return a.rate / b.rate


def ratio(a: Contender | None, b: Contender | None) -> str:
    r = ratio_value(a, b)
    return "-" if r is None else f"{r:.2f}x"


def target_row(check: str, value: float | None, unit: str, wanted: str,
               met: Callable[[float], bool]):
    if value is None:
        return [check, "-", wanted, "-"]
    shown = f"{value:.2f}{unit}"
    return [check, shown, wanted, "yes" if met(value) else "NO"]


def training_table(cs: list[Contender], title: str, classic_c, torch_for,
                   peak: float | None = None) -> None:
    rows = []
    for c in cs:
        extra = []
        if c.meter:
            extra.append(f"engine's meter {fmt_num(c.meter.get('cps', float('nan')))}")
        if c.kind == "engine":
            extra.append(f"fit() overhead ~{c.call_overhead * 1e3:.0f} ms/call, included")
        extra = "; ".join(extra)
        rows.append([c.name, c.dtype, c.threads, fmt_num(c.rate), spread(c.rates),
                     ratio(c, classic_c) if c is not classic_c else "1.00x",
                     ratio(c, torch_for(c)), peak_share(c, peak), extra])
    print_table(["program", "dtype", "threads", "chars/s (median)", "min..max", "vs classic",
                 "vs torch best", "of 2-core peak", "note"], rows, title=title)


# --------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="3 short rounds: a smoke run, rough figures")
    ap.add_argument("--rounds", type=int, help="rounds per comparison (default 7; 3 with --quick)")
    ap.add_argument("--round-seconds", type=float,
                    help="work per contender per round (default 3 s; 1 s with --quick)")
    ap.add_argument("--only", action="append", choices=["rnn", "lstm", "presets", "sample"],
                    help="run only this comparison (repeatable)")
    ap.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    ap.add_argument("--torch-threads", default="1,2",
                    help="torch thread counts to try (default 1,2)")
    ap.add_argument("--json", metavar="PATH", help="also write every round's figures to PATH")
    args = ap.parse_args()

    rounds = args.rounds or (3 if args.quick else 7)
    round_s = args.round_seconds or (1.0 if args.quick else 3.0)
    warmup = 0.5 if args.quick else 2.0
    only = set(args.only or ["rnn", "lstm", "presets", "sample"])
    threads = [int(t) for t in args.torch_threads.split(",")] if not args.no_torch else []

    # a missing data file stops the run here, not in a child
    _common.read_data("tinyshakespeare.txt")
    print(_common.machine_line())
    print(f"{rounds} rounds, ~{round_s:g} s per contender per round, alternating")
    one_core = gemm_peak(0.5 if args.quick else 2.0)
    peak = 2 * one_core
    print(f"float32 GEMM peak: {one_core / 1e9:.1f} GFLOP/s on one core (1024^3 sgemm, best of "
          f"repeats), so {peak / 1e9:.1f} on two", flush=True)
    skipped: list[str] = []
    results: dict[str, list[Contender]] = {}
    targets = []  # table rows: check, measured, wanted, met

    if "rnn" in only:
        rnn = dict(tref.RNN_CLASSIC)
        specs = [
            ("engine RNN batch 1", engine_trainer, dict(
                label="engine RNN batch 1", cell="rnn", hidden=100, layers=1, batch=1,
                optimizer="adagrad", lr=0.1)),
            ("engine RNN batch 32", engine_trainer, dict(
                label="engine RNN batch 32", cell="rnn", hidden=100, layers=1, batch=32,
                optimizer="adagrad", lr=0.1)),
            ("engine RNN batch 32 (2 BLAS thr)", engine_trainer, dict(
                label="engine RNN batch 32 (2 BLAS thr)", cell="rnn", hidden=100, layers=1,
                batch=32, optimizer="adagrad", lr=0.1, threads=2)),
            ("classic", classic_trainer, {}),
        ]
        for b in (1, 32):
            for t in threads:
                label = f"torch nn.RNN batch {b} ({t} thr)"
                specs.append((label, torch_trainer,
                              dict(label=label, threads=t, **dict(rnn, batch_size=b))))
        for t in threads:
            label = f"torch nn.Embedding+nn.RNN batch 32 ({t} thr)"
            specs.append((label, torch_trainer, dict(label=label, threads=t, inputs="embedding",
                                                     **dict(rnn, batch_size=32))))
        cs = build(specs, skipped)
        run_alternating(cs, rounds, warmup, round_s, "RNN h100 seq 25 Adagrad 0.1 clip 5")
        results["rnn"] = cs
        cl = next((c for c in cs if c.kind == "classic"), None)

        def torch_for(c):
            return best_torch(cs, "torch nn.RNN batch 32" if "32" in c.name
                              else "torch nn.RNN batch 1")

        training_table(cs, "Training throughput, vanilla RNN, hidden 100, seq 25 (chars/s)", cl,
                       torch_for, peak)
        e32 = best_torch(cs, "engine RNN batch 32", kind="engine")
        if e32:
            targets.append(target_row("RNN batch 32 vs classic", ratio_value(e32, cl), "x",
                                      ">= 15x", lambda v: v >= 15))
            targets.append(target_row("RNN batch 32 vs torch one-hot (better of threads)",
                                      ratio_value(e32, torch_for(e32)), "x", ">= 2x",
                                      lambda v: v >= 2))
            targets.append(target_row("RNN batch 32 vs torch nn.Embedding (better of threads)",
                                      ratio_value(e32, best_torch(cs, "torch nn.Embedding")),
                                      "x", ">= 2x", lambda v: v >= 2))

    if "lstm" in only:
        lstm = dict(tref.LSTM_2x256)
        labels = {1: "engine LSTM 2x256 batch 32", 2: "engine LSTM 2x256 batch 32 (2 BLAS thr)"}
        specs = [(labels[t], engine_trainer, dict(label=labels[t], cell="lstm", hidden=256,
                                                  layers=2, batch=32, optimizer=lstm["optimizer"],
                                                  lr=lstm["lr"], threads=t))
                 for t in (1, 2)]
        for t in threads:
            label = f"torch nn.LSTM 2x256 batch 32 ({t} thr)"
            specs.append((label, torch_trainer, dict(label=label, threads=t, **lstm)))
        cs = build(specs, skipped)
        run_alternating(cs, rounds, warmup, round_s, "LSTM 2x256 seq 25 batch 32 Adam 2e-3 clip 5")
        results["lstm"] = cs
        training_table(cs, "Training throughput, LSTM 2 layers x 256, batch 32 (chars/s)", None,
                       lambda c: best_torch(cs, "torch nn.LSTM"), peak)
        e = best_torch(cs, "engine LSTM", kind="engine")
        if e:
            targets.append(target_row("LSTM 2x256 seq 25 vs torch one-hot (better of threads)",
                                      ratio_value(e, best_torch(cs, "torch nn.LSTM")), "x",
                                      ">= 1.0x", lambda v: v >= 1.0))

    if "presets" in only:
        wanted = {"GRU 2x128": 1.5, "GRU 2x256": 1.5, "LSTM 2x256": 1.2}
        preset = dict(tref.PRESET_SETTINGS)
        for model, want in wanted.items():
            arch = tref.PRESET_MODELS[model]
            label = f"engine {model}"
            specs = [(label, engine_trainer, dict(
                label=label, cell=arch["cell"], hidden=arch["hidden_size"],
                layers=arch["layers"], batch=preset["batch_size"], optimizer=preset["optimizer"],
                lr=preset["lr"], seq_length=preset["seq_length"], clip=preset["clip"],
                clip_mode=preset["clip_mode"]))]
            for t in threads:
                tl = f"torch {model} nn.Embedding ({t} thr)"
                specs.append((tl, torch_trainer, dict(label=tl, threads=t, **arch, **preset)))
            cs = build(specs, skipped)
            run_alternating(cs, rounds, warmup, round_s,
                            f"{model} window 50 batch 32 Adam 2e-3 norm clip 1")
            results[f"presets {model}"] = cs
            torch_best = best_torch(cs, f"torch {model}")
            training_table(cs, f"Training throughput, {model}, window 50, batch 32 (chars/s)",
                           None, lambda c, best=torch_best: best, peak)
            e = best_torch(cs, "engine", kind="engine")
            if e:
                targets.append(target_row(
                    f"{model} vs torch nn.Embedding (better of threads)",
                    ratio_value(e, torch_best), "x", f">= {want}x",
                    lambda v, want=want: v >= want))

    if "sample" in only:
        cs = build([("engine sampling", engine_sampler, dict(hidden=128)),
                    ("panel", panel_sampler, dict(hidden=128)),
                    ("panel heat-map", panel_sampler, dict(hidden=128, heatmap=True)),
                    ("classic sampling", classic_sampler, dict(hidden=128))], skipped)
        run_alternating(cs, rounds, warmup, round_s,
                        "sampling, hidden 128, 1000 characters per call")
        results["sample"] = cs
        cl = next((c for c in cs if c.kind == "classic"), None)
        rows = [[c.name, c.dtype, fmt_num(c.rate), spread(c.rates), f"{1e6 / c.rate:.2f}",
                 ratio(c, cl) if c is not cl else "1.00x"] for c in cs]
        print_table(["program", "dtype", "chars/s (median)", "min..max", "ms per 1000 chars",
                     "vs classic"],
                    rows, title="Sampling, hidden 128 (one sample of 1000 characters per call)")
        e = next((c for c in cs if c.kind == "engine"), None)
        if e:
            targets.append(target_row("sampling vs classic loop", ratio_value(e, cl), "x", ">= 2x",
                                      lambda v: v >= 2))
            targets.append(target_row("sampling: ms per 1000 chars", 1e6 / e.rate, " ms",
                                      "<= 10 ms", lambda v: v <= 10))
        p = next((c for c in cs if c.kind == "panel"), None)
        if p:
            targets.append(target_row("panel regenerate: ms per 1000 chars (issue 4)", 1e6 / p.rate,
                                      " ms", "~30 ms", lambda v: v <= 30))

    if targets:
        print_table(["target", "measured", "wanted", "met"], targets,
                    title="Targets, measured in this run")
    if skipped:
        print("\nSkipped rows:")
        for s in skipped:
            print(f"  - {s}")
    if args.json:
        out = {"machine": _common.machine_line(), "rounds": rounds, "round_seconds": round_s,
               "gemm_peak_one_core_flops": one_core,
               "results": {k: [{"name": c.name, "dtype": c.dtype, "threads": c.threads,
                                "chars_per_unit": c.chars_per_unit, "units": c.units,
                                "chars_per_sec_rounds": c.rates} for c in v]
                           for k, v in results.items()},
               "skipped": skipped}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

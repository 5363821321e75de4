"""Looking inside: how long the trace, the unit finder and the inspector's recolouring take.

The targets (issue "Look inside the model") are absolute, on this 2-core machine:

- a trace of 10,000 characters through a GRU 2x128: at most 0.3 s;
- the finder over 20,000 characters and every unit of a 2x256 model: at most 1 s;
- recolouring the inspector after a slider move, 3,000 characters shown: at most 50 ms.

Each figure is the median of several runs, with the CPU time beside the wall time: on a shared
machine the wall time measures the neighbours too. The models are trained for a few steps only:
the work of a trace or a finder does not depend on how good the weights are.

    python benchmarks/bench_inside.py
"""
from __future__ import annotations

import argparse
import statistics
import time

import _common
from _common import print_table


def timed(fn, repeat: int):
    """(median wall seconds, median CPU seconds) of ``repeat`` calls of ``fn``."""
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def trained(text: str, cell: str, hidden: int):
    from charrnn_magic import CharRNN

    model = CharRNN(cell=cell, hidden_size=hidden, layers=2)
    model.fit(text[:50_000], steps=3, seed=1, batch_size=8, val_fraction=0.0)
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (default 7)")
    args = parser.parse_args(argv)
    from charrnn_magic.notebook.inspector import inspector_panel
    from charrnn_magic.unit_finder import find_units

    text = _common.read_data("tinyshakespeare.txt")
    print(_common.machine_line())
    rows = []

    gru = trained(text, "gru", 128)
    gru.trace(text[:10_000])                                   # warm-up
    wall, cpu = timed(lambda: gru.trace(text[:10_000]), args.repeat)
    rows.append(["trace, 10,000 chars, GRU 2x128", f"{wall * 1e3:.0f} ms", f"{cpu * 1e3:.0f} ms",
                 "300 ms"])

    big = trained(text, "gru", 256)
    trace = big.trace(text[:20_000])
    find_units(trace)                                           # warm-up: the features' cache
    wall, cpu = timed(lambda: find_units(trace), args.repeat)
    units = sum(a.shape[1] for layer in trace.states.values() for a in layer.values())
    rows.append([f"finder, 20,000 chars x {units:,} units (GRU 2x256)", f"{wall * 1e3:.0f} ms",
                 f"{cpu * 1e3:.0f} ms", "1,000 ms"])

    lstm = trained(text, "lstm", 128)
    panel = inspector_panel(lstm, text[:12_000], window=3_000)
    moves = iter(range(1, 10_000))
    wall, cpu = timed(lambda: setattr(panel.unit, "value", next(moves) % 128), args.repeat * 3)
    rows.append(["recolour after a unit-slider move, 3,000 chars", f"{wall * 1e3:.1f} ms",
                 f"{cpu * 1e3:.1f} ms", "50 ms"])
    rows.append(["  HTML sent for that window", f"{len(panel.view.value) / 1e3:.0f} kB", "", ""])
    print_table(["what", "wall (median)", "CPU (median)", "target"], rows,
                title="Looking inside: trace, finder, recolouring")


if __name__ == "__main__":
    main()

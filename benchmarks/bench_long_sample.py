"""Long samples: the speed and memory of ``%charrnn_sample -n N`` at 1,000 and 2,000,000 characters.

The target (issue 23, "hostile input, round two"): a character costs the same time in a sample of
2,000,000 characters as in one of 1,000, and a few bytes of memory, not hundreds.

Each length runs in a fresh child process, through the magic in a real IPython shell
(``--quiet``: nothing printed), on a GRU 2x128 trained for a few steps on the built-in ``verse``
corpus (the work of a step does not depend on how good the weights are). Each child reports:

- chars/s, from the wall time and from the CPU time (on a shared machine the wall time measures
  the neighbours too); the 1,000-character figure is the median of ``--repeat`` calls;
- bytes per character: the most memory allocated at once during one more call, traced by
  ``tracemalloc`` (which NumPy reports its arrays to), over the characters returned. (The growth
  of the peak resident memory says nothing here: a short sample fits in the memory training
  already took.)

    python benchmarks/bench_long_sample.py            # 1,000 and 2,000,000
    python benchmarks/bench_long_sample.py --long 200000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import _common
from _common import fmt_num, print_table

_CHILD = r"""
import json, statistics, sys, time, tracemalloc
from IPython.core.interactiveshell import InteractiveShell
n, repeat = int(sys.argv[1]), int(sys.argv[2])
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "charrnn_magic")
shell.run_line_magic("charrnn_train", "m --corpus verse --cell gru --hidden 128 --layers 2 "
                                      "--steps 3 --seed 1 --quiet")
shell.run_line_magic("charrnn_sample", "m -n 1000 --random-seed 0 --quiet")      # warm-up
wall, cpu = [], []
for i in range(repeat):
    w, c = time.perf_counter(), time.process_time()
    text = shell.run_line_magic("charrnn_sample", f"m -n {n} --random-seed {i} --quiet")
    wall.append(time.perf_counter() - w)
    cpu.append(time.process_time() - c)
    assert len(text) == n, len(text)
    del text
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
text = shell.run_line_magic("charrnn_sample", f"m -n {n} --random-seed 0 --quiet")
peak = tracemalloc.get_traced_memory()[1] - before
print(json.dumps({"wall": statistics.median(wall), "cpu": statistics.median(cpu),
                  "bytes": peak}))
"""


def measure(n: int, repeat: int) -> dict:
    """What the child reports for a sample of ``n`` characters."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_common.REPO),
                                                       os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(repeat)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=2_000_000, help="the long sample's length")
    parser.add_argument("--repeat", type=int, default=15, help="calls of the short sample")
    args = parser.parse_args(argv)
    print(_common.machine_line())
    rows = []
    for n, repeat in ((1000, args.repeat), (args.long, 1)):
        got = measure(n, repeat)
        rows.append([f"{n:,} characters", fmt_num(n / got["wall"]), fmt_num(n / got["cpu"]),
                     f"{got['wall'] * 1e3:,.0f} ms", f"{got['bytes'] / n:.1f}"])
    print_table(["%charrnn_sample -n N, GRU 2x128", "chars/s (wall)", "chars/s (CPU)",
                 "wall time", "bytes/char (traced peak)"], rows)


if __name__ == "__main__":
    main()

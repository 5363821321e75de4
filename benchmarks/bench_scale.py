"""Big corpora: how long `%charrnn_train --file BIG.txt` takes to its first training step, and
the most memory the process held by then.

For each size (default 50 MB, 200 MB, 1 GB) a file is made in a temporary folder from
tinyshakespeare repeated (../shared/data; nothing is written into the repository, and the
folder is removed at the end). Each size runs in a fresh Python process of its own that starts
an IPython shell, loads the extension and runs the magic with the default preset. The first
training step's progress callback records the time since the magic was called and the
process's peak resident memory (``ru_maxrss``, which counts the pages of the text, the ids and
NumPy's arrays alike), then interrupts the run, as the kernel's stop button would.

    python benchmarks/bench_scale.py                  # 50 MB, 200 MB and 1 GB (a few minutes)
    python benchmarks/bench_scale.py --sizes 50       # one size, in MB

Targets (the issue "Big texts and hostile input"): a 1 GB file starts training within 60 s with
a peak RSS of at most 3 GB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, machine_line, read_data

CHILD = r"""
import json, resource, sys, time
from IPython.core.interactiveshell import InteractiveShell
from charrnn_magic import CharRNN

path = sys.argv[1]
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "charrnn_magic")
first = {}
fit = CharRNN.fit

def timed_fit(self, text, *args, callback=None, **kwargs):
    def on_step(progress):
        if not first:
            first["seconds"] = time.perf_counter() - start
            first["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            raise KeyboardInterrupt          # stop after the first step, as the stop button does
    return fit(self, text, *args, callback=on_step, **kwargs)

CharRNN.fit = timed_fit
start = time.perf_counter()
shell.run_line_magic("charrnn_train", f"--file {path} --steps 100 --quiet")
first["total_seconds"] = time.perf_counter() - start
first["final_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(first))
"""


def make_file(folder: Path, megabytes: int) -> Path:
    """A file of ``megabytes`` MB (10**6 bytes) of tinyshakespeare (or its stand-in), repeated
    and cut."""
    source = read_data("tinyshakespeare.txt").encode("utf-8")
    path = folder / f"shakespeare-{megabytes}MB.txt"
    size = megabytes * 10**6
    with open(path, "wb") as f:
        written = 0
        while written < size:
            piece = source[: size - written]
            f.write(piece)
            written += len(piece)
    return path


def measure(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=REPO, capture_output=True,
                          text=True, check=False,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                               "IPYTHONDIR": str(path.parent / "ipython")})
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000],
                        help="file sizes in MB (default: 50 200 1000)")
    args = parser.parse_args()
    print(machine_line())
    print(f"{'file':>8}  {'to first step':>13}  {'peak RSS':>9}  {'whole run':>9}")
    with tempfile.TemporaryDirectory(prefix="charrnn-scale-") as folder:
        for mb in args.sizes:
            path = make_file(Path(folder), mb)
            r = measure(path)
            path.unlink()
            if "error" in r:
                print(f"{mb:>6} MB  failed: {r['error']}")
                continue
            print(f"{mb:>6} MB  {r['seconds']:>11.1f} s  {r['rss_mb']:>6,.0f} MB  "
                  f"{r['total_seconds']:>7.1f} s", flush=True)


if __name__ == "__main__":
    main()

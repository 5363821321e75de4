"""Shared plumbing for the benchmark scripts: where the data lives, the machine line, the tables.

Kept apart so each benchmark file holds one idea (an algorithm, or a comparison) and nothing else.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The data sets live beside the repository (../shared/data) and are never copied into it.
DATA = REPO.parent / "shared" / "data"

# OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) override the kernel (and cache size) OpenBLAS picks
# for the processor; a machine may set them for old OpenBLAS builds that misjudge their CPU, and
# they then pin NumPy's current OpenBLAS to an older kernel (see benchmarks/README.md). The
# benchmarks measure OpenBLAS as it chooses by itself, so every one runs without both, unless
# CHARRNN_BENCH_BLAS_ENV=keep; ``machine_line`` names the kernel used.
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if os.environ.get("CHARRNN_BENCH_BLAS_ENV") != "keep" and any(v in os.environ for v in BLAS_ENV):
    dropped = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    dropped["CHARRNN_BENCH_BLAS_ENV"] = "dropped " + ", ".join(
        f"{v}={os.environ[v]}" for v in BLAS_ENV if v in os.environ)
    os.execve(sys.executable, [sys.executable, *sys.argv], dropped)

# Let `python benchmarks/X.py` import the package and the sibling scripts without an install.
for _p in (str(REPO), str(Path(__file__).resolve().parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from tests import datasets  # noqa: E402  (the fallback texts, shared with the tests)

#: Stand-ins for the data sets when ../shared/data is not beside the repository (a plain clone):
#: the tests' own texts, made from the pydoc corpus that ships inside CPython.
FALLBACKS = {
    "tinyshakespeare.txt": ("the pydoc corpus", lambda: datasets.prose()),
    "names.txt": ("the pydoc corpus's words", lambda: "\n".join(datasets.names()) + "\n"),
}


def read_data(name: str) -> str:
    """A data set of ../shared/data, or its stand-in (``FALLBACKS``) where that folder is
    missing; ``data_line`` says which the figures came from."""
    path = DATA / name
    if path.exists():
        return path.read_text(encoding="utf-8")
    if name in FALLBACKS and not DATA.is_dir():
        return FALLBACKS[name][1]()
    sys.exit(f"data file not found: {path} (the benchmarks read ../shared/data/ from the repo "
             f"root; without that folder they use {', '.join(FALLBACKS)}'s stand-ins)")


def data_line() -> str:
    """Where ``read_data`` reads from: part of the machine line, since figures depend on it."""
    if DATA.is_dir():
        return "data: ../shared/data"
    return "data: no ../shared/data, so " + ", ".join(
        f"{name} is {what}" for name, (what, _) in FALLBACKS.items())


def engine_available() -> tuple[bool, str]:
    """Whether the engine's Python API can be imported yet, and why not when it cannot."""
    try:
        from charrnn_magic import CharRNN  # noqa: F401
    except Exception as exc:  # ImportError while the engine is being written, or a bug in it
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def machine_line() -> str:
    """One line describing where the numbers came from; timing means nothing without it."""
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} cores", f"Python {platform.python_version()}",
             f"NumPy {np.__version__} ({blas_line()})"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
    except ImportError:
        parts.append("torch not installed")
    parts.append(data_line())
    try:
        load = os.getloadavg()
        parts.append(f"load avg {load[0]:.2f} (1 min)")
    except OSError:
        pass
    return "; ".join(parts)


def blas_line() -> str:
    """NumPy's BLAS and the kernel it runs, e.g. ``OpenBLAS 0.3.31 SkylakeX kernel (dropped
    OPENBLAS_CORETYPE=Haswell)``."""
    from threadpoolctl import threadpool_info

    blas = next((i for i in threadpool_info() if i["user_api"] == "blas"), None)
    if blas is None:
        return "BLAS unknown"
    line = f"{blas['internal_api']} {blas['version']} {blas.get('architecture')} kernel"
    env = os.environ.get("CHARRNN_BENCH_BLAS_ENV", "")
    if env.startswith("dropped"):
        return f"{line}, {env}"
    kept = [f"{v}={os.environ[v]}" for v in BLAS_ENV if v in os.environ]
    return line + (f", kept {', '.join(kept)}" if kept else "")


def median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs) -> str:
    """min..max of the rounds: tells at a glance how noisy the machine was."""
    if not xs:
        return "-"
    return f"{fmt_num(min(xs))}..{fmt_num(max(xs))}"


def fmt_num(x: float) -> str:
    """Throughputs span 1e3..1e6: 3 significant figures with a k/M suffix reads best."""
    if x != x:  # NaN
        return "-"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def print_table(headers: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """A plain-text table (right-aligned numbers, left-aligned first column), also valid
    Markdown."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        out = []
        for i, (c, w) in enumerate(zip(cells, widths, strict=True)):
            out.append(str(c).ljust(w) if i == 0 else str(c).rjust(w))
        return "| " + " | ".join(out) + " |"

    if title:
        print(f"\n{title}")
    print(line(headers))
    rule = "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths))
    print("|" + rule + "|")
    for r in rows:
        print(line(r))

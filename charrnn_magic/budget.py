"""What a request will cost in memory, and whether this process can have it: the one place that
refuses a size before anything of that size is allocated.

Every front end (the ``CharRNN`` API, the magics, the panel, the inspector, ``python -m
charrnn_magic``) reaches the engine through the checks here, so a model too big to build, a
sample too long to return or a file too big to read ends in one ``ValueError`` that gives the
arithmetic and says what to change (the magics show it as a ``UsageError``), never in a
``MemoryError`` or a kernel killed by the system:

    a 1 x 100,000 GRU has 30.0 billion weights: 112 GiB as float32 for the weights alone,
    several times that to train; this machine has 21.3 GiB free: choose a smaller hidden_size
    (--hidden)

What the machine can give (:func:`available`) is the smallest of the memory the system says is
available (``MemAvailable`` in ``/proc/meminfo``: free memory plus the caches it can drop), what
is left under the process's address-space or data limit when it has one (``ulimit -v``,
``resource.setrlimit``), and what is left under its control group's memory limit when it has
one (a container's or a JupyterHub user's, cgroup v2 or v1). Elsewhere ``os.sysconf`` gives the
free physical pages, or failing that all of them; where nothing is known nothing is refused. No
psutil: on Linux it reads the same files, read here in a few lines (and it knows nothing of
control groups), and it would be one more compiled dependency for every install.

A MemoryError that happens all the same (an estimate too low, or memory another program took
since the check) is turned into the same kind of one-line ValueError where it can be met: in a
training window (``train.run``), reading a file (``text.read_text``) and making a sample's
arrays (``sampling.collect``); see :func:`out_of_memory`.

The estimates (:func:`training_bytes`, :func:`sampling_bytes`, :func:`text_bytes`) count the
arrays the engine allocates, term by term; ``benchmarks/README.md`` compares them with measured
peaks. A request is refused when it needs more than ``SHARE`` of what is available: the rest is
left for Python, the notebook and the estimate's error.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

#: The part of the available memory a request may take.
SHARE = 0.8
#: Kept free under an address-space limit for what a run maps besides its arrays (thread stacks
#: and malloc arenas of the worker threads, BLAS buffers).
ADDRESS_SPACE_RESERVE = 256 << 20
#: Gumbel noise sampling draws at a time, at most (fewer steps a block for many samples; at
#: least one step's).
NOISE_BYTES = 8 << 20
#: Bytes of the second worker's process before its arrays (Python and NumPy).
CHILD_BASE = 64 << 20
#: Bytes of a Python ``str`` besides its characters, and of a list slot holding it.
STR_OVERHEAD = 80


@dataclass(frozen=True)
class Available:
    """``bytes`` this process can still allocate, and ``where`` that figure came from, as the
    end of a sentence: ``"this machine has 21.3 GiB free"``."""

    bytes: int
    where: str


def available() -> Available | None:
    """What this process can allocate now (see the module help), or None when it is unknown."""
    found = []
    free = _meminfo_available()
    if free is not None:
        found.append(Available(free, f"this machine has {size(free)} free"))
    else:
        free = _sysconf_available()
        if free is not None:
            found.append(Available(free, f"this machine has about {size(free)} free"))
    for limit in (_limit_headroom(), _cgroup_headroom()):
        if limit is not None:
            found.append(limit)
    return min(found, key=lambda a: a.bytes) if found else None


def check(need: int, what: str, change: str) -> None:
    """A ValueError ``"{what}; {where}: {change}"`` when ``need`` bytes are more than ``SHARE`` of
    what is available; nothing otherwise, or when what is available is unknown."""
    have = available()
    if have is not None and need > SHARE * have.bytes:
        raise ValueError(f"{what}; {have.where}: {change}")


@contextlib.contextmanager
def out_of_memory(what: str, change: str):
    """Turn a MemoryError inside the block (an estimate too low, or memory taken by another
    program since the check) into the ValueError the user would have had before: ``"{what}
    ran out of memory; {where}: {change}"``."""
    try:
        yield
    except MemoryError:
        raise ran_out_of_memory(what, change) from None


def ran_out_of_memory(what: str, change: str) -> ValueError:
    """The ValueError for a MemoryError met by ``what`` (see ``out_of_memory``)."""
    have = available()
    where = f"; {have.where}" if have is not None else ""
    return ValueError(f"{what} ran out of memory{where}: {change}")


def size(n: float) -> str:
    """Bytes for people: ``"112 GiB"``, ``"4.7 GiB"``, ``"350 MiB"``, ``"12 KiB"``."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:,.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}"
    return f"{int(n)} bytes"


def count_words(n: int) -> str:
    """``30_002_000_004`` -> ``"30.0 billion"``; below a million, the digits."""
    for word, scale in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {word}"
    return f"{n:,}"


# ---- models -------------------------------------------------------------------------------------
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_STATES = {"rnn": 1, "gru": 1, "lstm": 2}
_OPTIMIZER_SLOTS = {"sgd": 0, "adagrad": 1, "adam": 2}


def n_weights(cell: str, vocab_size: int, hidden: int, layers: int) -> int:
    """The weights of a network (``model.Network.size``), from its shapes alone."""
    G = _GATES[cell] * hidden
    per_layer = hidden * G + G + (hidden if cell == "gru" else 0)      # Wh, b (+ the GRU's bhn)
    return vocab_size * G + (layers - 1) * hidden * G + layers * per_layer \
        + hidden * vocab_size + vocab_size


def _cache_per_layer(cell: str, T: int, B: int, H: int) -> int:
    """Elements a layer's forward pass keeps for the backward (each layer's until the loss of
    the window is known): its states and gate activations."""
    G = _GATES[cell] * H
    TB = T * B
    return {"rnn": TB * H + B * H, "gru": 2 * TB * G + TB * H + B * H,
            "lstm": TB * G + 3 * TB * H + 2 * B * H}[cell]


def window_bytes(cell: str, vocab_size: int, hidden: int, layers: int, batch: int, window: int,
                 itemsize: int, dropout: bool = False) -> int:
    """The workspace of one training window of ``batch`` x ``window`` characters (the arrays
    ``model.Network.loss`` and the cells take from ``workspace.Workspace``)."""
    T, B, H, V, L = window, batch, hidden, vocab_size, layers
    G = _GATES[cell] * H
    TBH = T * B * H
    # Per layer: the forward pass's arrays, the gradient reaching its outputs, and copies of Wh
    # (transposed and padded) for the step products.
    per_layer = T * B * G + _cache_per_layer(cell, T, B, H) + TBH + 2 * H * (G + 16)
    if dropout:
        per_layer += 2 * TBH + TBH * (4 + 1) // itemsize   # keep, dropped; float32 draws, mask
    # The backward pass's arrays, one set for all layers.
    backward = {"rnn": TBH, "gru": 4 * TBH + 2 * T * B * G, "lstm": 6 * TBH + T * B * G}[cell]
    head = 3 * T * B * V + V * G                 # logits, probabilities, one-hot; the table
    return (L * per_layer + backward + 4 * B * H + head) * itemsize


def evaluation_bytes(cell: str, vocab_size: int, hidden: int, layers: int, itemsize: int,
                     mode: str = "stream", held_out: int = 100_000) -> int:
    """The arrays of one window of validation (``train.mean_loss``) of ``held_out`` characters
    (0: none): 256 steps of up to 64 streams (one per 1,000 characters), or in lines mode up
    to 65,536 padded positions; forward only, allocated afresh (the
    training window's workspace stays held meanwhile), every layer's states held until the
    loss of the window is known, and the input term of one layer or the head's logits and
    probabilities at a time."""
    if held_out <= 0:
        return 0
    T, B = (256, min(64, max(1, held_out // 1000))) if mode == "stream" else (256, 256)
    G = _GATES[cell] * hidden
    return (layers * _cache_per_layer(cell, T, B, hidden) + max(T * B * G, 2 * T * B * vocab_size)
            + vocab_size * G) * itemsize


def training_bytes(cell: str, vocab_size: int, hidden: int, layers: int, batch: int, window: int,
                   itemsize: int = 4, optimizer: str = "adam", snapshots: int = 0,
                   dropout: bool = False, workers: int = 1, mode: str = "stream",
                   held_out: int = 100_000) -> dict[str, int]:
    """The bytes a fit needs, by what needs them: ``weights`` (and their gradients),
    ``optimizer`` (its state and scratch), ``copies`` (the best weights, a copy for sampling
    previews, ``snapshots`` for the timeline), ``window`` (the workspace of a training window,
    held on to, and a validation window's arrays beside it) and, with ``workers`` 2, ``second
    worker`` (the weights and gradient it shares, and its own half of the workspace)."""
    P = n_weights(cell, vocab_size, hidden, layers) * itemsize
    half = max(1, batch // workers)
    train = window_bytes(cell, vocab_size, hidden, layers, half, window, itemsize, dropout)
    out = {"weights": 2 * P, "optimizer": (_OPTIMIZER_SLOTS.get(optimizer, 2) + 1) * P,
           "copies": (2 + snapshots) * P,
           "window": train + evaluation_bytes(cell, vocab_size, hidden, layers, itemsize, mode,
                                              held_out)}
    if workers > 1:
        out["second worker"] = 2 * P + train + CHILD_BASE
    return out


def check_architecture(cell: str, hidden: int, layers: int, dtype_size: int,
                       dtype_name: str, vocab_size: int = 1, copies: int = 4) -> None:
    """Refuse a network when ``copies`` of its weights do not fit: 4 (weights, gradients and
    Adam's state, the least a fit allocates) for what ``CharRNN(...)`` can know before there is
    a text (the vocabulary then counts as one character); 2 (weights and gradients) where a
    ``Network`` is built, for a loaded checkpoint."""
    n = n_weights(cell, vocab_size, hidden, layers)
    weights = n * dtype_size
    check(copies * weights,
          f"a {layers} x {hidden:,} {cell.upper()} has {count_words(n)} weights: "
          f"{size(weights)} as {dtype_name} for the weights alone, several times that to train",
          _smaller_model(hidden, layers))


def check_training(cell: str, vocab_size: int, hidden: int, layers: int, batch: int, window: int,
                   dtype_size: int, dtype_name: str, optimizer: str, snapshots: int,
                   dropout: bool, workers: int, mode: str = "stream",
                   held_out: int = 100_000, held: int = 0) -> None:
    """Refuse a fit whose arrays (``training_bytes``) do not fit, naming the biggest part.
    ``held``: bytes of them the model holds already (a continued fit), which the memory
    available no longer counts."""
    check_architecture(cell, hidden, layers, dtype_size, dtype_name, vocab_size,
                       4 - held / (n_weights(cell, vocab_size, hidden, layers) * dtype_size))
    parts = training_bytes(cell, vocab_size, hidden, layers, batch, window, dtype_size,
                           optimizer, snapshots, dropout, workers, mode, held_out)
    need = sum(parts.values()) - held
    n = n_weights(cell, vocab_size, hidden, layers)
    evaluation = evaluation_bytes(cell, vocab_size, hidden, layers, dtype_size, mode, held_out)
    if parts["window"] > need / 2 and parts["window"] > 2 * evaluation:
        change = ("choose a smaller batch_size (--batch-size) or seq_length (--seq-length), or "
                  "a smaller model")
    else:
        change = _smaller_model(hidden, layers)
        if snapshots and parts["copies"] > parts["weights"]:
            change += " (or keep fewer snapshots: CharRNN.snapshots)"
    more = f", {size(held)} of it held already" if held else ""
    check(need, f"training a {layers} x {hidden:,} {cell.upper()} ({count_words(n)} weights) "
                f"at batch {batch:,} x window {window:,} needs about {size(need + held)} "
                f"({', '.join(f'{k} {size(v)}' for k, v in parts.items())}{more})", change)


def check_fit(model, arch: dict, vocab_size: int, n_chars: int, settings: dict) -> None:
    """``check_training`` for a ``CharRNN`` about to fit a text of ``n_chars`` with architecture
    ``arch`` (cell, hidden_size, layers, dropout) and ``settings`` (resolved), with as many
    workers as its fit would use."""
    dtype = np.dtype(model.dtype)
    cell, hidden, layers = arch["cell"], arch["hidden_size"], arch["layers"]
    shape = SimpleNamespace(hidden_size=hidden,
                            cells=[SimpleNamespace(gates=_GATES[cell])] * layers)
    workers = model._workers().count(shape, settings["batch_size"])
    check_training(cell, vocab_size, hidden, layers, settings["batch_size"],
                   settings["seq_length"], dtype.itemsize, dtype.name, settings["optimizer"],
                   max(0, int(model.snapshots)), bool(arch["dropout"]), workers, settings["mode"],
                   round(n_chars * settings["val_fraction"]), _held(model))


def _held(model) -> int:
    """Bytes a model holds already of what its next fit needs: weights and gradients, the
    optimiser's state, the timeline's snapshots."""
    held = 0
    if model._net is not None:
        held += model._net.flat.nbytes + model._net.grad.nbytes
    if model._optimizer is not None:
        held += sum(a.nbytes for a in model._optimizer.state.values())
        held += model._optimizer._tmp.nbytes
    held += sum(s.weights.nbytes for s in model._timeline.snapshots
                if getattr(s, "weights", None) is not None)
    return held


def _smaller_model(hidden: int, layers: int) -> str:
    return ("choose a smaller hidden_size (--hidden)" if layers <= 4
            else "choose fewer layers (--layers) or a smaller hidden_size (--hidden)")


# ---- sampling -----------------------------------------------------------------------------------
def sampling_bytes(cell: str, vocab_size: int, hidden: int, layers: int, count: int,
                   itemsize: int, filtered: bool = False) -> int:
    """The working arrays of generating ``count`` samples side by side, whatever their length:
    a copy of the weights, each layer's state, step scratch and input, the logits, a block of
    noise (``NOISE_BYTES``, or one step's when that is more), and top-k/top-p's sorted
    copies."""
    H, V, L = hidden, vocab_size, layers
    G = _GATES[cell] * H
    per_sample = L * (_STATES[cell] * H + 3 * G + H) + 2 * G + 3 * V + (4 * V if filtered else 0)
    step = count * V * itemsize
    noise = max(step, min(NOISE_BYTES, 256 * step))            # sampling's block of steps
    return n_weights(cell, V, H, L) * itemsize + count * (per_sample * itemsize + 32) + noise


def sample_result_bytes(count: int, length: int, char_size: int, id_size: int,
                        with_probs: bool) -> int:
    """The bytes of ``count`` returned samples of ``length`` characters: the ids as generated,
    each text (``char_size`` bytes a character: 1, 2 or 4, as Python stores it) twice over (the
    text and the copy a front end makes of it), and the probabilities (float32 as generated,
    float64 as returned)."""
    per_char = id_size + 2 * char_size + (12 if with_probs else 0)
    return count * (length * per_char + 2 * STR_OVERHEAD)


def check_sampling(cell: str, vocab_size: int, hidden: int, layers: int, count: int,
                   itemsize: int, filtered: bool) -> None:
    need = sampling_bytes(cell, vocab_size, hidden, layers, count, itemsize, filtered)
    check(need, f"{count:,} samples side by side need about {size(need)} of working arrays "
                f"({vocab_size} characters x {layers} x {hidden:,} {cell.upper()} state each)",
          "ask for fewer samples at once (count, --count)")


def check_sample_result(count: int, length: int, char_size: int, id_size: int,
                        with_probs: bool) -> None:
    need = sample_result_bytes(count, length, char_size, id_size, with_probs)
    what = f"{count:,} samples of {length:,} characters" if count > 1 else \
        f"a sample of {length:,} characters"
    check(need, f"{what} need about {size(need)} to return", "ask for fewer characters "
          "(length, -n) or samples (count, --count), or use CharRNN.sample_stream")


# ---- texts --------------------------------------------------------------------------------------
def text_bytes(n_bytes: int) -> int:
    """Reading and encoding a UTF-8 file of ``n_bytes``: its bytes, the decoded text (never more
    bytes than its UTF-8: Python stores a character in 1, 2 or 4 bytes, UTF-8 in as many or
    more), a normalised copy, and the ids training makes of it."""
    return 4 * n_bytes


def check_text_file(path, n_bytes: int) -> None:
    need = text_bytes(n_bytes)
    have = available()
    if have is not None and need > SHARE * have.bytes:
        fits = int(SHARE * have.bytes / 4)
        raise ValueError(f"{path} is {size(n_bytes)}: reading and training on it needs about "
                         f"{size(need)}, and {have.where}, enough for a text of about "
                         f"{size(fits)}: give a smaller file (e.g. its first part: "
                         f"head -c {max(1, fits // (1 << 20))}M)")


def check_trace(n_chars: int, per_char_bytes: int) -> None:
    need = n_chars * per_char_bytes
    check(need, f"a trace of {n_chars:,} characters needs about {size(need)}",
          "trace a shorter text (or fewer layers and states, or probs=False)")


# ---- what the machine has -----------------------------------------------------------------------
def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf_available() -> int | None:
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            n = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            continue
        if n > 0:
            return n
    return None


def _limit_headroom() -> Available | None:
    """What is left under the process's address-space (``RLIMIT_AS``) or data (``RLIMIT_DATA``)
    limit, less ``ADDRESS_SPACE_RESERVE``; None without either limit."""
    try:
        import resource
    except ImportError:                       # not POSIX
        return None
    best = None
    for name, field, flag in (("RLIMIT_AS", "VmSize", "-v"), ("RLIMIT_DATA", "VmData", "-d")):
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        soft = resource.getrlimit(kind)[0]
        if soft == resource.RLIM_INFINITY or soft < 0:
            continue
        used = _status_bytes(field) or 0
        left = max(0, soft - used - ADDRESS_SPACE_RESERVE)
        if best is None or left < best.bytes:
            best = Available(left, f"this process may map {size(left)} more (its limit, "
                                   f"ulimit {flag}, is {size(soft)})")
    return best


def _cgroup_headroom(root: str = "/sys/fs/cgroup", own: str = "/proc/self/cgroup"
                     ) -> Available | None:
    """What is left under the memory limit of this process's control group (a container's, a
    JupyterHub user's: the limit whose excess gets a kernel killed), cgroup v2 or v1: the limit
    less the memory charged, not counting the file cache the kernel can drop. None without a
    limit, or off Linux."""
    try:
        with open(own, encoding="ascii") as f:
            groups = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    candidates = []
    for _, controllers, path in groups:
        path = path.lstrip("/")
        if controllers == "":                                          # v2
            candidates += [(os.path.join(root, path), "memory.max", "memory.current",
                            "inactive_file"),
                           (root, "memory.max", "memory.current", "inactive_file")]
        elif "memory" in controllers.split(","):                       # v1
            candidates += [(os.path.join(root, "memory", path), "memory.limit_in_bytes",
                            "memory.usage_in_bytes", "total_inactive_file"),
                           (os.path.join(root, "memory"), "memory.limit_in_bytes",
                            "memory.usage_in_bytes", "total_inactive_file")]
    for folder, limit_file, usage_file, cache_key in candidates:
        limit, usage = _read_int(folder, limit_file), _read_int(folder, usage_file)
        if limit is None or usage is None:
            continue
        if limit >= 1 << 60:                                    # "max", or v1's "no limit"
            return None
        cache = 0
        try:
            with open(os.path.join(folder, "memory.stat"), encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == cache_key:
                        cache = int(value)
        except (OSError, ValueError):
            pass
        left = max(0, limit - max(0, usage - cache))
        return Available(left, f"this process's control group may use {size(left)} more "
                               f"(its memory limit is {size(limit)})")
    return None


def _read_int(folder: str, name: str) -> int | None:
    try:
        with open(os.path.join(folder, name), encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return 1 << 62
    try:
        return int(text)
    except ValueError:
        return None


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None

"""Checkpoint files: what a saved model holds, how it is written, and everything load checks.

A checkpoint is one safetensors file: a JSON header and raw tensor bytes, so loading it can never
run code (unlike a pickle), and the tensors open in PyTorch and other tools too. The header's
metadata holds, under ``"charrnn_magic"``, a JSON object: the format version, the vocabulary, the
configuration (architecture and training settings), the step count, the optimiser's name and step,
the random generator's state, the loss history's flags and the read position in the training
text. The tensors are the weights (``weights/...``), the optimiser's buffers (``optimizer/...``),
the loss history (``history/...``) and the position's hidden states or line order
(``position/...``). A model saved with ``snapshots=True`` also has its training timeline: a
``snapshots`` metadata entry (the steps) and one tensor ``snapshots/<step>`` per snapshot, the
flat weights (see ``charrnn_magic.timeline``). ``"charrnn_magic_sha256"`` is a SHA-256 of the
metadata and of every tensor's name, dtype, shape and bytes.

``load_model`` checks, in this order, and raises a one-line ValueError naming the first problem:

1. the safetensors header is intact (safetensors' own reader) and the metadata is a JSON object
   of a format version this code reads;
2. every metadata field has the right type and range (``config.layers`` is a whole number from 1
   to ``MAX_LAYERS``, ``vocab`` a sorted list of distinct characters, ...), with no unknown fields;
3. the tensors are exactly those the configuration implies, no more and no fewer, each with the
   dtype and shape it implies (sizes are computed arithmetically): all of this before any tensor
   is read or any memory is allocated for the model;
4. the checksum matches (a byte changed anywhere in the file is refused), and the tensors' values
   are consistent (whole step numbers; a line order that is a permutation);

and only then builds the model. A failed load leaves nothing behind.

``save_model`` runs the same checks on what it is about to write (a file load would refuse is
never written), then ``write`` stores it atomically: see ``write``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import stat
from pathlib import Path

import numpy as np

from . import timeline
from .cells import CELLS
from .network import Network
from .optim import OPTIMIZERS
from .settings import ARCH_KEYS, SETTINGS, TRAIN_DEFAULTS, Choice, Fraction, Number, Setting, Whole
from .vocab import Vocab

#: The version ``save_model`` writes. Version 2 added the checksum; version 1 files still load.
FORMAT_VERSION = 2
READS_VERSIONS = (1, 2)
#: The most layers a checkpoint may hold: enough for any model worth training in NumPy, and few
#: enough that building the network of a crafted file cannot keep ``load`` busy (setting up the
#: network's per-layer views costs layers²: 0.3 s for 256 layers here, 2.3 s for 1000).
MAX_LAYERS = 256
#: The longest metadata text load parses (a vocabulary of every Unicode character fits).
MAX_META_CHARS = 16 * 2**20

_META_KEY = "charrnn_magic"
_DIGEST_KEY = "charrnn_magic_sha256"
_FLOAT_DTYPES = {"float32": "F32", "float64": "F64"}
_HISTORY = ("step", "loss", "val_step", "val_loss")
#: What the history says of the last fit beyond its stop reason; each may be absent (older files).
_HISTORY_EXTRAS = ("stop_detail", "best_step", "best_val_loss", "weights_step")


class _Bad(Exception):
    """One field of a checkpoint is wrong; the message names it."""


# ---------------------------------------------------------------------------------- the model
def save_model(model, path, snapshots: bool = False) -> Path:
    """Save ``model`` (a trained ``CharRNN``) to ``path``; see ``CharRNN.save``.
    ``snapshots``: also store the model's training timeline."""
    if model._net is None:
        raise ValueError("the model is not trained yet: there is nothing to save")
    with model._lock:
        tensors = {f"weights/{k}": v.copy() for k, v in model._net.params.items()}
        tensors.update({f"optimizer/{k}": v.copy() for k, v in model._optimizer.state.items()})
        meta = {
            "format_version": FORMAT_VERSION,
            "vocab": list(model.vocab.chars), "config": model.config(), "step": model.step,
            "optimizer": {"name": model._optimizer.name, "t": model._optimizer.t},
            "rng": model._rng.bit_generator.state,
            "history": {"interrupted": model.history.interrupted,
                        "stop_reason": model.history.stop_reason,
                        **{k: getattr(model.history, k) for k in _HISTORY_EXTRAS}},
        }
        if model._position is not None:
            pos = model._position
            meta["position"] = {k: pos[k] for k in ("key", "epoch", "index")}
            for i, layer_state in enumerate(pos["state"] or []):
                for j, a in enumerate(layer_state):
                    tensors[f"position/state{i}.{j}"] = np.array(a)
            if pos["order"] is not None:
                tensors["position/order"] = np.array(pos["order"])
        if snapshots:
            snapshot_tensors, meta["snapshots"] = timeline.to_checkpoint(model._timeline)
            tensors.update(snapshot_tensors)
    for name in _HISTORY:
        tensors[f"history/{name}"] = np.asarray(getattr(model.history, name), dtype=np.float64)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    meta_text = json.dumps(meta)
    try:
        # What load would refuse is never written: it would be a checkpoint lost.
        _check_meta_text(meta_text)
        _check_specs(_expected_tensors(meta), {k: (_dtype_code(v), list(v.shape))
                                               for k, v in tensors.items()})
        _check_values(meta, tensors)
    except _Bad as e:
        raise ValueError(f"cannot save this model as a checkpoint: {e}") from None
    return write(path, tensors, {_META_KEY: meta_text, _DIGEST_KEY: digest(meta_text, tensors)})


def load_model(cls, path):
    """A ``cls`` (``CharRNN``) from the checkpoint at ``path``; see ``CharRNN.load`` and the
    module's docstring for what is checked. Raises ValueError for anything wrong with the file."""
    path = Path(path)
    tensors, meta = read(path)
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
    except (ValueError, TypeError) as e:
        raise ValueError(f"{str(path)!r} is not a valid checkpoint: rng is not a random "
                         f"generator's state ({_one_line(e)[:80]})") from None
    config = meta["config"]
    model = cls(**{k: config[k] for k in ARCH_KEYS})
    # A setting absent from an older file had its default.
    settings = {**TRAIN_DEFAULTS, **{k: v for k, v in config.items() if k not in ARCH_KEYS}}
    net = Network(model.cell, len(meta["vocab"]), model.hidden_size, model.layers,
                  model.dropout, model.dtype)
    for name, view in net.params.items():
        view[...] = tensors[f"weights/{name}"]
    opt = OPTIMIZERS[meta["optimizer"]["name"]](net.size, net.dtype, settings["lr"])
    for name, buf in opt.state.items():
        buf[...] = tensors[f"optimizer/{name}"]
    opt.t = meta["optimizer"]["t"]
    position = None
    if "position" in meta:
        position = {**meta["position"], "state": None, "order": tensors.get("position/order")}
        if "position/state0.0" in tensors:
            position["state"] = [tuple(tensors[f"position/state{i}.{j}"]
                                       for j in range(c.state_size))
                                 for i, c in enumerate(net.cells)]
    snapshots = None
    if "snapshots" in meta:
        snapshots = timeline.from_checkpoint(tensors, meta["snapshots"], net.size, net.dtype,
                                             repr(str(path)))
    # Everything is read and checked: only now does the new model get its parts.
    model.vocab, model._settings = Vocab(meta["vocab"]), settings
    model._net, model._optimizer, model.step, model._rng = net, opt, meta["step"], rng
    model._position = position
    h = model.history
    h.step = [int(x) for x in tensors["history/step"]]
    h.val_step = [int(x) for x in tensors["history/val_step"]]
    h.loss, h.val_loss = tensors["history/loss"].tolist(), tensors["history/val_loss"].tolist()
    h.interrupted, h.stop_reason = meta["history"]["interrupted"], meta["history"]["stop_reason"]
    for key in _HISTORY_EXTRAS:                  # absent from files of before keep_best's default
        if key in meta["history"]:
            setattr(h, key, meta["history"][key])
    if snapshots is not None:
        model._timeline = snapshots
    return model


# ---------------------------------------------------------------------------------- reading
def read(path) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, metadata) of the checkpoint at ``path``, after every check of the module's
    docstring; a ValueError names what is wrong."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint file at {str(path)!r}")
    try:
        with safe_open(path, framework="numpy") as f:
            header = f.metadata()
            specs = {}
            for name in f.keys():
                piece = f.get_slice(name)
                specs[name] = (piece.get_dtype(), list(piece.get_shape()))
            if not isinstance(header, dict) or _META_KEY not in header:
                raise ValueError(f"{str(path)!r} is a safetensors file but not a charrnn_magic "
                                 "checkpoint (it has no charrnn_magic metadata)")
            try:
                meta = _check_meta_text(header[_META_KEY])
                _check_specs(_expected_tensors(meta), specs)
            except _Bad as e:
                raise ValueError(f"{str(path)!r} is not a valid checkpoint: {e}") from None
            tensors = {name: f.get_tensor(name) for name in specs}
    except SafetensorError as e:
        raise ValueError(f"{str(path)!r} is not a readable checkpoint (truncated or corrupt: "
                         f"{_one_line(e)})") from None
    expected = header.get(_DIGEST_KEY)
    if expected is None and meta["format_version"] >= 2:
        raise ValueError(f"{str(path)!r} is not a valid checkpoint: its checksum "
                         f"({_DIGEST_KEY!r} in the metadata) is missing")
    if expected is not None and expected != digest(header[_META_KEY], tensors):
        raise ValueError(f"{str(path)!r} is damaged: its contents do not match the checksum saved "
                         "with it (bytes changed on disk or on the way)")
    try:
        _check_values(meta, tensors)
    except _Bad as e:
        raise ValueError(f"{str(path)!r} is not a valid checkpoint: {e}") from None
    return tensors, meta


def digest(meta_text: str, tensors: dict[str, np.ndarray]) -> str:
    """The checksum of a checkpoint: SHA-256 of the metadata text and of every tensor's name,
    dtype, shape and little-endian bytes, in name order."""
    h = hashlib.sha256(b"charrnn_magic checkpoint\n")
    h.update(meta_text.encode("utf-8", "surrogatepass"))
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(f"\n{name}\n{_dtype_code(a)}\n{list(a.shape)}\n".encode())
        h.update(a.reshape(-1).view(np.uint8))      # also for an empty (0, n) tensor
    return h.hexdigest()


def _dtype_code(a: np.ndarray) -> str:
    return {"float32": "F32", "float64": "F64", "int64": "I64"}.get(a.dtype.name, a.dtype.str)


def _one_line(e) -> str:
    return " ".join(str(e).split())[:200]


# ---------------------------------------------------------------------------------- metadata
def _check_meta_text(text) -> dict:
    """The metadata object, every field checked (``_Bad`` names the first wrong one)."""
    if not isinstance(text, str) or len(text) > MAX_META_CHARS:
        raise _Bad(f"the charrnn_magic metadata is not a JSON text of at most {MAX_META_CHARS:,} "
                   "characters")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise _Bad(f"the charrnn_magic metadata is not valid JSON ({_one_line(e)[:80]})") from None
    if not isinstance(meta, dict):
        raise _Bad(f"the charrnn_magic metadata is a JSON {type(meta).__name__}, not an object")
    version = meta.get("format_version")
    if isinstance(version, bool) or version not in READS_VERSIONS:
        raise _Bad(f"it has checkpoint format version {version!r}; this version of charrnn_magic "
                   f"reads version {' and '.join(map(str, READS_VERSIONS))}")
    _keys(meta, "metadata", ("format_version", "vocab", "config", "step", "optimizer", "rng",
                             "history"), ("position", "snapshots"))

    vocab = meta["vocab"]
    if not (isinstance(vocab, list) and len(vocab) >= 2
            and all(isinstance(c, str) and len(c) == 1 and not 0xD800 <= ord(c) <= 0xDFFF
                    for c in vocab)
            and all(a < b for a, b in zip(vocab, vocab[1:], strict=False))):
        raise _Bad("vocab is not a sorted list of at least two distinct characters")

    config = _object(meta, "config")
    saved = [s for s in SETTINGS if s.is_saved]
    # A setting added after the first files were written may be absent: it then has its default.
    _keys(config, "config", tuple(s.name for s in saved if s.in_old_files),
          tuple(s.name for s in saved if not s.in_old_files))
    for setting in saved:
        if setting.name in config:
            _setting(config, setting)

    _whole(meta, "step", "step", 0)
    optimizer = _object(meta, "optimizer")
    _keys(optimizer, "optimizer", ("name", "t"))
    _choice(optimizer, "optimizer.name", "name", (config["optimizer"],))
    _whole(optimizer, "optimizer.t", "t", 0)

    rng = _object(meta, "rng")
    _keys(rng, "rng", ("bit_generator", "state", "has_uint32", "uinteger"))
    _choice(rng, "rng.bit_generator", "bit_generator", ("PCG64",))
    state = _object(rng, "state", "rng.state")
    _keys(state, "rng.state", ("state", "inc"))
    _whole(state, "rng.state.state", "state", 0, 2**128 - 1)
    _whole(state, "rng.state.inc", "inc", 0, 2**128 - 1)
    _whole(rng, "rng.has_uint32", "has_uint32", 0, 1)
    _whole(rng, "rng.uinteger", "uinteger", 0, 2**32 - 1)

    history = _object(meta, "history")
    _keys(history, "history", ("interrupted", "stop_reason"), _HISTORY_EXTRAS)
    _flag(history, "history.interrupted", "interrupted")
    for key in ("stop_reason", "stop_detail"):
        if key in history and not isinstance(history[key], str):
            raise _Bad(f"history.{key}={_short(history[key])} is not a text")
    for key in ("best_step", "weights_step"):
        if history.get(key) is not None:
            _whole(history, f"history.{key}", key, 0, meta["step"])
    if history.get("best_val_loss") is not None:
        _number(history, "history.best_val_loss", "best_val_loss", 0, math.inf)

    if "position" in meta:
        position = _object(meta, "position")
        _keys(position, "position", ("key", "epoch", "index"))
        if not isinstance(position["key"], str):
            raise _Bad(f"position.key={position['key']!r} is not a text")
        _whole(position, "position.epoch", "epoch", 0)
        if position["index"] is not None:
            _whole(position, "position.index", "index", 0)
    if "snapshots" in meta:
        try:
            timeline.check_meta(meta["snapshots"])
        except ValueError as e:
            raise _Bad(str(e)) from None
        steps = meta["snapshots"]["steps"]
        if steps and steps[-1] > meta["step"]:
            raise _Bad(f"snapshots.steps goes up to step {steps[-1]:,}, past the model's step "
                       f"{meta['step']:,}")
    return meta


def _setting(config: dict, setting: Setting):
    """``config[setting.name]`` passes the setting's check (in the file's own words)."""
    where, name, check = f"config.{setting.name}", setting.name, setting.check
    if isinstance(check, Choice):
        _choice(config, where, name, tuple(check.choices))
    elif isinstance(check, Whole):
        _whole(config, where, name, check.minimum, MAX_LAYERS if name == "layers" else None)
    elif isinstance(check, Fraction):
        _number(config, where, name, 0, 1, top_open=True)
    elif isinstance(check, Number):
        low = 0 if check.minimum is None else check.minimum
        _number(config, where, name, low, math.inf, bottom_open=check.minimum is None)
    else:
        _flag(config, where, name)


def _keys(obj: dict, where: str, required: tuple, optional: tuple = ()):
    missing = [k for k in required if k not in obj]
    if missing:
        raise _Bad(f"{where} has no {missing[0]!r} field")
    unknown = [k for k in obj if k not in required and k not in optional]
    if unknown:
        raise _Bad(f"{where} has an unknown field {unknown[0][:40]!r}")


def _object(obj: dict, key: str, where: str | None = None) -> dict:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise _Bad(f"{where or key} is not a JSON object")
    return value


def _whole(obj, where, key, minimum, maximum=None):
    value = obj[key]
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if not ok or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise _Bad(f"{where}={_short(value)} is out of range: it must be a whole number {bound}")


def _number(obj, where, key, low, high, bottom_open=False, top_open=False):
    value = obj[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if bottom_open else value >= low)
    ok = ok and (value < high if top_open else value <= high)
    if not ok:
        raise _Bad(f"{where}={_short(value)} is out of range: it must be a number from {low}"
                   f"{' (excluded)' if bottom_open else ''} up to {high}"
                   f"{' (excluded)' if top_open else ''}")


def _choice(obj, where, key, choices):
    if not (isinstance(obj[key], str) and obj[key] in choices):
        raise _Bad(f"{where}={_short(obj[key])} is not one of {', '.join(map(repr, choices))}")


def _flag(obj, where, key):
    if not isinstance(obj[key], bool):
        raise _Bad(f"{where}={_short(obj[key])} is not true or false")


def _short(value) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "<a huge number>"
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------- tensors
def _expected_tensors(meta) -> dict:
    """Tensor name -> (dtype, shape) the (checked) metadata implies; a shape may hold None for a
    length the metadata does not fix, and a name ending in ``?`` marks an optional group."""
    config = meta["config"]
    dtype = _FLOAT_DTYPES[config["dtype"]]
    V, H, L = len(meta["vocab"]), config["hidden_size"], config["layers"]
    cell = CELLS[config["cell"]](H)
    G = cell.gates * H
    out, size = {}, 0
    for layer in range(L):
        shapes = {"Wx": (V if layer == 0 else H, G), "Wh": (H, G), "b": (G,), **cell.extra_params()}
        for name, shape in shapes.items():
            out[f"weights/l{layer}.{name}"] = (dtype, list(shape))
            size += math.prod(shape)
    out["weights/Wy"], out["weights/by"] = (dtype, [H, V]), (dtype, [V])
    size += H * V + V
    for slot in OPTIMIZERS[config["optimizer"]].slots:
        out[f"optimizer/{slot}"] = (dtype, [size])
    for name in _HISTORY:
        out[f"history/{name}"] = ("F64", [None])
    if "snapshots" in meta:
        out.update(timeline.expected_tensors(meta["snapshots"], dtype, size))
    position = meta.get("position")
    if position is not None and position["index"] is not None:
        # A position inside the text carries what reading it on needs.
        if config["mode"] == "stream":
            for layer in range(L):
                for j in range(cell.state_size):
                    out[f"position/state{layer}.{j}"] = (dtype, [config["batch_size"], H])
        else:
            out["position/order"] = ("I64", [None])
    return out


def _check_specs(expected: dict, present: dict):
    """``present`` (name -> (dtype, shape)) is exactly ``expected``."""
    for name in present:
        if name not in expected:
            raise _Bad(f"it has a tensor {name[:60]!r} that its configuration does not use")
    for name, (dtype, shape) in expected.items():
        if name not in present:
            raise _Bad(f"tensor {name!r} is missing")
        got_dtype, got_shape = present[name]
        if got_dtype != dtype:
            raise _Bad(f"tensor {name!r} has dtype {got_dtype}, expected {dtype} (from its "
                       "configuration)")
        if len(got_shape) != len(shape) or any(e is not None and g != e
                                               for g, e in zip(got_shape, shape, strict=True)):
            want = tuple("n" if e is None else e for e in shape)
            raise _Bad(f"tensor {name!r} has shape {tuple(got_shape)}, expected {want} (from its "
                       "configuration)".replace("'n'", "n"))
    for a, b in (("step", "loss"), ("val_step", "val_loss")):
        if present[f"history/{a}"][1] != present[f"history/{b}"][1]:
            raise _Bad(f"tensors 'history/{a}' and 'history/{b}' have different lengths")


def _check_values(meta, tensors):
    """What the tensors' shapes do not tell: step numbers are whole and non-negative, and the
    line order is a permutation."""
    for name in ("step", "val_step"):
        steps = tensors[f"history/{name}"]
        if not np.all((steps >= 0) & (steps <= 2.0**53) & (steps == np.round(steps))):
            raise _Bad(f"tensor 'history/{name}' is not a list of whole step numbers")
    order = tensors.get("position/order")
    if order is not None and not np.array_equal(np.sort(order), np.arange(len(order))):
        raise _Bad("tensor 'position/order' is not an order of the lines (a permutation)")


# ---------------------------------------------------------------------------------- writing
def write(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Path:
    """Write a safetensors file of ``tensors`` with header ``metadata`` to ``path``, atomically.

    The bytes go to a temporary file beside the target, are flushed to disk, and the temporary
    file is then renamed over the target, so a crash, a full disk or a Ctrl-C at any moment leaves
    either the old file or the new one, whole, and no temporary file. A new file gets the usual
    permissions (0666 less the umask); a file written over keeps its permissions. A symbolic link
    is written through: the file it points to is replaced, and the link stays.
    """
    from safetensors.numpy import save

    path = Path(path)
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise ValueError(f"{str(path)!r} is a folder: give a file name such as model.safetensors")
    if not target.parent.is_dir():
        raise ValueError(f"cannot save to {str(path)!r}: the folder {str(target.parent)!r} "
                         "does not exist")
    blob = save(tensors, metadata=metadata)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = None
    try:
        while True:
            tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
            try:
                # "x": created here or not at all, with 0666 less the umask, like any new file.
                f = open(tmp, "xb")
            except FileExistsError:             # someone else's file: leave it, pick another name
                tmp = None
                continue
            break
        with f:
            if mode is not None:
                _chmod(f, tmp, mode)
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
    except BaseException:
        # Whatever interrupted the save (an error, Ctrl-C): the temporary file goes. Its name
        # is known before it is created, so an interrupt right after creating it is covered.
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    _sync_folder(target.parent)
    return path


def _chmod(f, name, mode):
    if hasattr(os, "fchmod"):
        os.fchmod(f.fileno(), mode)
    else:
        os.chmod(name, mode)


def _sync_folder(folder: Path):
    """Make the rename itself durable (POSIX; elsewhere there is nothing to open)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

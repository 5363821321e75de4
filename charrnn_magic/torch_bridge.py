"""A model handed to PyTorch and back: ``CharRNN.to_torch`` and ``CharRNN.from_torch``.

PyTorch stays optional: it is imported only inside these two calls. Without it they raise a
``ModuleNotFoundError`` (an ``ImportError``, what code that checks for an optional library
catches) that says ``pip install torch``.

How the weights correspond, for layer l with input weights (in, G), recurrent weights (H, G)
and one bias (G) here, and ``weight_ih_l{l}`` (G, in), ``weight_hh_l{l}`` (G, H), ``bias_ih_l{l}``
and ``bias_hh_l{l}`` (G) in PyTorch (G = gates × H):

- ``Wx = weight_ih.T``, ``Wh = weight_hh.T``, ``b = bias_ih + bias_hh``, with the gate blocks
  reordered for the LSTM: PyTorch's are [input, forget, candidate, output], the engine's
  [input, forget, output, candidate]. The RNN and the GRU ([reset, update, new]) share the order.
- The GRU applies its reset gate after the recurrent product in both:
  ``n = tanh(x Wx_n + b_n + r * (h Wh_n + bhn))``, so ``b_n = bias_ih_n`` alone and the engine's
  extra bias ``bhn`` is ``bias_hh_n``; the reset and update blocks of ``b`` take both biases.
- Layer 0's input weights here are an embedding table (V, G), row v what character v adds to
  the gates: an embedding E (V, E) and ``weight_ih_l0`` fold into ``E @ weight_ih_l0.T``.
  ``to_torch`` makes the embedding the identity (one-hot input, not trained) and puts the
  table into ``weight_ih_l0``.
- The head: ``Wy = head.weight.T``, ``by = head.bias``.

Every check runs before anything is built; what does not fit is refused with a one-line
ValueError that names it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from .network import Network
from .optim import OPTIMIZERS
from .settings import PRESETS, TRAIN_DEFAULTS, resolve
from .vocab import Vocab

#: For each of the engine's gate blocks, the block of PyTorch's fused layer that holds it (the
#: LSTM's two orders differ by a swap, so the same list maps either way).
TORCH_BLOCK = {"rnn": [0], "gru": [0, 1, 2], "lstm": [0, 1, 3, 2]}
#: The cell a fused layer of so many gates is (a state_dict does not say).
CELL_OF_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
#: The name of each cell's fused PyTorch layer, for messages.
FUSED_NAME = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}
#: A recurrent weight's key in a state_dict: ``rnn.weight_ih_l0``, ``lstm.bias_hh_l2_reverse``...
RECURRENT_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>weight|bias)_(?P<side>ih|hh|hr)_l"
                           r"(?P<layer>\d+)(?P<reverse>_reverse)?$")
#: A model from ``from_torch`` trains on here with the settings of the "default" preset.
_TRAINING = {k: v for k, v in PRESETS["default"].items() if k in TRAIN_DEFAULTS}


def import_torch(call: str):
    """torch, or a ModuleNotFoundError whose one line says what to install."""
    try:
        import torch
    except ImportError:
        raise ModuleNotFoundError(f"{call} needs PyTorch, which is not installed here: "
                                  "pip install torch", name="torch") from None
    return torch


# ---------------------------------------------------------------------------------- to PyTorch
def to_torch(model):
    """``model`` (a ``CharRNN`` with weights) as a ``torch_model.CharModel`` with the same
    weights, on the CPU, in the model's dtype; see ``CharRNN.to_torch``."""
    torch = import_torch("CharRNN.to_torch")
    from .torch_model import CharModel

    if model._net is None:
        raise ValueError("the model has no weights yet: call fit(text) first")
    with model._lock:
        p = {k: v.copy() for k, v in model._net.params.items()}
    cell, V, H, L = model.cell, len(model.vocab), model.hidden_size, model.layers
    dtype = p["Wy"].dtype
    weights = {"embedding.weight": np.eye(V), "head.weight": p["Wy"].T, "head.bias": p["by"]}
    for l in range(L):
        b = p[f"l{l}.b"]
        b_hh = np.zeros_like(b)
        if cell == "gru":
            b_hh[2 * H :] = p[f"l{l}.bhn"]
        weights.update({
            f"rnn.weight_ih_l{l}": torch_order(cell, p[f"l{l}.Wx"].T, H),     # (G, in)
            f"rnn.weight_hh_l{l}": torch_order(cell, p[f"l{l}.Wh"].T, H),     # (G, H)
            f"rnn.bias_ih_l{l}": torch_order(cell, b, H),
            f"rnn.bias_hh_l{l}": torch_order(cell, b_hh, H),
        })
    module = CharModel(cell, V, H, L, model.dropout or 0.0,
                       dtype=torch.float64 if dtype == np.float64 else torch.float32)
    module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype))
                            for k, v in weights.items()})
    return module


def torch_order(cell: str, a: np.ndarray, H: int) -> np.ndarray:
    """``a`` (G, ...) with its gate blocks reordered between the engine's order and PyTorch's
    (either way: the reordering is its own inverse)."""
    blocks = a.reshape(len(TORCH_BLOCK[cell]), H, *a.shape[1:])
    return blocks[TORCH_BLOCK[cell]].reshape(a.shape)


# ---------------------------------------------------------------------------------- from PyTorch
def from_torch(cls, source, vocab):
    """A ``cls`` (``CharRNN``) from a PyTorch char-model or its state_dict.

    ``source``: a module holding one ``nn.Embedding(V, E)`` (any E), one ``nn.RNN`` (tanh),
    ``nn.LSTM`` or ``nn.GRU`` (unidirectional, no ``proj_size``, any ``num_layers``; ``batch_first``
    either way) and one ``nn.Linear(H, V)`` head, and no other weights (parameter-free layers
    such as ``nn.Dropout`` may be there); or such a module's ``state_dict()``, whatever the parts
    are called (a state_dict does not say whether an ``nn.RNN`` was tanh or ReLU: it is read as
    tanh). ``vocab``: the character of each id, as a ``Vocab``, a str or a list; any order (the
    engine's ids are sorted, and the weights are permuted to match). The weights may be on any
    device, in any floating type: float64 makes a float64 model, anything else float32.

    The new model samples, traces, inspects, saves and trains like any other. It counts as one
    step (the module does not say how many it had); ``fit`` continues with the settings of the
    ``"default"`` preset, and the dropout of the recurrent layer (or of an ``nn.Dropout``).
    Whatever does not fit raises a one-line ValueError naming it, before anything is built.
    """
    torch = import_torch("CharRNN.from_torch")
    if isinstance(source, torch.nn.Module):
        parts = read_module(source, torch.nn)
    elif isinstance(source, Mapping):
        parts = read_state_dict(source)
    else:
        raise ValueError(f"from_torch takes a torch.nn.Module or its state_dict(), not "
                         f"{type(source).__name__}")
    chars = vocab_chars(vocab)
    weights = {name: as_array(shown(parts, name), t, torch)
               for name, t in parts["tensors"].items()}
    parts["float64"] = str(parts["tensors"]["embedding.weight"].dtype) in ("torch.float64",
                                                                            "float64")
    layout = check_layout(parts, weights, chars)
    return build(cls, layout, weights, chars)


def read_module(module, nn) -> dict:
    """The parts of an Embedding -> fused cell -> Linear module: {"cell", "dropout",
    "tensors": name -> tensor, "embedding", "rnn", "head": the names' prefixes}."""
    def kinds(kind):
        return [(n, m) for n, m in module.named_modules() if isinstance(m, kind)]

    embeddings, rnns, linears = kinds(nn.Embedding), kinds(nn.RNNBase), kinds(nn.Linear)
    for found, what, plural in ((rnns, "nn.RNN, nn.LSTM or nn.GRU", "recurrent layers"),
                                (embeddings, "nn.Embedding (the input)", "nn.Embedding layers"),
                                (linears, "nn.Linear head", "nn.Linear layers")):
        if not found:
            raise ValueError(f"the module has no {what}: from_torch takes nn.Embedding -> "
                             "nn.RNN/nn.LSTM/nn.GRU -> nn.Linear")
        if len(found) > 1:
            names = ", ".join(n or "(the module)" for n, _ in found)
            raise ValueError(f"the module has {len(found)} {plural} ({names}): from_torch "
                             "takes one of each (stack layers with num_layers; no layers between)")
    known = {id(m) for m in (embeddings[0][1], rnns[0][1], linears[0][1])}
    for name, m in module.named_modules():
        if id(m) in known:
            continue
        own = [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]
        if own:
            where = f"{name}.{own[0][0]}" if name else own[0][0]
            raise ValueError(f"the module has weights outside the embedding, the recurrent "
                             f"layer and the head ({where}, in a {type(m).__name__}): from_torch "
                             "takes nn.Embedding -> nn.RNN/nn.LSTM/nn.GRU -> nn.Linear only")
    (emb_name, embedding), (rnn_name, rnn), (head_name, head) = embeddings[0], rnns[0], linears[0]
    if embedding.max_norm is not None:
        raise ValueError(f"the embedding has max_norm={embedding.max_norm}, which rescales its "
                         "rows at each lookup: from_torch takes a plain nn.Embedding")
    cell = {"RNN_TANH": "rnn", "LSTM": "lstm", "GRU": "gru"}.get(rnn.mode)
    if cell is None:
        raise ValueError(f"the recurrent layer ({rnn.mode}) is no nn.RNN with tanh, nn.LSTM or "
                         "nn.GRU: nn.RNN(nonlinearity='relu') has no counterpart here")
    if rnn.bidirectional:
        raise ValueError(f"the {FUSED_NAME[cell]} is bidirectional: a character model reads "
                         "forwards only (bidirectional=False)")
    if getattr(rnn, "proj_size", 0):
        raise ValueError(f"the nn.LSTM has proj_size={rnn.proj_size}: from_torch takes an LSTM "
                         "without projections (proj_size=0)")
    tensors = {"embedding.weight": embedding.weight,
               **{f"rnn.{k}": v for k, v in rnn.state_dict().items()},
               "head.weight": head.weight}
    if head.bias is not None:
        tensors["head.bias"] = head.bias
    # The engine drops every layer's outputs: the rate is the cell's, or an nn.Dropout's.
    dropout = max([rnn.dropout, *(m.p for m in module.modules() if isinstance(m, nn.Dropout))])
    return {"cell": cell, "dropout": float(dropout), "tensors": tensors,
            "embedding": emb_name + ".", "rnn": rnn_name + ".", "head": head_name + "."}


def read_state_dict(state: Mapping) -> dict:
    """The parts of a state_dict, found by name: the recurrent layer's keys end in
    ``weight_ih_l0`` and the like; of the two other parts (``weight``, and ``bias`` or not), the
    head is the one with a bias, or the one whose width is the hidden size, or (when both widths
    are) the second."""
    groups: dict[str, dict] = {}
    rnn_prefixes = set()
    for key in state:
        if not isinstance(key, str):
            raise ValueError(f"a state_dict's keys are names, not {type(key).__name__}")
        match = RECURRENT_KEY.match(key)
        if match:
            if match["reverse"]:
                raise ValueError(f"the state_dict has {key!r}: the recurrent layer is "
                                 "bidirectional, and a character model reads forwards only")
            if match["side"] == "hr":
                raise ValueError(f"the state_dict has {key!r}: an LSTM with proj_size; "
                                 "from_torch takes one without projections")
            rnn_prefixes.add(match["prefix"])
            continue
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "bias"):
            raise ValueError(f"the state_dict has {key!r}, which is no part of an nn.Embedding "
                             "-> nn.RNN/nn.LSTM/nn.GRU -> nn.Linear char-model")
        groups.setdefault(prefix + "." if prefix else "", set()).add(leaf)
    if not rnn_prefixes:
        raise ValueError("the state_dict has no recurrent layer's weights (weight_ih_l0, "
                         "weight_hh_l0, ...)")
    if len(rnn_prefixes) > 1:
        raise ValueError(f"the state_dict has {len(rnn_prefixes)} recurrent layers "
                         f"({', '.join(sorted(p.rstrip('.') for p in rnn_prefixes))}): "
                         "from_torch takes one (stacked with num_layers)")
    (rnn,) = rnn_prefixes
    lone = next((p for p, leaves in groups.items() if "weight" not in leaves), None)
    if lone is not None:
        raise ValueError(f"the state_dict has {lone}bias but no {lone}weight")
    found = ", ".join(p + "weight" for p in groups)
    if len(groups) < 2:
        raise ValueError(f"the state_dict has {found or 'nothing'} beside the recurrent layer: a "
                         "char-model has an embedding and a head too")
    if len(groups) > 2:
        raise ValueError(f"the state_dict has {len(groups)} parts beside the recurrent layer "
                         f"({found}): a char-model has two, the embedding and the head (no "
                         "layers between)")
    (a, a_leaves), (b, b_leaves) = groups.items()
    if ("bias" in a_leaves) != ("bias" in b_leaves):
        embedding, head = (b, a) if "bias" in a_leaves else (a, b)
    elif "bias" in a_leaves:
        raise ValueError(f"both {a}bias and {b}bias are there, but an nn.Embedding has no bias: "
                         "which is the embedding?")
    else:
        hidden = _width(state.get(f"{rnn}weight_hh_l0"))
        wide_a, wide_b = _width(state[a + "weight"]), _width(state[b + "weight"])
        embedding, head = (a, b) if not (wide_a == hidden != wide_b) else (b, a)
    tensors = {k: v for k, v in state.items() if k.startswith(rnn) and RECURRENT_KEY.match(k)}
    tensors = {"embedding.weight": state[embedding + "weight"],
               **{f"rnn.{k[len(rnn):]}": v for k, v in tensors.items()},
               "head.weight": state[head + "weight"]}
    if head + "bias" in state:
        tensors["head.bias"] = state[head + "bias"]
    return {"cell": None, "dropout": 0.0, "tensors": tensors, "embedding": embedding,
            "rnn": rnn, "head": head}


def shown(parts: dict, name: str) -> str:
    """The user's name of a weight (``fc.bias``) from its name here (``head.bias``)."""
    part, _, leaf = name.partition(".")
    return parts[part] + leaf


def _width(t):
    shape = getattr(t, "shape", ())
    return shape[-1] if len(shape) == 2 else None


def as_array(name: str, t, torch) -> np.ndarray:
    """A weight as a float64 NumPy array (from any device), or a ValueError naming it."""
    if isinstance(t, torch.Tensor):
        if not t.is_floating_point():
            raise ValueError(f"{name} holds {t.dtype}, not floating-point weights")
        return t.detach().to("cpu", torch.float64).numpy()
    if isinstance(t, np.ndarray) and t.dtype.kind == "f":
        return t.astype(np.float64)
    raise ValueError(f"{name} is a {type(t).__name__}, not a tensor of weights")


def vocab_chars(vocab) -> list[str]:
    """The characters of ``vocab`` in id order (a ``Vocab``, a str, or a list or tuple)."""
    if isinstance(vocab, Vocab):
        return list(vocab.chars)
    if not isinstance(vocab, (str, list, tuple)):
        raise ValueError(f"vocab must be a Vocab, a str of the characters in id order or a list "
                         f"of them, not {type(vocab).__name__}")
    chars = list(vocab)
    odd = next((c for c in chars if not (isinstance(c, str) and len(c) == 1)), None)
    if odd is not None:
        raise ValueError(f"vocab holds {odd!r}, which is not one character: give the characters "
                         "of ids 0, 1, 2, ...")
    seen = set()
    for c in chars:
        if c in seen:
            raise ValueError(f"vocab has {c!r} twice: each id needs a character of its own")
        seen.add(c)
    if len(chars) < 2:
        raise ValueError("vocab needs at least two characters")
    Vocab(chars)                        # its own checks (no lone surrogates)
    return chars


def check_layout(parts: dict, w: dict, chars: list[str]) -> dict:
    """The architecture the weights make, after checking every shape against it."""
    emb, rnn, head = parts["embedding"], parts["rnn"], parts["head"]
    if w["embedding.weight"].ndim != 2:
        raise ValueError(f"{emb}weight has shape {tuple(w['embedding.weight'].shape)}: an "
                         "embedding's is (characters, size)")
    V, E = w["embedding.weight"].shape
    if "rnn.weight_hh_l0" not in w:
        raise ValueError(f"the recurrent layer has no {rnn}weight_hh_l0")
    G, H = (w["rnn.weight_hh_l0"].shape + (0, 0))[:2]
    gates = G // H if H and G % H == 0 and w["rnn.weight_hh_l0"].ndim == 2 else None
    cell = CELL_OF_GATES.get(gates)
    if cell is None:
        raise ValueError(f"{rnn}weight_hh_l0 has shape {tuple(w['rnn.weight_hh_l0'].shape)}: a "
                         "fused nn.RNN, nn.GRU or nn.LSTM's is (1, 3 or 4 x hidden size, "
                         "hidden size)")
    if parts["cell"] not in (None, cell):
        raise ValueError(f"the {FUSED_NAME[parts['cell']]}'s weights have {gates} gates")
    numbers = sorted({int(RECURRENT_KEY.match(k)["layer"]) for k in w if k.startswith("rnn.")})
    L = len(numbers)
    if numbers != list(range(L)):
        missing = next(n for n in range(L + 1) if n not in numbers)
        raise ValueError(f"the recurrent layer has weights of layer {numbers[-1]} but none of "
                         f"layer {missing}")
    for l in range(L):
        expected = {f"weight_ih_l{l}": (G, E if l == 0 else H), f"weight_hh_l{l}": (G, H)}
        biases = [k for k in (f"bias_ih_l{l}", f"bias_hh_l{l}") if f"rnn.{k}" in w]
        if len(biases) == 1:
            raise ValueError(f"the recurrent layer has {rnn}{biases[0]} but not its pair")
        expected.update({k: (G,) for k in biases})
        for key, shape in expected.items():
            if f"rnn.{key}" not in w:
                raise ValueError(f"the recurrent layer has no {rnn}{key}")
            got = tuple(w[f"rnn.{key}"].shape)
            if got != shape:
                why = (f"the embedding is {E} wide" if key == "weight_ih_l0" and got[1:] != (E,)
                       else f"a {FUSED_NAME[cell]} of hidden size {H}")
                raise ValueError(f"{rnn}{key} has shape {got}, expected {shape}: {why}")
    head_w = w["head.weight"]
    if head_w.ndim != 2 or head_w.shape[1] != H:
        raise ValueError(f"{head}weight has shape {tuple(head_w.shape)}: the head takes the "
                         f"{H} outputs of the recurrent layer, (characters, {H})")
    if head_w.shape[0] != V:
        raise ValueError(f"the embedding has {V} characters but the head {head_w.shape[0]}: "
                         "they must be the same vocabulary")
    if "head.bias" in w and tuple(w["head.bias"].shape) != (V,):
        raise ValueError(f"{head}bias has shape {tuple(w['head.bias'].shape)}, expected ({V},)")
    if len(chars) != V:
        raise ValueError(f"vocab has {len(chars)} characters but the model {V}")
    if not 0 <= parts["dropout"] < 1:
        raise ValueError(f"the recurrent layer's dropout is {parts['dropout']}: use one below 1")
    bad = next((k for k, a in w.items() if not np.isfinite(a).all()), None)
    if bad is not None:
        raise ValueError(f"{shown(parts, bad)} holds NaN or infinite weights")
    return {"cell": cell, "vocab_size": V, "hidden_size": H, "layers": L,
            "dropout": parts["dropout"], "float64": parts.get("float64", False)}


def build(cls, layout: dict, w: dict, chars: list[str]):
    """A new ``cls`` holding the weights ``w`` (checked), folded into the engine's layout."""
    cell, V, H, L = layout["cell"], layout["vocab_size"], layout["hidden_size"], layout["layers"]
    dtype = "float64" if layout["float64"] else "float32"
    order = sorted(range(V), key=chars.__getitem__)     # engine id j is PyTorch id order[j]
    net = Network(cell, V, H, L, layout["dropout"], dtype)
    p = net.params
    zeros = np.zeros(len(TORCH_BLOCK[cell]) * H)
    for l in range(L):
        W_ih = torch_order(cell, w[f"rnn.weight_ih_l{l}"], H)              # (G, in)
        W_hh = torch_order(cell, w[f"rnn.weight_hh_l{l}"], H)              # (G, H)
        b_ih = torch_order(cell, w.get(f"rnn.bias_ih_l{l}", zeros), H)     # (G,)
        b_hh = torch_order(cell, w.get(f"rnn.bias_hh_l{l}", zeros), H)
        # (V, E) @ (E, G): the embedding folded into the first layer's table.
        p[f"l{l}.Wx"][...] = w["embedding.weight"][order] @ W_ih.T if l == 0 else W_ih.T
        p[f"l{l}.Wh"][...] = W_hh.T
        if cell == "gru":
            p[f"l{l}.b"][...] = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
            p[f"l{l}.bhn"][...] = b_hh[2 * H :]
        else:
            p[f"l{l}.b"][...] = b_ih + b_hh
    p["Wy"][...] = w["head.weight"][order].T                               # (H, V)
    p["by"][...] = w["head.bias"][order] if "head.bias" in w else 0.0

    settings = resolve({k: None for k in TRAIN_DEFAULTS}, {**TRAIN_DEFAULTS, **_TRAINING})
    settings["seed"] = int(np.random.SeedSequence().entropy % 2**63)
    model = cls(cell, H, L, layout["dropout"], dtype)
    model.vocab, model._net, model._settings = Vocab(chars), net, settings
    model._optimizer = OPTIMIZERS[settings["optimizer"]](net.size, net.dtype, settings["lr"])
    model._rng = np.random.default_rng(settings["seed"])
    # The steps it had in PyTorch are not in the module: it arrives here as one step.
    model.step = 1
    return model

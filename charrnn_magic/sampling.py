"""Generating text: temperature, top-k / top-p, priming, stop characters, many samples at once.

``plan`` checks the arguments of ``CharRNN.sample`` (and its siblings) and turns them into
``generate``'s; ``generate`` yields the sampled ids step by step; ``decode`` turns them into texts.

Sampling uses the Gumbel-max trick: ``argmax(logits / T + g)`` with standard Gumbel noise ``g`` is
an exact draw from ``softmax(logits / T)``. The noise for a block of steps is drawn in one call, and
``1 / T`` is folded into the output weights once, so a step costs two matrix-vector products, a
tanh and an argmax: no softmax, no cumulative sum, no ``np.random.choice`` per character.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass

import numpy as np

from . import budget
from .blas_threads import blas_threads
from .settings import check_int, check_number
from .text import check_no_surrogates, normalize
from .vocab import describe_chars

_BLOCK = 256  # steps of Gumbel noise drawn at a time, at most
_PRIME_CHUNK = 256  # priming characters run through the network at a time

#: Temperatures below this sample greedily, as 0 does. At 1e-6 the Gumbel noise (|g| < 17 in
#: float32) weighs as much as a logit difference of 2e-5, so the draw is already the argmax; far
#: below it, 1/T overflows (1e-320 gave inf weights and only newlines).
MIN_TEMPERATURE = 1e-6


class _Default:
    """A default argument that stands for a rule rather than a value; its repr says which, so
    ``help(CharRNN.sample)`` reads ``stop=<the end of the line in lines mode, ...>``."""

    def __init__(self, meaning: str):
        self.meaning = meaning

    def __repr__(self) -> str:
        return f"<{self.meaning}>"


#: The default ``stop`` of sampling: a lines-mode model stops at the end of its line (the
#: newline is not kept), a stream-mode model does not stop before ``length``.
LINE_END = _Default("the end of the line in lines mode, none in stream mode")


@dataclass
class SampleRequest:
    """What a sample is asked for: the arguments of ``CharRNN.sample``, ``sample_with_probs`` and
    ``sample_stream`` (which has no ``count``), defined here once with their defaults; what each
    means is in ``CharRNN.sample``'s docstring."""

    length: int = 200
    temperature: float = 1.0
    prime: str | None = None
    seed_char: str | None = None
    top_k: int | None = None
    top_p: float | None = None
    stop: object = LINE_END
    count: int = 1
    seed: int | None = None


def sample_texts(model, request: SampleRequest, with_probs: bool):
    """(texts, probs) of ``request`` from a trained ``model``: ``count`` texts, and with
    ``with_probs`` the probability of each of their characters (see ``decode``)."""
    steps_plan = model_plan(model, request)
    seed_char = steps_plan.pop("seed_char")                  # lower-cased for a `lower` model
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
        ids, probs = collect(generate(**steps_plan, with_probs=with_probs), model.vocab,
                             steps_plan["length"], request.count, with_probs)
    drop = steps_plan["stop_id"] if model.mode == "lines" else None
    return decode(ids, probs, model.vocab, seed_char=seed_char, stop_id=steps_plan["stop_id"],
                  drop_stop_id=drop)


def stream_chars(model, request: SampleRequest):
    """A generator of the characters of one sample of ``request``, each as it is made; the
    arguments are checked now, before the first character."""
    return _stream(model_plan(model, request), model.vocab.chars, model.mode == "lines")


def _stream(steps_plan, chars, lines: bool):
    seed_char = steps_plan.pop("seed_char")
    if seed_char is not None:
        yield seed_char
    with blas_threads(1):
        for ids in generate(**steps_plan):
            i = ids[0]
            if i < 0 or (i == steps_plan["stop_id"] and lines):
                return
            yield chars[i]


def model_plan(model, request: SampleRequest) -> dict:
    """``plan`` for a trained ``model``, on a private copy of its weights."""
    if not model.is_trained:
        raise ValueError("the model is not trained yet: call fit(text) first")
    with model._lock:
        flat = model._net.flat.copy()
    settings = model._settings
    return plan(model.vocab, model._net, flat, lines=model.mode == "lines",
                lower=bool(settings.get("lower")), raw_text=bool(settings.get("raw_text")),
                **vars(request))


def plan(vocab, net, flat, *, lines: bool, lower: bool, raw_text: bool, length, temperature,
         prime, seed_char, top_k, top_p, stop, count, seed) -> dict:
    """Check the sampling arguments (a ValueError names the first wrong one) and turn them into
    ``generate``'s keyword arguments, plus ``seed_char`` (lower-cased for a ``lower`` model).

    vocab, net: the model's; flat: a private copy of its weights; lines: a lines-mode model;
    lower, raw_text: how the model took its training text, and so takes the prime.
    """
    check_int("length", length, 0)
    check_int("count", count, 1)
    check_int("top_k", top_k, 1, optional=True)
    check_int("seed", seed, 0, optional=True)
    check_number("temperature", temperature, minimum=0, what="0 (greedy) or more, such as 0.8")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} is out of range: use a number above 0 and at most 1")
    if prime is not None and not isinstance(prime, str):
        raise ValueError(f"prime must be a str, not {type(prime).__name__}")
    if seed_char is not None and not isinstance(seed_char, str):
        raise ValueError(f"seed_char={seed_char!r} must be exactly one character")
    if stop is not LINE_END and stop is not None and not (isinstance(stop, str) and len(stop) == 1):
        raise ValueError(f"stop={stop!r} must be one character or None")
    if prime is not None and seed_char is not None:
        raise ValueError("give either prime or seed_char, not both")
    for what, text in (("prime", prime), ("seed_char", seed_char)):
        if text is not None:
            check_no_surrogates(text, what)
    if prime is not None and not raw_text:
        prime = normalize(prime)
    if lower:
        prime = prime.lower() if prime else prime
        seed_char = seed_char.lower() if seed_char else seed_char
    if seed_char is not None:
        if len(seed_char) != 1:
            raise ValueError(f"seed_char={seed_char!r} must be exactly one character")
        _check_known(vocab, seed_char, "seed_char")
    if prime is not None:
        _check_known(vocab, prime, "prime")
    if stop is LINE_END:
        stop = "\n" if lines else None
    if stop is not None:
        _check_known(vocab, stop, "stop")
    newline = vocab.chars.index("\n") if "\n" in vocab else None
    start_text = prime or seed_char or ""
    context = list(vocab.encode(start_text)) if start_text else []
    if lines or not context:
        space = vocab.chars.index(" ") if " " in vocab else 0
        default = newline if newline is not None else space
        context = [default] + context
    if seed_char is not None:
        length -= 1
    budget.check_sampling(net.cell_name, len(vocab), net.hidden_size, len(net.cells), count,
                          net.dtype.itemsize, top_k is not None or top_p is not None)
    return dict(seed_char=seed_char, net=net, flat=flat, start_ids=context, length=max(0, length),
                temperature=float(temperature), top_k=top_k, top_p=top_p,
                stop_id=None if stop is None else vocab.chars.index(stop), count=count,
                rng=np.random.default_rng(seed))


def collect(steps, vocab, length: int, count: int, with_probs: bool = False):
    """(ids, probs) of ``generate``'s ``steps``: a (n, count) array of ids in the vocabulary's
    id type (one byte a character for up to 256 characters) filled step by step, n the steps
    generated (at most ``length``; fewer when every sample stopped), and with ``with_probs`` the
    (n, count) float32 probabilities, else None. Nothing grows while sampling: the arrays are
    made once, after ``budget.check_sample_result`` found room for them and for the texts
    ``decode`` makes of them. An id after a sample's stop is left as generate gave it (-1,
    wrapped round in an unsigned type): ``decode`` stops each text at its first stop id."""
    width = _char_width(vocab)
    id_dtype = vocab.id_dtype
    budget.check_sample_result(count, length, width, id_dtype.itemsize, with_probs)
    with budget.out_of_memory("the sample", "ask for fewer characters (length, -n) or samples "
                                            "(count, --count)"):
        ids = np.empty((length, count), id_dtype)                   # (length, count)
        probs = np.empty((length, count), np.float32) if with_probs else None
    n = 0
    for out in steps:
        if with_probs:
            out, p = out
            probs[n] = p
        ids[n] = out                   # an id after a stop: -1, wrapped round (never read)
        n += 1
    return ids[:n], None if probs is None else probs[:n]


def decode(ids, probs, vocab, *, seed_char, stop_id, drop_stop_id):
    """(texts, probs) of ``collect``'s (n, count) ``ids`` (and ``probs`` or None): each text up
    to and with its first ``stop_id`` (``drop_stop_id``, when given, is left out at the end: a
    lines-mode model's newline), after ``seed_char`` when given; probs one float64 array per
    text, NaN for the seed character, else Nones. A text is decoded through a table of code
    points in one call, a chunk of ``_DECODE_CHUNK`` characters at a time, so it costs a few
    bytes a character however long it is."""
    codes, decode_codes = _code_table(vocab)
    texts, out_probs = [], []
    for i in range(ids.shape[1]):
        row = ids[:, i]                                             # (n,) a strided view
        n = len(row)
        if stop_id is not None:
            hits = np.flatnonzero(row == stop_id)
            n = int(hits[0]) + 1 if len(hits) else n
        if drop_stop_id is not None and n and row[n - 1] == drop_stop_id:
            n -= 1
        pieces = [decode_codes(codes[row[s : min(n, s + _DECODE_CHUNK)]])
                  for s in range(0, n, _DECODE_CHUNK)]
        text = pieces[0] if len(pieces) == 1 else "".join(pieces)
        p = probs[:n, i].astype(float) if probs is not None else None
        if seed_char is not None:
            text = seed_char + text
            if p is not None:
                p = np.concatenate(([np.nan], p))
        texts.append(text)
        out_probs.append(p)
    return texts, out_probs


_DECODE_CHUNK = 1 << 20   # characters decoded at a time


def _char_width(vocab) -> int:
    """Bytes a character of a text in this vocabulary takes in a Python str (1, 2 or 4)."""
    top = ord(vocab.chars[-1])
    return 1 if top < 256 else 2 if top < 65536 else 4


def _code_table(vocab):
    """(table, decode): ``table[id]`` is the character's code point, as one Latin-1 byte when
    every character has one, else as UTF-32; ``decode`` turns a (n,) array of them into text."""
    points = np.array([ord(c) for c in vocab.chars])
    if _char_width(vocab) == 1:
        return points.astype(np.uint8), lambda a: codecs.latin_1_decode(a)[0]
    return points.astype("<u4"), lambda a: codecs.utf_32_le_decode(a)[0]


def _check_known(vocab, text: str, what: str):
    missing = vocab.missing(text)
    if missing:
        raise ValueError(f"{what} has character(s) outside the model's vocabulary: "
                         f"{describe_chars(missing)}; use characters the model was trained on")


def generate(net, flat, start_ids, *, length, temperature=1.0, top_k=None, top_p=None,
             stop_id=None, count=1, rng=None, with_probs=False):
    """Yield, step by step, the (count,) array of sampled ids and, with ``with_probs``, the
    (count,) probabilities the model gave them (at temperature 1).

    net: the ``Network`` (for its shapes and cells); flat: a private copy of its weights.
    start_ids: the context (priming text, a seed character, or the start-of-line newline); the
    state after all but its last id is computed with the batched forward pass, the last id is
    the first input of the sampling loop. Samples that produced ``stop_id`` stop (their later
    ids are ``-1``); the generator ends when every sample has stopped or after ``length`` steps.
    """
    rng = rng if rng is not None else np.random.default_rng()
    params = net.views(flat)
    layers = [net.layer_params(params, l) for l in range(len(net.cells))]
    greedy = temperature < MIN_TEMPERATURE
    scale = 1.0 if greedy else 1.0 / temperature
    Wy = params["Wy"] * scale                          # (H, V) temperature folded in once
    by = params["by"] * scale
    V = Wy.shape[1]
    embed = layers[0]["Wx"] + layers[0]["b"]          # (V, G) input term of layer 0 per character

    context = np.asarray(start_ids, dtype=np.int64)
    state = _prime(net, layers, context[:-1], count)
    scratch = [c.scratch(count, net.dtype) for c in net.cells]
    x_upper = [np.empty((count, c.gates * net.hidden_size), net.dtype) for c in net.cells]
    logits = np.empty((count, V), net.dtype)
    ids = np.full(count, context[-1], dtype=np.int64)
    done = np.zeros(count, dtype=bool)
    rows = np.arange(count)
    filtered = top_k is not None and top_k < V or top_p is not None and top_p < 1.0
    # The loop body runs once per character: everything it needs is bound to a local name
    # first, and the noise block is walked row by row, to keep Python's share of a step small.
    cell0, p0, state0, scratch0 = net.cells[0], layers[0], state[0], scratch[0]
    upper = [(cell, layers[l], state[l], scratch[l], x_upper[l])
             for l, cell in enumerate(net.cells) if l]
    single = count == 1
    dot = np.dot
    t = 0
    while t < length:
        n = max(1, min(_BLOCK, length - t, budget.NOISE_BYTES // (count * V * net.dtype.itemsize)))
        # The head's bias plus this block's Gumbel noise: one (n, count, V) array.
        if greedy:
            head_bias = np.broadcast_to(by, (n, count, V))
        else:
            head_bias = gumbel_noise(rng, (n, count, V), net.dtype)
            head_bias += by
        for bias in head_bias:
            # One sample: a plain index gives a view, ten times cheaper than a fancy index's copy.
            x = embed[ids[0]] if single else embed[ids]              # (G,) or (count, G)
            h = cell0.step(x, state0, p0, scratch0)
            for cell, p, st, sc, xu in upper:
                dot(h, p["Wx"], out=xu)
                xu += p["b"]
                h = cell.step(xu, st, p, sc)
            dot(h, Wy, out=logits)                                   # (count, V)
            if with_probs or filtered:
                logits += by
                raw = logits.copy() if with_probs else None     # the model's own view, unfiltered
                if top_k is not None and top_k < V:
                    kth = np.partition(logits, -top_k, axis=1)[:, -top_k, None]
                    logits[logits < kth] = -np.inf
                if top_p is not None and top_p < 1.0:
                    _keep_top_p(logits, top_p)
                logits += bias - by                                  # the noise alone
            else:
                logits += bias
            ids = logits.argmax(axis=1)
            if stop_id is None:
                out = ids
            else:
                out = np.where(done, -1, ids)
                done |= ids == stop_id
            if with_probs:
                yield out, _probabilities(raw / scale, ids, rows)
            else:
                yield out
            if stop_id is not None and done.all():
                return
        t += n


def recites(net, ids: np.ndarray) -> bool:
    """Whether a greedy sample from the first of ``ids`` is all of ``ids``: how a text learned
    whole is known to be learned (``train.run`` stops then). Stops at the first wrong character."""
    steps = generate(net, net.flat, ids[:1], length=len(ids) - 1, temperature=0)
    return all(int(out[0]) == want for out, want in zip(steps, ids[1:].tolist(), strict=False))


def gumbel_noise(rng, shape, dtype) -> np.ndarray:
    """Standard Gumbel noise ``-log(-log(U))``, drawn and computed in the model's dtype, which is
    several times faster than ``rng.gumbel`` (float64, then a cast; figures in
    ``benchmarks/README.md``). U = 0 (chance 2**-24 in float32) gives -inf: that character is not
    drawn at that step."""
    g = rng.random(shape, dtype=dtype)
    with np.errstate(divide="ignore"):
        np.log(g, out=g)
        np.negative(g, out=g)
        np.log(g, out=g)
    np.negative(g, out=g)
    return g


def _prime(net, layers, context, count):
    """The state after the priming ids ``context``, one (count, H) array per state part and
    layer, each a fresh copy the sampling loop may update in place.

    All samples share the context, so it runs once, as a batch of one, through the batched
    forward pass ``_PRIME_CHUNK`` characters at a time carrying only the state; the state is
    then copied to every sample. Memory is a chunk's activations, whatever the prime's length
    and ``count``."""
    state = [tuple(np.zeros((1, net.hidden_size), net.dtype) for _ in range(c.state_size))
             for c in net.cells]                                      # (1, H) each
    for start in range(0, len(context), _PRIME_CHUNK):
        below = context[start : start + _PRIME_CHUNK, None]           # (t, 1) ids
        for l, (cell, p) in enumerate(zip(net.cells, layers, strict=True)):
            below, state[l], _ = cell.forward(net.project(l, below, p), state[l], p)
    return [tuple(np.repeat(a, count, axis=0) for a in s) for s in state]   # (count, H) each


def _keep_top_p(logits, top_p):
    """Nucleus filtering in place: keep the smallest set of most likely characters whose
    probabilities sum to at least ``top_p``."""
    order = np.argsort(-logits, axis=1)
    sorted_logits = np.take_along_axis(logits, order, axis=1)
    probs = np.exp(sorted_logits - sorted_logits[:, :1])
    cumulative = np.cumsum(probs, axis=1) / probs.sum(axis=1, keepdims=True)
    drop_sorted = cumulative - probs / probs.sum(axis=1, keepdims=True) >= top_p   # mass before it
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=1)
    logits[drop] = -np.inf


def _probabilities(logits, ids, rows):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p[rows, ids] / p.sum(axis=1)

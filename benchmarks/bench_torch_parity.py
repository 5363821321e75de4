"""How closely ``model.to_torch()`` reproduces the engine: the largest absolute difference between
the engine's next-character logits and PyTorch's, over a text, for every cell and 1 to 3 layers.

Three kinds of weights per architecture:

- ``trained``: the engine's own training for ``--steps`` steps on the built-in ``verse`` corpus;
- ``random``: weights drawn at random (N(0, 0.5²); the recurrent ones N(0, (0.9/√H)²), a spectral
  radius about 0.9), as in tests/test_torch_bridge.py;
- ``chaotic``: the same with a recurrent radius about 2.5, where float32 rounding grows along the
  text in any implementation.

Each kind has two columns: PyTorch's logits against the engine's (both float32), and the
engine's float32 logits against its own float64 logits with the same weights, the rounding
error of float32 arithmetic itself: where the first is of the size of the second, what differs
is the float32 arithmetic (the order of the sums), not the mapping of the weights.

The engine's logits are its trace's top-layer states times its head (``trace.py``, the
engine's forward pass); PyTorch's come from the module in eval mode, one thread.

    python benchmarks/bench_torch_parity.py [--hidden 128] [--steps 50] [--chars 5000]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from charrnn_magic import CharRNN
from charrnn_magic.corpora import load_corpus


def engine_logits(model, text):
    top = model.trace(text, probs=False).state(model.layers - 1, "h")          # (T, H)
    return top @ model._net.params["Wy"] + model._net.params["by"]             # (T, V)


def torch_logits(model, text):
    module = model.to_torch().eval()
    ids = torch.as_tensor(model.vocab.encode(text).astype(np.int64))[None]
    with torch.no_grad():
        return module(ids)[0][0].numpy()


def draw(model, radius, seed=0):
    rng = np.random.default_rng(seed)
    H = model.hidden_size
    for name, view in model._net.params.items():
        view[...] = rng.normal(0.0, radius / np.sqrt(H) if name.endswith("Wh") else 0.5,
                               view.shape)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--chars", type=int, default=5000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    corpus = load_corpus("verse")
    text = (corpus * (args.chars // len(corpus) + 1))[: args.chars]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or '?'}"
          f", NumPy {np.__version__}, PyTorch {torch.__version__}; hidden {args.hidden}, "
          f"{args.chars} characters of verse, float32")
    print(f"{'cell':5} {'layers':>6}   {'trained':>19}   {'random':>19}   {'chaotic':>19}"
          f"   |logits| max")
    print(f"{'':12}" + "   {:>9} {:>9}".format("PyTorch", "float64") * 3)
    for cell in ("rnn", "lstm", "gru"):
        for layers in (1, 2, 3):
            model = CharRNN(cell, hidden_size=args.hidden, layers=layers)
            model.fit(corpus, steps=args.steps, seed=1)
            wide = CharRNN(cell, hidden_size=args.hidden, layers=layers, dtype="float64")
            wide.fit(corpus, steps=1, seed=1)
            row, biggest = [], 0.0
            for radius in (None, 0.9, 2.5):
                if radius is not None:
                    draw(model, radius)
                ours = engine_logits(model, text)
                wide._net.flat[:] = model._net.flat
                row += [np.abs(torch_logits(model, text) - ours).max(),
                        np.abs(engine_logits(wide, text) - ours).max()]
                biggest = max(biggest, np.abs(ours).max())
            print(f"{cell:5} {layers:>6}" + "".join(
                f"   {a:9.2e} {b:9.2e}" for a, b in zip(row[::2], row[1::2], strict=True))
                + f"   {biggest:.1f}")


if __name__ == "__main__":
    main()

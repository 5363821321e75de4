"""PyTorch CPU reference: the same char models built from `nn.RNN` / `nn.GRU` / `nn.LSTM`,
for a speed yardstick.

Same configuration as the engine and the classic algorithm:
- input, one of two:
  - `inputs="onehot"`: the character id as a one-hot vector of the vocabulary size, so the first
    layer's input weights are exactly the classic W_xh (V -> H);
  - `inputs="embedding"` (what a PyTorch user writes): `nn.Embedding(V, E)` in front of the fused
    cell, E = `embedding_size` (64 by default, makemore's size; the table lookup is cheaper than
    the one-hot product, and the smaller E the cheaper the first layer's input product);
  PyTorch's CPU RNN turns the whole window's input projection into one matrix product, which is
  the fast path it would choose anyway;
- a Linear head to the vocabulary, cross-entropy summed over the window and averaged over the
  batch (the classic sums over the window; the batch mean keeps the gradient scale per stream);
- B parallel streams through the text, hidden state carried from window to window (detached:
  truncated backpropagation through time), reset when the streams wrap around;
- Adagrad lr 0.1 + element-wise clip ±5 for the RNN (the classic recipe); Adam 2e-3 for the LSTM;
  the preset comparisons (`PRESET_SETTINGS`): Adam 2e-3, window 50, clip of the global norm at 1.

torch is optional (`pip install torch==2.13.0`, a CPU wheel): `available()` says whether it can be
imported, and every benchmark skips the torch rows with a message when it cannot.

Run alone: `python benchmarks/torch_reference.py [--seconds 5]` prints chars/s at 1 and 2 threads.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # the benchmark scripts print a "skipped" row instead
    torch = None

TORCH_INSTALL = "pip install torch==2.13.0"


def available() -> bool:
    return torch is not None


if torch is not None:

    class CharModel(nn.Module):
        """one-hot or nn.Embedding -> nn.RNN / nn.GRU / nn.LSTM (stacked) -> Linear to the
        vocabulary."""

        def __init__(self, vocab_size: int, cell: str, hidden_size: int, layers: int,
                     inputs: str = "onehot", embedding_size: int = 64):
            super().__init__()
            rnn_cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
            kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
            self.vocab_size = vocab_size
            self.embed = nn.Embedding(vocab_size, embedding_size) if inputs == "embedding" else None
            width = embedding_size if self.embed is not None else vocab_size
            # (T, B, F) layout
            self.rnn = rnn_cls(width, hidden_size, num_layers=layers, **kwargs)
            self.head = nn.Linear(hidden_size, vocab_size)

        def forward(self, ids, state):
            if self.embed is not None:
                x = self.embed(ids)                                   # (T, B, E)
            else:
                x = F.one_hot(ids, self.vocab_size).to(torch.float32)   # (T, B, V)
            out, state = self.rnn(x, state)                          # (T, B, H)
            return self.head(out), state                             # (T, B, V)


class TorchTrainer:
    """Trains one CharModel on B parallel streams of the text; `train(steps)` runs a fixed number
    of windows."""

    def __init__(self, text: str, cell: str = "rnn", hidden_size: int = 100, layers: int = 1,
                 seq_length: int = 25, batch_size: int = 32, optimizer: str = "adagrad",
                 lr: float = 0.1, clip: float = 5.0, clip_mode: str = "value",
                 inputs: str = "onehot", embedding_size: int = 64, seed: int = 0):
        if torch is None:
            raise RuntimeError(f"torch is not installed ({TORCH_INSTALL})")
        torch.manual_seed(seed)
        chars = sorted(set(text))
        self.lookup = np.zeros(max(map(ord, chars)) + 1, dtype=np.int64)    # code point -> id
        self.lookup[[ord(c) for c in chars]] = np.arange(len(chars))
        ids = self.encode(text)
        # B streams, each a contiguous slice of the text (as the engine's stream batches do).
        per_stream = len(ids) // batch_size
        streams = ids[: per_stream * batch_size].reshape(batch_size, per_stream).T
        self.streams = torch.from_numpy(streams.copy())
        self.vocab_size = len(chars)
        self.T, self.B, self.clip, self.cell = seq_length, batch_size, clip, cell
        self.clip_mode = clip_mode
        self.model = CharModel(len(chars), cell, hidden_size, layers, inputs, embedding_size)
        opt = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam}[optimizer]
        self.opt = opt(self.model.parameters(), lr=lr)
        self.pos = 0
        self.state = None
        self.last_loss = float("nan")

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``, every character of which is in the training text."""
        return self.lookup[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]

    @property
    def chars_per_step(self) -> int:
        return self.T * self.B

    def train(self, steps: int) -> float:
        """Run `steps` windows; returns the mean loss per character of the last one."""
        T = self.T
        for _ in range(steps):
            if self.pos + T + 1 > self.streams.shape[0]:
                self.pos, self.state = 0, None                 # wrap: fresh state
            window = self.streams[self.pos:self.pos + T + 1]   # (T+1, B)
            logits, state = self.model(window[:-1], self.state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[1:].reshape(-1),
                                   reduction="sum") / self.B
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip and self.clip_mode == "norm":
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            elif self.clip:
                nn.utils.clip_grad_value_(self.model.parameters(), self.clip)
            self.opt.step()
            # Truncated BPTT: keep the values of the state, drop its graph.
            if isinstance(state, tuple):
                self.state = tuple(s.detach() for s in state)
            else:
                self.state = state.detach()
            self.pos += T
        self.last_loss = loss.item() / T
        return self.last_loss


# The two configurations of the issue, as keyword arguments to TorchTrainer.
RNN_CLASSIC = dict(cell="rnn", hidden_size=100, layers=1, seq_length=25, optimizer="adagrad",
                   lr=0.1, clip=5.0)
LSTM_2x256 = dict(cell="lstm", hidden_size=256, layers=2, seq_length=25, batch_size=32,
                  optimizer="adam", lr=2e-3, clip=5.0)
#: The preset comparisons: what a PyTorch user writes (nn.Embedding, the fused cell, Adam, norm
#: clipping), with the training settings the engine's chosen defaults use.
PRESET_SETTINGS = dict(seq_length=50, batch_size=32, optimizer="adam", lr=2e-3, clip=1.0,
                       clip_mode="norm", inputs="embedding")
PRESET_MODELS = {"GRU 2x128": dict(cell="gru", hidden_size=128, layers=2),
                 "GRU 2x256": dict(cell="gru", hidden_size=256, layers=2),
                 "LSTM 2x256": dict(cell="lstm", hidden_size=256, layers=2),
                 "RNN 100": dict(cell="rnn", hidden_size=100, layers=1)}


def set_threads(n: int) -> None:
    """Intra-op threads for the next measurement (torch allows changing this at any time)."""
    torch.set_num_threads(n)


def measure(trainer: TorchTrainer, threads: int, seconds: float) -> float:
    """chars/s of `trainer` at `threads` threads over roughly `seconds` (after a warm-up)."""
    set_threads(threads)
    trainer.train(3)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train(5)
        steps += 5
    return steps * trainer.chars_per_step / (time.perf_counter() - start)


def main() -> None:
    import _common

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="time per measurement (default 5)")
    args = ap.parse_args()
    print(_common.machine_line())
    if not available():
        print(f"torch is not installed: nothing to measure ({TORCH_INSTALL})")
        return
    text = _common.read_data("tinyshakespeare.txt")
    configs = [("nn.RNN h100 batch 1", dict(RNN_CLASSIC, batch_size=1)),
               ("nn.RNN h100 batch 32", dict(RNN_CLASSIC, batch_size=32)),
               ("nn.LSTM 2x256 batch 32", LSTM_2x256)]
    rows = []
    for name, cfg in configs:
        trainer = TorchTrainer(text, **cfg)
        rates = {n: measure(trainer, n, args.seconds) for n in (1, 2)}
        best = max(rates, key=rates.get)
        rows.append([name, _common.fmt_num(rates[1]), _common.fmt_num(rates[2]),
                     f"{_common.fmt_num(rates[best])} ({best} thr)", f"{trainer.last_loss:.3f}"])
    _common.print_table(["torch float32 training", "1 thread", "2 threads", "better",
                         "last loss/char"],
                        rows,
                        title="PyTorch CPU, chars/s (one-off, not alternated: see bench_speed.py)")


if __name__ == "__main__":
    main()

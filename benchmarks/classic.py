"""The classic per-character char-RNN of the tutorials, written out from the equations.

This is the baseline the engine is measured against, so it deliberately keeps the tutorial's
shape, costs included: one-hot column vectors for every character, dictionaries keyed by time
step, a Python loop over the characters for the forward pass and another for the backward pass,
float64 throughout, Adagrad with lr 0.1 and an element-wise clip to [-5, 5]. Making it faster
would make the comparison dishonest.

The model (V characters, H hidden units, one column vector per time step t):

    x_t = one_hot(c_t)                          (V, 1)
    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)   (H, 1)
    y_t = W_hy h_t + b_y                        (V, 1)   logits
    p_t = softmax(y_t)
    L   = sum_t -log p_t[c_{t+1}]               (summed over the window, as the tutorial does)

Backpropagation through time over a window of T characters, with a_t the pre-activation of h_t:

    dy_t   = p_t - one_hot(c_{t+1})
    dW_hy += dy_t h_t^T ;  db_y += dy_t
    dh_t   = W_hy^T dy_t + W_hh^T da_{t+1}      (the second term carries the gradient back in time)
    da_t   = (1 - h_t^2) * dh_t
    dW_xh += da_t x_t^T ;  dW_hh += da_t h_{t-1}^T ;  db_h += da_t

Training walks through the text in consecutive windows of T characters, carrying h from one
window into the next and resetting it to zero when the text wraps around.

Run it alone for a quick look: `python benchmarks/classic.py [--seconds 20]`.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

DTYPE = np.float64  # the tutorial never sets a dtype, so NumPy's default float64 is what it runs

# Products are written with np.dot, as in the tutorial, not with `@`: in NumPy 2.x the matmul
# operator takes a slower path for the (n, 1) x (1, m) outer products of the backward pass
# (about 17 us against 4 us for 100 x 100 here), which would make the baseline unfairly slow.


class ClassicRNN:
    """A vanilla tanh RNN trained one character at a time, exactly as in the tutorials."""

    def __init__(self, text: str, hidden_size: int = 100, seq_length: int = 25,
                 lr: float = 0.1, clip: float = 5.0, seed: int = 0):
        self.chars = sorted(set(text))
        self.char_to_ix = {c: i for i, c in enumerate(self.chars)}
        # The tutorial keeps the data as a Python string and looks each character up in a dict.
        self.data = text
        self.V, self.H, self.T = len(self.chars), hidden_size, seq_length
        self.lr, self.clip = lr, clip

        rng = np.random.default_rng(seed)
        V, H = self.V, self.H
        # Small random weights (scale 0.01) as in the tutorial: tanh starts in its linear region.
        self.Wxh = rng.standard_normal((H, V)).astype(DTYPE) * 0.01
        self.Whh = rng.standard_normal((H, H)).astype(DTYPE) * 0.01
        self.Why = rng.standard_normal((V, H)).astype(DTYPE) * 0.01
        self.bh = np.zeros((H, 1), DTYPE)
        self.by = np.zeros((V, 1), DTYPE)
        # Adagrad's running sum of squared gradients, one array per parameter.
        self.mem = [np.zeros_like(p) for p in self.params]

        self.pos = 0                       # where the next window starts in the text
        self.hprev = np.zeros((H, 1), DTYPE)
        self.steps = 0
        # The tutorial's smoothed loss starts at the loss of a uniform guess over the window.
        self.smooth_loss = -np.log(1.0 / V) * self.T

    @property
    def params(self):
        return [self.Wxh, self.Whh, self.Why, self.bh, self.by]

    # -- one window: forward and backward, a Python loop per character --------------------------
    def loss_and_grads(self, inputs: list[int], targets: list[int], hprev: np.ndarray):
        """Summed cross-entropy of the window, the five gradients, and the last hidden state."""
        xs, hs, ps = {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.V, 1), DTYPE)
            xs[t][inputs[t]] = 1.0
            hs[t] = np.tanh(np.dot(self.Wxh, xs[t]) + np.dot(self.Whh, hs[t - 1]) + self.bh)
            y = np.dot(self.Why, hs[t]) + self.by
            # Subtracting the max changes nothing mathematically and keeps exp() from overflowing.
            e = np.exp(y - np.max(y))
            ps[t] = e / np.sum(e)
            loss += -np.log(ps[t][targets[t], 0])

        dWxh, dWhh, dWhy = np.zeros_like(self.Wxh), np.zeros_like(self.Whh), np.zeros_like(self.Why)
        dbh, dby = np.zeros_like(self.bh), np.zeros_like(self.by)
        da_next = np.zeros_like(hprev)  # da_{t+1}; zero beyond the window (truncated BPTT)
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1.0
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(self.Why.T, dy) + np.dot(self.Whh.T, da_next)
            da = (1.0 - hs[t] * hs[t]) * dh
            dbh += da
            dWxh += np.dot(da, xs[t].T)
            dWhh += np.dot(da, hs[t - 1].T)
            da_next = da
        grads = [dWxh, dWhh, dWhy, dbh, dby]
        return loss, grads, hs[len(inputs) - 1]

    # -- the training loop ----------------------------------------------------------------------
    def train_step(self) -> float:
        """One window of seq_length characters: forward, backward, clip, Adagrad update."""
        T = self.T
        if self.pos + T + 1 >= len(self.data):
            self.pos = 0                                   # wrap: start over with a fresh state
            self.hprev = np.zeros((self.H, 1), DTYPE)
        window = self.data[self.pos:self.pos + T + 1]
        inputs = [self.char_to_ix[c] for c in window[:-1]]
        targets = [self.char_to_ix[c] for c in window[1:]]

        loss, grads, self.hprev = self.loss_and_grads(inputs, targets, self.hprev)
        for p, g, m in zip(self.params, grads, self.mem, strict=True):
            # element-wise clip against exploding gradients
            np.clip(g, -self.clip, self.clip, out=g)
            m += g * g
            p += -self.lr * g / np.sqrt(m + 1e-8)          # Adagrad: per-weight step sizes

        self.smooth_loss = self.smooth_loss * 0.999 + loss * 0.001
        self.pos += T
        self.steps += 1
        return loss

    def train(self, steps: int | None = None, seconds: float | None = None) -> dict:
        """Train for a number of steps or a time budget; returns the throughput and the loss."""
        if steps is None and seconds is None:
            raise ValueError("give steps or seconds")
        done = 0
        start = time.perf_counter()
        while True:
            if steps is not None and done >= steps:
                break
            if seconds is not None and time.perf_counter() - start >= seconds:
                break
            self.train_step()
            done += 1
        elapsed = time.perf_counter() - start
        return {
            "steps": done,
            "seconds": elapsed,
            "chars_per_sec": done * self.T / elapsed if elapsed > 0 else float("nan"),
            "smooth_loss_per_char": self.smooth_loss / self.T,
        }

    # -- the classic sampling loop ------------------------------------------------------------
    def sample(self, length: int, seed_ix: int = 0, h: np.ndarray | None = None) -> str:
        """Feed one one-hot character at a time and draw the next with np.random.choice."""
        h = np.zeros((self.H, 1), DTYPE) if h is None else np.copy(h)
        x = np.zeros((self.V, 1), DTYPE)
        x[seed_ix] = 1.0
        ixes = []
        for _ in range(length):
            h = np.tanh(np.dot(self.Wxh, x) + np.dot(self.Whh, h) + self.bh)
            y = np.dot(self.Why, h) + self.by
            p = np.exp(y - np.max(y))
            p /= np.sum(p)
            ix = np.random.choice(range(self.V), p=p.ravel())
            x = np.zeros((self.V, 1), DTYPE)
            x[ix] = 1.0
            ixes.append(ix)
        return "".join(self.chars[i] for i in ixes)


def train_chars_per_sec(text: str, steps: int | None = None, seconds: float | None = None,
                        hidden_size: int = 100, seq_length: int = 25,
                        warmup_steps: int = 20) -> float:
    """Characters per second of the classic training loop (after a short warm-up)."""
    model = ClassicRNN(text, hidden_size=hidden_size, seq_length=seq_length)
    model.train(steps=warmup_steps)
    return model.train(steps=steps, seconds=seconds)["chars_per_sec"]


def sample_chars_per_sec(text: str, hidden_size: int = 128, length: int = 1000,
                         repeats: int = 5) -> float:
    """Characters per second of the classic sampling loop (weights untrained: speed does not
    care)."""
    model = ClassicRNN(text, hidden_size=hidden_size)
    model.sample(50)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.sample(length)
        best = min(best, time.perf_counter() - start)
    return length / best


def main() -> None:
    import _common

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="training time budget (default 20)")
    ap.add_argument("--data", default="tinyshakespeare.txt", help="file in ../shared/data/")
    args = ap.parse_args()

    text = _common.read_data(args.data)
    print(_common.machine_line())
    model = ClassicRNN(text)
    print(f"classic RNN: vocab {model.V}, hidden {model.H}, seq {model.T}, "
          f"dtype {np.dtype(DTYPE).name}, Adagrad lr {model.lr}, clip ±{model.clip}")
    print(f"{'step':>7} {'smooth loss/char':>17} {'chars/s':>9}")
    print(f"{0:>7} {model.smooth_loss / model.T:>17.3f} {'-':>9}")
    chunk = max(args.seconds / 10, 0.5)
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        r = model.train(seconds=chunk)
        print(f"{model.steps:>7} {r['smooth_loss_per_char']:>17.3f} {r['chars_per_sec']:>9.0f}")
    print("\nsample:", repr(model.sample(200, seed_ix=model.char_to_ix["T"])))
    print(f"classic sampling at hidden 128: {sample_chars_per_sec(text):,.0f} chars/s")


if __name__ == "__main__":
    main()

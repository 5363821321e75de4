"""Recurrent cells: the vanilla tanh RNN, the LSTM and the GRU, forward and backward over a window.

Each cell sees its input already projected: ``XW[t] = x_t @ Wx + b`` for every step at once (an
embedding lookup for the first layer, one matrix product for the others; see ``model.py``). What is
left is the recurrence, the only part that has to be a Python loop over time. Each loop body is a
handful of NumPy calls writing into preallocated arrays (``out=``); every factor of the backward pass
that does not depend on the carried gradient is computed for all steps at once, before the loop.

Shapes: T steps, B sequences, H hidden units, G gates (RNN 1, GRU 3, LSTM 4).
``XW`` is (T, B, G·H); ``Wh`` is (H, G·H); a state is a tuple of (B, H) arrays.
Backpropagation is truncated at the window: no gradient flows into the initial state.
Inside the loops ``np.dot`` is used rather than ``np.matmul``: its dispatch is cheaper for these
small products. The exception is the LSTM's forward product from a copy of ``Wh`` with padded rows
(``padded_rows``), which only ``np.matmul`` passes to BLAS uncopied. The backward loops multiply
by a C-contiguous copy of ``Wh.T`` (``transposed``) rather than the transposed view, which BLAS
multiplies faster, for a copy made once per window. The measurements behind each choice are in
benchmarks/README.md.
"""
from __future__ import annotations

import numpy as np


def padded(W: np.ndarray) -> np.ndarray:
    """A copy of ``W`` as a view into a buffer whose rows are 16 elements longer.

    Reading down the columns of an array whose rows are a multiple of 4 KiB long (1024 float32)
    puts every read into the same cache sets; the padding breaks that.
    """
    H, G = W.shape
    out = np.empty((H, G + 16), W.dtype)
    out[:, :G] = W
    return out[:, :G]


def transposed(W: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``W.T``, made from a padded copy: copying down the columns of rows
    4 KiB long is slow for the same cache-set reason (see ``padded``). A ``W`` whose rows are
    padded already is used as it is."""
    already_padded = W.strides[0] != W.shape[1] * W.itemsize
    if already_padded or W.nbytes < 65536:    # small enough to stay in cache either way
        return np.ascontiguousarray(W.T)
    return np.ascontiguousarray(padded(W).T)


def padded_rows(W: np.ndarray) -> np.ndarray:
    """``W`` for the step products ``h @ W`` of a window: a copy with padded rows (``padded``)
    when its rows are a multiple of 4 KiB (an LSTM with H = 256), which BLAS reads faster, else
    ``W`` itself. Multiply with ``np.matmul``, which passes the padded rows to BLAS as they are
    (``np.dot`` would copy them contiguous again)."""
    return padded(W) if (W.shape[1] * W.itemsize) % 4096 == 0 else W


def sigmoid_(x: np.ndarray) -> np.ndarray:
    """In-place logistic function, as 0.5·tanh(x/2) + 0.5: no overflow warning for large |x|."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


class RNNCell:
    """h_t = tanh(XW_t + h_{t-1} @ Wh): the classic min-char-rnn recurrence."""

    gates = 1
    state_size = 1  # h

    def __init__(self, hidden_size: int):
        self.hidden_size = hidden_size

    def extra_params(self) -> dict:
        return {}

    def forward(self, XW, state, p):
        (h0,) = state
        T, B, H = XW.shape
        Wh = p["Wh"]
        Hs = np.empty((T + 1, B, H), XW.dtype)  # Hs[0] is the initial state, Hs[t+1] the output at t
        Hs[0] = h0
        for t in range(T):
            h = Hs[t + 1]
            np.dot(Hs[t], Wh, out=h)
            h += XW[t]
            np.tanh(h, out=h)
        return Hs[1:], (Hs[T],), Hs

    def backward(self, dHs, cache, p, g):
        """dHs (T,B,H): gradient of the loss w.r.t. each output. Returns dXW (T,B,H)."""
        Hs = cache
        T, B, H = dHs.shape
        WhT = transposed(p["Wh"])                # see the module docstring
        dA = 1.0 - Hs[1:] ** 2                       # (T,B,H) tanh'; becomes dXW in the loop
        dh = np.zeros((B, H), dHs.dtype)             # gradient carried back from step t+1
        for t in range(T - 1, -1, -1):
            dh += dHs[t]
            dA[t] *= dh
            np.dot(dA[t], WhT, out=dh)
        # One GEMM for the recurrent weights over all steps: (H, T·B) @ (T·B, H).
        np.matmul(Hs[:-1].reshape(-1, H).T, dA.reshape(-1, H), out=g["Wh"])
        return dA

    def scratch(self, n, dtype):
        return {"a": np.empty((n, self.hidden_size), dtype)}

    def step(self, x_proj, state, p, scratch):
        """One step for sampling, updating ``state`` in place: x_proj (N, G·H) includes the bias."""
        (h,) = state
        a = scratch["a"]
        np.dot(h, p["Wh"], out=a)
        a += x_proj
        np.tanh(a, out=h)
        return h


class LSTMCell:
    """Long short-term memory, gates in the order [input, forget, output, candidate]."""

    gates = 4
    state_size = 2  # h, c

    def __init__(self, hidden_size: int):
        self.hidden_size = hidden_size

    def extra_params(self) -> dict:
        return {}

    def forward(self, XW, state, p):
        h0, c0 = state
        T, B, G = XW.shape
        H = G // 4
        Wh = padded_rows(p["Wh"])
        A = np.empty((T, B, G), XW.dtype)        # gate activations [i, f, o, g]
        Hs = np.empty((T + 1, B, H), XW.dtype)
        Cs = np.empty((T + 1, B, H), XW.dtype)
        TC = np.empty((T, B, H), XW.dtype)       # tanh(c_t)
        ig = np.empty((B, H), XW.dtype)
        Hs[0], Cs[0] = h0, c0
        for t in range(T):
            a = A[t]
            np.matmul(Hs[t], Wh, out=a)
            a += XW[t]
            sigmoid_(a[:, : 3 * H])
            np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])
            c = Cs[t + 1]
            np.multiply(a[:, H : 2 * H], Cs[t], out=c)        # f * c_{t-1}
            np.multiply(a[:, :H], a[:, 3 * H :], out=ig)       # + i * g
            c += ig
            np.tanh(c, out=TC[t])
            np.multiply(a[:, 2 * H : 3 * H], TC[t], out=Hs[t + 1])   # h = o * tanh(c)
        return Hs[1:], (Hs[T], Cs[T]), (A, Hs, Cs, TC, Wh)

    def backward(self, dHs, cache, p, g):
        A, Hs, Cs, TC, Wh = cache
        T, B, H = dHs.shape
        WhT = transposed(Wh)                     # from the forward's (padded) Wh; see above
        I, F, O, Gc = A[..., :H], A[..., H : 2 * H], A[..., 2 * H : 3 * H], A[..., 3 * H :]
        # Factors that do not depend on the carried gradient, for all steps at once (T,B,H):
        k_c = O * (1.0 - TC**2)            # dc_t from dh_t
        k_o = TC * O * (1.0 - O)           # d(pre-activation of o) from dh_t
        k_i = Gc * I * (1.0 - I)           # ... of i from dc_t
        k_f = Cs[:-1] * F * (1.0 - F)      # ... of f from dc_t
        k_g = I * (1.0 - Gc**2)            # ... of g from dc_t
        dA = np.empty_like(A)              # (T,B,4H) becomes dXW
        dh = np.zeros((B, H), dHs.dtype)
        dc = np.zeros((B, H), dHs.dtype)
        tmp = np.empty((B, H), dHs.dtype)
        for t in range(T - 1, -1, -1):
            da = dA[t]
            dh += dHs[t]
            np.multiply(dh, k_o[t], out=da[:, 2 * H : 3 * H])
            np.multiply(dh, k_c[t], out=tmp)
            dc += tmp
            np.multiply(dc, k_i[t], out=da[:, :H])
            np.multiply(dc, k_f[t], out=da[:, H : 2 * H])
            np.multiply(dc, k_g[t], out=da[:, 3 * H :])
            dc *= F[t]                     # carried to step t-1 through the forget gate
            np.dot(da, WhT, out=dh)
        np.matmul(Hs[:-1].reshape(-1, H).T, dA.reshape(-1, 4 * H), out=g["Wh"])
        return dA

    def scratch(self, n, dtype):
        H = self.hidden_size
        return {"a": np.empty((n, 4 * H), dtype), "ig": np.empty((n, H), dtype)}

    def step(self, x_proj, state, p, scratch):
        h, c = state
        H = self.hidden_size
        a, ig = scratch["a"], scratch["ig"]
        np.dot(h, p["Wh"], out=a)
        a += x_proj
        sigmoid_(a[:, : 3 * H])
        np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])
        c *= a[:, H : 2 * H]
        np.multiply(a[:, :H], a[:, 3 * H :], out=ig)
        c += ig
        np.tanh(c, out=h)
        h *= a[:, 2 * H : 3 * H]
        return h


class GRUCell:
    """Gated recurrent unit, gates [reset, update, new], with the reset gate applied after the
    recurrent product (as in cuDNN and PyTorch), so one matrix product serves all three gates:
    n = tanh(XW_n + r * (h @ Wh_n + bhn)),  h' = (1 - z) * n + z * h."""

    gates = 3
    state_size = 1

    def __init__(self, hidden_size: int):
        self.hidden_size = hidden_size

    def extra_params(self) -> dict:
        return {"bhn": (self.hidden_size,)}

    def forward(self, XW, state, p):
        (h0,) = state
        T, B, G = XW.shape
        H = G // 3
        Wh, bhn = p["Wh"], p["bhn"]
        A = np.empty((T, B, G), XW.dtype)       # [r, z, n] activations
        HW = np.empty((T, B, G), XW.dtype)      # h @ Wh, with bhn added to its n block
        Hs = np.empty((T + 1, B, H), XW.dtype)
        tmp = np.empty((B, H), XW.dtype)
        Hs[0] = h0
        for t in range(T):
            a, hw = A[t], HW[t]
            np.dot(Hs[t], Wh, out=hw)
            np.add(XW[t, :, : 2 * H], hw[:, : 2 * H], out=a[:, : 2 * H])
            sigmoid_(a[:, : 2 * H])
            hw[:, 2 * H :] += bhn
            n = a[:, 2 * H :]
            np.multiply(a[:, :H], hw[:, 2 * H :], out=n)
            n += XW[t, :, 2 * H :]
            np.tanh(n, out=n)
            np.subtract(Hs[t], n, out=tmp)
            tmp *= a[:, H : 2 * H]
            np.add(n, tmp, out=Hs[t + 1])          # h' = n + z * (h - n)
        return Hs[1:], (Hs[T],), (A, HW, Hs)

    def backward(self, dHs, cache, p, g):
        A, HW, Hs = cache
        T, B, H = dHs.shape
        WhT = transposed(p["Wh"])                # see the module docstring
        R, Z, N = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]
        HN = HW[..., 2 * H :]
        k_n = (1.0 - Z) * (1.0 - N**2)         # d(pre-activation of n) from dh'
        k_z = (Hs[:-1] - N) * Z * (1.0 - Z)    # d(pre-activation of z) from dh'
        k_r = HN * R * (1.0 - R)               # d(pre-activation of r) from d(pre-act of n)
        dXW = np.empty_like(A)                 # [dr, dz, dn] for the input projection
        dHW = np.empty_like(A)                 # [dr, dz, dn * r] for the recurrent product
        dh = np.zeros((B, H), dHs.dtype)
        direct = np.empty((B, H), dHs.dtype)
        for t in range(T - 1, -1, -1):
            dx, dhw = dXW[t], dHW[t]
            dh += dHs[t]
            np.multiply(dh, k_n[t], out=dx[:, 2 * H :])
            np.multiply(dh, k_z[t], out=dhw[:, H : 2 * H])
            np.multiply(dx[:, 2 * H :], k_r[t], out=dhw[:, :H])
            np.multiply(dx[:, 2 * H :], R[t], out=dhw[:, 2 * H :])
            np.multiply(dh, Z[t], out=direct)      # h' = ... + z * h
            np.dot(dhw, WhT, out=dh)
            dh += direct
        dXW[..., : 2 * H] = dHW[..., : 2 * H]
        np.matmul(Hs[:-1].reshape(-1, H).T, dHW.reshape(-1, 3 * H), out=g["Wh"])
        np.sum(dHW[..., 2 * H :], axis=(0, 1), out=g["bhn"])
        return dXW

    def scratch(self, n, dtype):
        H = self.hidden_size
        return {"a": np.empty((n, 3 * H), dtype), "hw": np.empty((n, 3 * H), dtype),
                "tmp": np.empty((n, H), dtype)}

    def step(self, x_proj, state, p, scratch):
        (h,) = state
        H = self.hidden_size
        a, hw, tmp = scratch["a"], scratch["hw"], scratch["tmp"]
        np.dot(h, p["Wh"], out=hw)
        np.add(x_proj[..., : 2 * H], hw[:, : 2 * H], out=a[:, : 2 * H])
        sigmoid_(a[:, : 2 * H])
        hw[:, 2 * H :] += p["bhn"]
        n = a[:, 2 * H :]
        np.multiply(a[:, :H], hw[:, 2 * H :], out=n)
        n += x_proj[..., 2 * H :]
        np.tanh(n, out=n)
        np.subtract(h, n, out=tmp)
        tmp *= a[:, H : 2 * H]
        np.add(n, tmp, out=h)
        return h


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}

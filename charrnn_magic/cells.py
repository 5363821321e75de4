"""Recurrent cells: the vanilla tanh RNN, the LSTM and the GRU, forward and backward over a window.

Each cell sees its input already projected: ``XW[t] = x_t @ Wx + b`` for every step at once (an
embedding lookup for the first layer, one matrix product for the others; see ``network.py``).
What is left is the recurrence, the only part that has to be a Python loop over time. Each loop
body is a handful of NumPy calls writing into preallocated arrays (``out=``); every factor of the
backward pass that does not depend on the carried gradient is computed for all steps at once,
before the loop.

Shapes: T steps, B sequences, H hidden units, G gates (RNN 1, GRU 3, LSTM 4).
``XW`` is (T, B, G·H); ``Wh`` is (H, G·H); a state is a tuple of (B, H) arrays.
Backpropagation is truncated at the window: no gradient flows into the initial state.
Every array a window needs comes from ``ws`` (a ``workspace.Workspace``) under a name starting with
``name``, so the next window of the same shape reuses it instead of faulting fresh memory in; the
returned state is a copy, so that it outlives the next window.
Inside the loops ``np.dot`` is used rather than ``np.matmul``: its dispatch is cheaper for these
small products. The exception is the LSTM's forward product from a copy of ``Wh`` with padded rows
(``padded_rows``), which only ``np.matmul`` passes to BLAS uncopied. The backward loops multiply
by a C-contiguous copy of ``Wh.T`` (``transposed``) rather than the transposed view, which BLAS
multiplies faster, for a copy made once per window. Big cells (``transposed_steps``) compute both
step products as their transposes instead, which OpenBLAS runs faster at these shapes. The
measurements behind each choice are in benchmarks/README.md.
"""
from __future__ import annotations

import numpy as np

from .workspace import FRESH, Workspace


def padded(W: np.ndarray, ws: Workspace = FRESH, name: str = "padded") -> np.ndarray:
    """A copy of ``W`` as a view into a buffer whose rows are 16 elements longer.

    Reading down the columns of an array whose rows are a multiple of 4 KiB long (1024 float32)
    puts every read into the same cache sets; the padding breaks that.
    """
    H, G = W.shape
    out = ws.empty(name, (H, G + 16), W.dtype)
    out[:, :G] = W
    return out[:, :G]


def transposed(W: np.ndarray, ws: Workspace = FRESH, name: str = "WhT") -> np.ndarray:
    """A C-contiguous copy of ``W.T``, made from a padded copy: copying down the columns of rows
    4 KiB long is slow for the same cache-set reason (see ``padded``). A ``W`` whose rows are
    padded already is used as it is."""
    already_padded = W.strides[0] != W.shape[1] * W.itemsize
    if not (already_padded or W.nbytes < 65536):    # small enough to stay in cache either way
        W = padded(W, ws, name + ".padded")
    out = ws.empty(name, W.shape[::-1], W.dtype)
    out[...] = W.T
    return out


def padded_rows(W: np.ndarray, ws: Workspace = FRESH, name: str = "Wh.padded") -> np.ndarray:
    """``W`` for the step products ``h @ W`` of a window: a copy with padded rows (``padded``)
    when its rows are a multiple of 4 KiB (an LSTM with H = 256), which BLAS reads faster, else
    ``W`` itself. Multiply with ``np.matmul``, which passes the padded rows to BLAS as they are
    (``np.dot`` would copy them contiguous again)."""
    return padded(W, ws, name) if (W.shape[1] * W.itemsize) % 4096 == 0 else W


#: Step products of at least this many multiply-adds a row (H x G) run transposed.
TRANSPOSED_FROM = 256 * 768


def transposed_steps(H: int, G: int) -> bool:
    """Whether a window's step products ``h @ Wh`` and ``da @ Wh.T`` run as their transposes
    ``Wh.T @ h.T`` and ``Wh @ da.T``, (G, B) and (H, B) results read back through a transposed
    view. The same products, with OpenBLAS's small dimension (the batch) where its kernels want
    it; that pays for big cells only, so small cells keep ``h @ Wh`` (the timings are in
    benchmarks/README.md)."""
    return H * G >= TRANSPOSED_FROM


def one_minus_(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = 1 - x."""
    return np.subtract(1.0, x, out=out)


def one_minus_square_(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = 1 - x²."""
    np.square(x, out=out)
    return np.subtract(1.0, out, out=out)


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

    def forward(self, XW, state, p, ws: Workspace = FRESH, name: str = ""):
        (h0,) = state
        T, B, H = XW.shape
        Wh = p["Wh"]
        Hs = ws.empty(name + "Hs", (T + 1, B, H), XW.dtype)  # Hs[0] initial state, Hs[t+1] output t
        Hs[0] = h0
        for t in range(T):
            h = Hs[t + 1]
            np.dot(Hs[t], Wh, out=h)
            h += XW[t]
            np.tanh(h, out=h)
        return Hs[1:], (Hs[T].copy(),), Hs

    def backward(self, dHs, cache, p, g, ws: Workspace = FRESH, name: str = ""):
        """dHs (T,B,H): gradient of the loss w.r.t. each output. Returns dXW (T,B,H)."""
        Hs = cache
        T, B, H = dHs.shape
        WhT = transposed(p["Wh"], ws, name + "WhT")      # see the module docstring
        dA = one_minus_square_(Hs[1:], ws.empty(name + "dA", (T, B, H), dHs.dtype))  # tanh'; -> dXW
        dh = ws.zeros(name + "dh", (B, H), dHs.dtype)   # gradient carried back from step t+1
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

    def forward(self, XW, state, p, ws: Workspace = FRESH, name: str = ""):
        h0, c0 = state
        T, B, G = XW.shape
        H = G // 4
        Wh = padded_rows(p["Wh"], ws, name + "Wh.padded")
        flip = transposed_steps(H, G)
        if flip:
            WhT = transposed(Wh, ws, name + "WhT")                # (G, H)
            aT = ws.empty(name + "aT", (G, B), XW.dtype)
        A = ws.empty(name + "A", (T, B, G), XW.dtype)        # gate activations [i, f, o, g]
        Hs = ws.empty(name + "Hs", (T + 1, B, H), XW.dtype)
        Cs = ws.empty(name + "Cs", (T + 1, B, H), XW.dtype)
        TC = ws.empty(name + "TC", (T, B, H), XW.dtype)       # tanh(c_t)
        ig = ws.empty(name + "ig", (B, H), XW.dtype)
        Hs[0], Cs[0] = h0, c0
        for t in range(T):
            a = A[t]
            if flip:
                np.matmul(WhT, Hs[t].T, out=aT)
                np.add(aT.T, XW[t], out=a)
            else:
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
        return Hs[1:], (Hs[T].copy(), Cs[T].copy()), (A, Hs, Cs, TC, Wh)

    def backward(self, dHs, cache, p, g, ws: Workspace = FRESH, name: str = ""):
        A, Hs, Cs, TC, Wh = cache
        T, B, H = dHs.shape
        dtype = dHs.dtype
        flip = transposed_steps(H, 4 * H)
        if not flip:
            WhT = transposed(Wh, ws, name + "WhT")  # from the forward's (padded) Wh; see above
        I, F, O, Gc = A[..., :H], A[..., H : 2 * H], A[..., 2 * H : 3 * H], A[..., 3 * H :]
        # Factors that do not depend on the carried gradient, for all steps at once (T,B,H):
        k = {f: ws.empty(name + "k_" + f, (T, B, H), dtype) for f in "coifg"}
        s = ws.empty(name + "k.tmp", (T, B, H), dtype)
        k_c = one_minus_square_(TC, k["c"])                  # dc_t from dh_t: O * (1 - TC²)
        k_c *= O
        k_o = np.multiply(TC, O, out=k["o"])                 # d(pre-act. of o) from dh_t:
        k_o *= one_minus_(O, s)                              # TC * O * (1 - O)
        k_i = np.multiply(Gc, I, out=k["i"])                 # ... of i from dc_t: Gc * I * (1 - I)
        k_i *= one_minus_(I, s)
        k_f = np.multiply(Cs[:-1], F, out=k["f"])            # ... of f: C_{t-1} * F * (1 - F)
        k_f *= one_minus_(F, s)
        k_g = one_minus_square_(Gc, k["g"])                  # ... of g: I * (1 - Gc²)
        k_g *= I
        dA = ws.empty(name + "dA", A.shape, dtype)           # (T,B,4H) becomes dXW
        dh = ws.zeros(name + "dh", (B, H), dtype)
        if flip:
            dhT = ws.zeros(name + "dhT", (H, B), dtype)   # the carried gradient, transposed
        dc = ws.zeros(name + "dc", (B, H), dtype)
        tmp = ws.empty(name + "tmp", (B, H), dtype)
        for t in range(T - 1, -1, -1):
            da = dA[t]
            if flip:
                np.add(dhT.T, dHs[t], out=dh)
            else:
                dh += dHs[t]
            np.multiply(dh, k_o[t], out=da[:, 2 * H : 3 * H])
            np.multiply(dh, k_c[t], out=tmp)
            dc += tmp
            np.multiply(dc, k_i[t], out=da[:, :H])
            np.multiply(dc, k_f[t], out=da[:, H : 2 * H])
            np.multiply(dc, k_g[t], out=da[:, 3 * H :])
            dc *= F[t]                     # carried to step t-1 through the forget gate
            if flip:
                np.matmul(Wh, da.T, out=dhT)
            else:
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

    def forward(self, XW, state, p, ws: Workspace = FRESH, name: str = ""):
        (h0,) = state
        T, B, G = XW.shape
        H = G // 3
        Wh, bhn = p["Wh"], p["bhn"]
        flip = transposed_steps(H, G)
        A = ws.empty(name + "A", (T, B, G), XW.dtype)       # [r, z, n] activations
        # h @ Wh, with bhn added to its n block; stored as (T, G, B) when the products are flipped
        if flip:
            WhT = transposed(Wh, ws, name + "WhT")
            HW = ws.empty(name + "HWT", (T, G, B), XW.dtype).transpose(0, 2, 1)
        else:
            HW = ws.empty(name + "HW", (T, B, G), XW.dtype)
        Hs = ws.empty(name + "Hs", (T + 1, B, H), XW.dtype)
        tmp = ws.empty(name + "tmp", (B, H), XW.dtype)
        Hs[0] = h0
        for t in range(T):
            a, hw = A[t], HW[t]
            if flip:
                np.matmul(WhT, Hs[t].T, out=hw.T)
            else:
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
        return Hs[1:], (Hs[T].copy(),), (A, HW, Hs)

    def backward(self, dHs, cache, p, g, ws: Workspace = FRESH, name: str = ""):
        A, HW, Hs = cache
        T, B, H = dHs.shape
        dtype = dHs.dtype
        flip = transposed_steps(H, 3 * H)
        if not flip:
            WhT = transposed(p["Wh"], ws, name + "WhT")  # see the module docstring
        R, Z, N = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]
        HN = HW[..., 2 * H :]
        k = {f: ws.empty(name + "k_" + f, (T, B, H), dtype) for f in "nzr"}
        s = ws.empty(name + "k.tmp", (T, B, H), dtype)
        k_n = one_minus_(Z, k["n"])                   # d(pre-activation of n) from dh':
        k_n *= one_minus_square_(N, s)                # (1 - Z) * (1 - N²)
        k_z = np.subtract(Hs[:-1], N, out=k["z"])     # d(pre-activation of z) from dh':
        k_z *= Z                                      # (h - N) * Z * (1 - Z)
        k_z *= one_minus_(Z, s)
        k_r = np.multiply(HN, R, out=k["r"])          # d(pre-act. of r) from d(pre-act. of n):
        k_r *= one_minus_(R, s)                       # HN * R * (1 - R)
        dXW = ws.empty(name + "dXW", A.shape, dtype)  # [dr, dz, dn] for the input projection
        dHW = ws.empty(name + "dHW", A.shape, dtype)  # [dr, dz, dn * r] for the recurrent product
        dh = ws.zeros(name + "dh", (B, H), dtype)
        if flip:
            dhT = ws.empty(name + "dhT", (H, B), dtype)
        direct = ws.empty(name + "direct", (B, H), dtype)
        for t in range(T - 1, -1, -1):
            dx, dhw = dXW[t], dHW[t]
            dh += dHs[t]
            np.multiply(dh, k_n[t], out=dx[:, 2 * H :])
            np.multiply(dh, k_z[t], out=dhw[:, H : 2 * H])
            np.multiply(dx[:, 2 * H :], k_r[t], out=dhw[:, :H])
            np.multiply(dx[:, 2 * H :], R[t], out=dhw[:, 2 * H :])
            np.multiply(dh, Z[t], out=direct)      # h' = ... + z * h
            if flip:
                np.matmul(p["Wh"], dhw.T, out=dhT)
                np.add(dhT.T, direct, out=dh)
            else:
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

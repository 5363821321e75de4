"""Finite-difference checks of the hand-written backward pass, in float64."""
import numpy as np
import pytest

from charrnn_magic.network import Network

V, H, T, B = 7, 5, 6, 3


def _numeric_vs_analytic(net, X, Y, mask, dropout_seed=None):
    rng0 = np.random.default_rng(0)
    state = [tuple(rng0.standard_normal((B, H)) * 0.5 for _ in range(c.state_size))
             for c in net.cells]

    def loss():
        rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
        value, _ = net.loss(X, Y, mask, state, rng=rng, grads=False)
        return value / B  # the gradients are those of the batch-averaged loss

    rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
    net.loss(X, Y, mask, state, rng=rng)
    analytic = net.grad.copy()
    numeric = np.empty_like(analytic)
    eps = 1e-6
    for i in range(net.size):
        old = net.flat[i]
        net.flat[i] = old + eps
        up = loss()
        net.flat[i] = old - eps
        down = loss()
        net.flat[i] = old
        numeric[i] = (up - down) / (2 * eps)
    return analytic, numeric


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True], ids=["stream", "lines"])
@pytest.mark.parametrize("flipped", [False, True], ids=["h@Wh", "Wh.T@h.T"])
def test_gradients_match_finite_differences(cell, masked, flipped, monkeypatch):
    if flipped:      # the step products of big cells, here at any size (cells.transposed_steps)
        from charrnn_magic import cells

        monkeypatch.setattr(cells, "TRANSPOSED_FROM", 0)
    net = Network(cell, V, H, layers=2, dtype="float64")
    net.init_weights(np.random.default_rng(1))
    # Away from tiny weights.
    net.flat[:] += np.random.default_rng(2).standard_normal(net.size) * 0.3
    data = np.random.default_rng(3)
    X, Y = data.integers(0, V, (T, B)), data.integers(0, V, (T, B))
    mask = None
    if masked:
        lengths = np.array([T, 3, 1])
        mask = (np.arange(T)[:, None] < lengths[None, :]).astype(float)
    analytic, numeric = _numeric_vs_analytic(net, X, Y, mask)
    assert np.abs(analytic).max() > 1e-3
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_with_dropout_between_layers(cell):
    net = Network(cell, V, H, layers=2, dropout=0.3, dtype="float64")
    net.init_weights(np.random.default_rng(1))
    net.flat[:] += np.random.default_rng(2).standard_normal(net.size) * 0.3
    data = np.random.default_rng(3)
    X, Y = data.integers(0, V, (T, B)), data.integers(0, V, (T, B))
    analytic, numeric = _numeric_vs_analytic(net, X, Y, None, dropout_seed=7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_padding_never_touches_loss_or_gradients(cell):
    net = Network(cell, V, H, layers=2, dtype="float64")
    net.init_weights(np.random.default_rng(1))
    data = np.random.default_rng(3)
    X, Y = data.integers(0, V, (T, B)), data.integers(0, V, (T, B))
    lengths = np.array([T, 2, 4])
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(float)
    state = net.initial_state(B)
    loss_a, _ = net.loss(X, Y, mask, state)
    grad_a = net.grad.copy()
    pad = mask == 0
    X2, Y2 = X.copy(), Y.copy()
    X2[pad] = (X2[pad] + 3) % V   # change what sits in the padding
    Y2[pad] = (Y2[pad] + 1) % V
    loss_b, _ = net.loss(X2, Y2, mask, state)
    assert loss_a == pytest.approx(loss_b, rel=1e-12)
    np.testing.assert_allclose(net.grad, grad_a, rtol=1e-10, atol=1e-14)


def test_lstm_with_4_kib_rows_gives_the_same_gradients_through_padded_weights(monkeypatch):
    """With H = 128 in float64 each row of Wh is 4 KiB, so the forward pass multiplies by a padded
    copy of Wh (``cells.padded_rows``); loss and gradients must be those of the plain weights, and
    the gradient must match a finite difference along a random direction."""
    from charrnn_magic import cells

    net = Network("lstm", V, 128, layers=2, dtype="float64")
    net.init_weights(np.random.default_rng(1))
    assert cells.padded_rows(net.params["l0.Wh"]) is not net.params["l0.Wh"]
    data = np.random.default_rng(3)
    X, Y = data.integers(0, V, (T, B)), data.integers(0, V, (T, B))
    state = [tuple(data.standard_normal((B, 128)) * 0.5 for _ in range(2)) for _ in range(2)]

    loss_padded, _ = net.loss(X, Y, None, state)
    grad_padded = net.grad.copy()
    direction = data.standard_normal(net.size)
    eps, w = 1e-6, net.flat.copy()
    net.flat[:] = w + eps * direction
    up, _ = net.loss(X, Y, None, state, grads=False)
    net.flat[:] = w - eps * direction
    down, _ = net.loss(X, Y, None, state, grads=False)
    net.flat[:] = w
    assert (up - down) / (2 * eps) / B == pytest.approx(grad_padded @ direction, rel=1e-6)

    monkeypatch.setattr(cells, "padded_rows", lambda W, *workspace: W)
    loss_plain, _ = net.loss(X, Y, None, state)
    assert loss_padded == pytest.approx(loss_plain, rel=1e-12)
    np.testing.assert_allclose(grad_padded, net.grad, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_big_cells_flip_their_step_products_and_keep_their_gradients(cell, monkeypatch):
    """From H = 256 the step products run transposed (``cells.transposed_steps``): the same loss
    and gradients as ``h @ Wh``, to rounding."""
    from charrnn_magic import cells

    net = Network(cell, V, 256, layers=2, dtype="float64")
    net.init_weights(np.random.default_rng(1))
    assert cells.transposed_steps(256, net.cells[0].gates * 256)
    data = np.random.default_rng(3)
    X, Y = data.integers(0, V, (T, B)), data.integers(0, V, (T, B))
    state = [tuple(data.standard_normal((B, 256)) * 0.5 for _ in range(c.state_size))
             for c in net.cells]
    loss_flipped, _ = net.loss(X, Y, None, state)
    grad_flipped = net.grad.copy()
    monkeypatch.setattr(cells, "TRANSPOSED_FROM", np.inf)
    loss_plain, _ = net.loss(X, Y, None, state)
    assert loss_flipped == pytest.approx(loss_plain, rel=1e-12)
    np.testing.assert_allclose(grad_flipped, net.grad, rtol=1e-9, atol=1e-13)

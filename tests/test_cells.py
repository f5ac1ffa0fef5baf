"""The cells agree with torch.nn's cells and with small examples worked by hand."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import rnnlab
from module_pairs import MODES, WITH_CELL_STATE

TORCH_CELLS = {mode.lower(): getattr(torch.nn, f"{mode}Cell") for mode in MODES}
OUR_CELLS = {mode.lower(): getattr(rnnlab, f"{mode.lower()}_cell") for mode in MODES}


def has_cell_state(kind):
    return kind.upper() in WITH_CELL_STATE


def call(kind, x, h, c, weights):
    """Call one of our cells with the state it expects."""
    state = (h, c) if has_cell_state(kind) else h
    return OUR_CELLS[kind](x, state, *weights)


def draw_case(kind, batch, inputs, hidden, bias, seed):
    """A torch.nn cell in float64 with random weights, and random inputs for it."""
    torch.manual_seed(seed)
    cell = TORCH_CELLS[kind](inputs, hidden, bias=bias).double()
    x = torch.randn(batch, inputs, dtype=torch.float64)
    h = torch.randn(batch, hidden, dtype=torch.float64)
    c = torch.randn(batch, hidden, dtype=torch.float64)
    weights = [cell.weight_ih, cell.weight_hh] + ([cell.bias_ih, cell.bias_hh] if bias else [])
    return cell, x, h, c, [w.detach() for w in weights]


cases = st.tuples(st.sampled_from(sorted(TORCH_CELLS)), st.integers(1, 4), st.integers(1, 5),
                  st.integers(0, 6), st.booleans(), st.integers(0, 2**16), st.booleans())


@settings(max_examples=80, deadline=None)
@given(cases)
def test_cells_match_torch_nn_cells_for_random_weights_numpy_and_torch(case):
    """Any sizes, hidden size 0 included, batched or unbatched (1-D x and h) as torch.nn's cells."""
    kind, batch, inputs, hidden, bias, seed, unbatched = case
    cell, x, h, c, weights = draw_case(kind, batch, inputs, hidden, bias, seed)
    if unbatched:
        x, h, c = x[0], h[0], c[0]
    with torch.no_grad():
        expected = cell(x, (h, c)) if has_cell_state(kind) else cell(x, h)
    expected = expected if has_cell_state(kind) else (expected,)

    got_torch = call(kind, x, h, c, weights)
    got_numpy = call(kind, x.numpy(), h.numpy(), c.numpy(), [w.numpy() for w in weights])
    got_torch = got_torch if has_cell_state(kind) else (got_torch,)
    got_numpy = got_numpy if has_cell_state(kind) else (got_numpy,)
    for want, from_torch, from_numpy in zip(expected, got_torch, got_numpy):
        assert from_torch.shape == from_numpy.shape == want.shape
        assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float64
        assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float64
        np.testing.assert_allclose(from_torch.numpy(), want.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(from_numpy, want.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", sorted(TORCH_CELLS))
def test_cells_keep_float32_and_agree_with_torch_nn(kind):
    cell, x, h, c, weights = draw_case(kind, 3, 4, 5, True, 1)
    cell = cell.float()
    x32, h32, c32 = x.float(), h.float(), c.float()
    w32 = [w.float().numpy() for w in weights]
    got = call(kind, x32.numpy(), h32.numpy(), c32.numpy(), w32)
    got = got[0] if has_cell_state(kind) else got
    assert got.dtype == np.float32
    with torch.no_grad():
        want = cell(x32, (h32, c32))[0] if has_cell_state(kind) else cell(x32, h32)
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(TORCH_CELLS))
def test_cell_gradients_match_torch_nn_cells(kind):
    cell, x, h, c, weights = draw_case(kind, 2, 3, 4, True, 7)
    leaves = [t.clone().requires_grad_() for t in [x, h, c, *weights]]
    x_, h_, c_, *w_ = leaves
    ours = call(kind, x_, h_, c_, w_)
    ours = ours[0].sum() + (ours[1] ** 2).sum() if has_cell_state(kind) else (ours ** 3).sum()
    ours_grads = torch.autograd.grad(ours, leaves, allow_unused=True)

    x_ref, h_ref, c_ref = (t.clone().requires_grad_() for t in (x, h, c))
    theirs = cell(x_ref, (h_ref, c_ref)) if has_cell_state(kind) else cell(x_ref, h_ref)
    theirs = theirs[0].sum() + (theirs[1] ** 2).sum() if has_cell_state(kind) else (theirs ** 3).sum()
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    their_grads = torch.autograd.grad(theirs, [x_ref, h_ref, c_ref, *params], allow_unused=True)
    for ours_g, their_g in zip(ours_grads, their_grads):
        if their_g is None:              # c does not enter the RNN and GRU cells
            assert ours_g is None
        else:
            torch.testing.assert_close(ours_g, their_g, rtol=0, atol=1e-10)


def test_rnn_cell_worked_by_hand():
    # pre = W_ih x + b_ih + W_hh h + b_hh
    #     = [0.1*1 + 0.2*2, 0.3*1 + 0.4*2] + [0, 0.1] + [0.5, -0.5] + [0, -0.1] = [1.0, 0.6]
    # h_t = tanh([1.0, 0.6]) = [0.7615941559557649, 0.5370495669980353]
    x = np.array([[1.0, 2.0]])
    h = np.array([[0.5, -0.5]])
    got = rnnlab.rnn_cell(x, h, np.array([[0.1, 0.2], [0.3, 0.4]]), np.eye(2),
                          np.array([0.0, 0.1]), np.array([0.0, -0.1]))
    np.testing.assert_allclose(got, [[0.7615941559557649, 0.5370495669980353]], rtol=0, atol=1e-15)


def test_gru_cell_worked_by_hand_and_differs_from_the_cho_variant():
    # All r and z weights and biases are 0, so r = z = σ(0) = 0.5.
    # W_in = W_hn = I, b_in = 0, b_hn = [1, 1], x = [0.5, -0.5], h = [1, 0]:
    # W_hn h + b_hn = [2, 1];  n = tanh(x + r ⊙ [2, 1]) = tanh([1.5, 0]) = [0.9051482536448664, 0]
    # h_t = (1 − z) n + z h = 0.5 [0.9051…, 0] + 0.5 [1, 0] = [0.9525741268224333, 0]
    # (Cho et al. would give tanh(x + W_hn (r ⊙ h) + b_hn) = tanh([2.0, 0.5]) instead.)
    w_ih = np.zeros((6, 2))
    w_ih[4:] = np.eye(2)
    w_hh = np.zeros((6, 2))
    w_hh[4:] = np.eye(2)
    b_hh = np.array([0, 0, 0, 0, 1.0, 1.0])
    got = rnnlab.gru_cell(np.array([[0.5, -0.5]]), np.array([[1.0, 0.0]]), w_ih, w_hh, np.zeros(6), b_hh)
    np.testing.assert_allclose(got, [[0.9525741268224333, 0.0]], rtol=0, atol=1e-15)


def test_lstm_cell_worked_by_hand():
    # Only W_ig = I is non-zero, so i = f = o = σ(0) = 0.5 and g = tanh(x) = tanh([1, -1]).
    # c_t = f c + i g = 0.5 [2, 0] + 0.5 [0.7615941559557649, -0.7615941559557649]
    #     = [1.3807970779778824, -0.3807970779778824]
    # h_t = o tanh(c_t) = [0.4405648141721129, -0.18169974219452625]
    w_ih = np.zeros((8, 2))
    w_ih[4:6] = np.eye(2)
    h_t, c_t = rnnlab.lstm_cell(np.array([[1.0, -1.0]]), (np.zeros((1, 2)), np.array([[2.0, 0.0]])),
                                w_ih, np.zeros((8, 2)))
    np.testing.assert_allclose(c_t, [[1.3807970779778824, -0.3807970779778824]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(h_t, [[0.4405648141721129, -0.18169974219452625]], rtol=0, atol=1e-15)


def test_rnn_cell_relu_matches_torch_nn():
    torch.manual_seed(3)
    cell = torch.nn.RNNCell(3, 4, nonlinearity="relu").double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    got = rnnlab.rnn_cell(x, h, cell.weight_ih.detach(), cell.weight_hh.detach(), cell.bias_ih.detach(),
                          cell.bias_hh.detach(), nonlinearity="relu")
    torch.testing.assert_close(got, cell(x, h).detach(), rtol=0, atol=1e-12)


def test_numpy_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    w_ih, w_hh = rng.normal(size=(12, 3)), rng.normal(size=(12, 4))
    copies = [a.copy() for a in (x, h, w_ih, w_hh)]
    rnnlab.gru_cell(x, h, w_ih, w_hh)
    for before, after in zip(copies, (x, h, w_ih, w_hh)):
        np.testing.assert_array_equal(before, after)

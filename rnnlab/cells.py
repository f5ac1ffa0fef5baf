"""One time step of the vanilla RNN, the GRU and the LSTM, in torch.nn's notation.

Each cell is split in two:

* a *step* function (``rnn_step``, ``gru_step``, ``lstm_step``) holds the equations of
  DESIGN.md once. It receives the affine parts ``x W_ih^T + b_ih`` and ``h W_hh^T + b_hh``
  (shape ``(B, G*H)``, gates stacked in torch.nn's order; summed for the RNN and the LSTM,
  apart for the GRU) and returns the new state together with the gate values, which the
  hand-written BPTT of :mod:`rnnlab.recurrence` keeps for its backward pass;
* a public *cell* function (``rnn_cell``, ``gru_cell``, ``lstm_cell``) checks its
  arguments, computes the two projections and calls the step.

The cells accept numpy arrays or torch tensors and return the kind they were given: numpy
inputs are viewed as torch tensors (no copy), run through the same equations, and turned
back, so there is one implementation of each equation for both libraries.
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_array, describe

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


# --- the equations -----------------------------------------------------------------


def rnn_step(pre, nonlinearity="tanh"):
    """Elman RNN: ``h_t = tanh(pre)`` with ``pre = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` (or ReLU)."""
    return NONLINEARITIES[nonlinearity](pre)


def gru_step(gi, gh, h):
    """GRU in the PyTorch/cuDNN form: the reset gate multiplies ``W_hn h + b_hn``.

    Takes the two projections apart, ``gi = W_i x + b_i`` and ``gh = W_h h + b_h`` (B, 3H),
    because r_t multiplies only the hidden part of the candidate. Returns
    ``(h_t, rz, n_t)`` where ``rz`` holds r_t and z_t side by side (B, 2H); the backward
    pass needs the gates.
    """
    hidden = h.shape[-1]
    rz = torch.sigmoid(gi[..., :2 * hidden] + gh[..., :2 * hidden])  # r_t, z_t = σ(W_i· x + b_i· + W_h· h + b_h·)
    r, z = rz[..., :hidden], rz[..., hidden:]
    n = torch.tanh(torch.addcmul(gi[..., 2 * hidden:], r, gh[..., 2 * hidden:]))  # n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h_new = torch.lerp(n, h, z)                                      # h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
    return h_new, rz, n


def lstm_step(pre, c):
    """LSTM with gates stacked i, f, g, o as in torch.nn.

    ``pre = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` (B, 4H) holds the four pre-activations.
    Returns ``(h_t, c_t, gates)`` where ``gates`` holds i_t, f_t, g_t, o_t side by side
    (B, 4H); the backward pass needs them.
    """
    hidden = c.shape[-1]
    gates = torch.cat([torch.sigmoid(pre[..., :2 * hidden]),          # i_t = σ(·), f_t = σ(·)
                       torch.tanh(pre[..., 2 * hidden:3 * hidden]),      # g_t = tanh(·), the candidate
                       torch.sigmoid(pre[..., 3 * hidden:])], dim=-1)    # o_t = σ(·)
    i, f, g, o = gates.chunk(4, dim=-1)
    c_new = torch.addcmul(f * c, i, g)                                # c_t = f ⊙ c_{t−1} + i ⊙ g
    h_new = o * torch.tanh(c_new)                                     # h_t = o ⊙ tanh(c_t)
    return h_new, c_new, gates


def project(x, weight, bias=None):
    """``x @ weight.T + bias``: the affine map every gate starts from."""
    if bias is None:
        return x @ weight.T
    return torch.addmm(bias, x, weight.T) if x.dim() == 2 else x @ weight.T + bias


# --- the public cells --------------------------------------------------------------


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    """One step of the vanilla (Elman) RNN.

    ``h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``, as ``torch.nn.RNNCell``.

    Shapes: ``x`` (B, I), ``h`` (B, H), ``weight_ih`` (H, I), ``weight_hh`` (H, H),
    biases (H,). Numpy in, numpy out; torch in, torch out (gradients flow).
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    args, back = _prepare(1, "", x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    x, h, w_ih, w_hh, b_ih, b_hh = args
    return back(rnn_step(project(x, w_ih, b_ih) + project(h, w_hh, b_hh), nonlinearity))


def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of the GRU in torch.nn's form (gates stacked r, z, n), as ``torch.nn.GRUCell``.

    Shapes: ``x`` (B, I), ``h`` (B, H), ``weight_ih`` (3H, I), ``weight_hh`` (3H, H),
    biases (3H,). Numpy in, numpy out; torch in, torch out (gradients flow).
    """
    args, back = _prepare(3, "r, z, n", x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    x, h, w_ih, w_hh, b_ih, b_hh = args
    return back(gru_step(project(x, w_ih, b_ih), project(h, w_hh, b_hh), h)[0])


def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of the LSTM (gates stacked i, f, g, o), as ``torch.nn.LSTMCell``.

    ``state`` is the pair ``(h, c)``, both (B, H). Shapes: ``x`` (B, I), ``weight_ih``
    (4H, I), ``weight_hh`` (4H, H), biases (4H,). Returns ``(h_t, c_t)`` of the kind given.
    """
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"state must be a pair (h, c), got {describe(state)}")
    h, c = state
    args, back = _prepare(4, "i, f, g, o", x, h, weight_ih, weight_hh, bias_ih, bias_hh, c=c)
    x, h, w_ih, w_hh, b_ih, b_hh, c = args
    h_new, c_new = lstm_step(project(x, w_ih, b_ih) + project(h, w_hh, b_hh), c)[:2]
    return back(h_new), back(c_new)


# --- argument checks and the numpy/torch bridge -------------------------------------


def _prepare(gates, order, x, h, weight_ih, weight_hh, bias_ih, bias_hh, **extra_states):
    """Check a cell's arguments and view them all as torch tensors.

    Returns the tensors (in argument order, extra states last) and a function that turns
    a result back into the kind of ``x``.
    """
    check_array("x", x, 2)
    check_array("h", h, 2)
    batch, inputs = x.shape
    hidden = h.shape[1]
    if hidden == 0:
        raise ValueError("h must have at least one hidden unit (hidden size H >= 1), got H = 0")
    if h.shape[0] != batch:
        raise ValueError(f"h must have batch size B = {batch} (from x) on axis 0, got {describe(h)}")
    for name, state in extra_states.items():
        check_array(name, state, 2)
        if tuple(state.shape) != tuple(h.shape):
            raise ValueError(f"{name} must have the shape of h, {tuple(h.shape)}, got {describe(state)}")
    rows = gates * hidden
    blocks = f"{gates}·H = {rows} rows" + (f" (the {order} blocks stacked)" if order else "")
    check_array("weight_ih", weight_ih, 2)
    check_array("weight_hh", weight_hh, 2)
    _check_weight("weight_ih", weight_ih, rows, inputs, blocks, "I")
    _check_weight("weight_hh", weight_hh, rows, hidden, blocks, "H")
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None:
            check_array(name, bias, 1)
            if bias.shape[0] != rows:
                raise ValueError(f"{name} must have {blocks}, got {describe(bias)}")

    values = [x, h, weight_ih, weight_hh, bias_ih, bias_hh, *extra_states.values()]
    names = ["x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh", *extra_states]
    kind = type(x) if isinstance(x, np.ndarray) else torch.Tensor
    for name, value in zip(names, values):
        if value is None:
            continue
        if not isinstance(value, kind):
            raise TypeError(
                f"{name} must be a {'numpy array' if kind is np.ndarray else 'torch tensor'} like x, "
                f"got {describe(value)}"
            )
        if value.dtype != x.dtype:
            raise TypeError(f"{name} must have the dtype of x, {x.dtype}, got {describe(value)}")

    if kind is np.ndarray:
        tensors = [None if v is None else torch.from_numpy(np.ascontiguousarray(v)) for v in values]
        return tensors, lambda result: result.numpy()
    return values, lambda result: result


def _check_weight(name, weight, rows, cols, blocks, cols_name):
    """A weight must be (G·H, cols); name the likely mistake when it is transposed."""
    if tuple(weight.shape) == (rows, cols):
        return
    if tuple(weight.shape) == (cols, rows) and rows != cols:
        raise ValueError(
            f"{name} must have shape ({rows}, {cols}) = ({blocks.split(' rows')[0]}, {cols_name}), "
            f"got {describe(weight)}: it looks transposed (torch.nn stores (G·H, {cols_name}))"
        )
    raise ValueError(f"{name} must have shape ({rows}, {cols}), that is {blocks} and {cols_name} = {cols} "
                     f"columns, got {describe(weight)}")

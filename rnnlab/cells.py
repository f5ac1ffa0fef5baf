"""One time step of the vanilla RNN, the GRU and the LSTM, in torch.nn's notation.

Each cell is split in two:

* a *step* function (``rnn_step``, ``gru_step``, ``lstm_step``) holds the equations of
  DESIGN.md (section 2, "Notation") once. It receives the affine parts ``x W_ih^T + b_ih`` and ``h W_hh^T + b_hh``
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
from .errors import DTypeError, ShapeError

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
    sig = torch.sigmoid(pre)
    gates = torch.cat([sig[..., :2 * hidden],                          # i_t = σ(·), f_t = σ(·)
                       torch.tanh(pre[..., 2 * hidden:3 * hidden]),      # g_t = tanh(·), the candidate
                       sig[..., 3 * hidden:]], dim=-1)                   # o_t = σ(·)
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
    biases (H,); or ``x`` (I,) and ``h`` (H,) unbatched. Numpy in, numpy out; torch in,
    torch out (gradients flow). Wrong shapes raise :class:`rnnlab.ShapeError`, wrong dtypes
    :class:`rnnlab.DTypeError`, naming the argument.
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    args, back = _prepare(1, "", x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    x, h, w_ih, w_hh, b_ih, b_hh = args
    return back(rnn_step(project(x, w_ih, b_ih) + project(h, w_hh, b_hh), nonlinearity))


def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of the GRU in torch.nn's form (gates stacked r, z, n), as ``torch.nn.GRUCell``.

    Shapes: ``x`` (B, I), ``h`` (B, H), ``weight_ih`` (3H, I), ``weight_hh`` (3H, H),
    biases (3H,); or ``x`` (I,) and ``h`` (H,) unbatched. Numpy in, numpy out; torch in,
    torch out (gradients flow).
    """
    args, back = _prepare(3, "r, z, n", x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    x, h, w_ih, w_hh, b_ih, b_hh = args
    return back(gru_step(project(x, w_ih, b_ih), project(h, w_hh, b_hh), h)[0])


def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of the LSTM (gates stacked i, f, g, o), as ``torch.nn.LSTMCell``.

    ``state`` is the pair ``(h, c)``, both (B, H) (or (H,) with an unbatched ``x`` (I,)).
    Shapes: ``x`` (B, I), ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), biases (4H,).
    Returns ``(h_t, c_t)`` of the kind given.
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
    """Check a cell's arguments and view them all as batched torch tensors.

    The weights fix the sizes (H from ``weight_hh``, I from ``weight_ih``), so a state or an
    input of the wrong width is blamed, not the weights. ``x`` and ``h`` may be unbatched
    (1-D), as torch.nn's cells accept. Returns the tensors (in argument order, extra states
    last; unbatched ones given a batch axis of 1) and a function that turns a result back
    into the kind and shape of ``x``.
    """
    check_array("x", x, (1, 2))
    check_array("h", h, (1, 2))
    check_array("weight_ih", weight_ih, 2)
    check_array("weight_hh", weight_hh, 2)
    rows, hidden = weight_hh.shape
    stacked = f" (the {order} blocks stacked)" if order else ""
    if rows != gates * hidden:
        looks = (": it looks transposed (torch.nn stores (G·H, H))"
                 if weight_hh.shape[1] == gates * weight_hh.shape[0] and gates > 1 else "")
        raise ShapeError(f"weight_hh must have shape ({gates}·H, H) for some hidden size H{stacked}, "
                         f"got {describe(weight_hh)}{looks}")
    if weight_ih.shape[0] != rows:
        looks = (": it looks transposed (torch.nn stores (G·H, I))"
                 if weight_ih.shape[1] == rows and rows > 0 else "")
        raise ShapeError(f"weight_ih must have {gates}·H = {rows} rows{stacked}, with H = {hidden} from "
                         f"weight_hh, got {describe(weight_ih)}{looks}")
    inputs = weight_ih.shape[1]
    if h.ndim != x.ndim:
        raise ShapeError(f"h must be {x.ndim}-D like x ({'batched (B, H)' if x.ndim == 2 else 'unbatched (H,)'}), "
                         f"got {describe(h)}")
    if x.shape[-1] != inputs:
        raise ShapeError(f"x must have input size I = {inputs} (the columns of weight_ih) on its last axis, "
                         f"got {describe(x)}")
    if h.shape[-1] != hidden:
        raise ShapeError(f"h must have hidden size H = {hidden} (the columns of weight_hh) on its last axis, "
                         f"got {describe(h)}")
    if x.ndim == 2 and h.shape[0] != x.shape[0]:
        raise ShapeError(f"h must have batch size B = {x.shape[0]} (from x) on axis 0, got {describe(h)}")
    for name, state in extra_states.items():
        check_array(name, state, h.ndim)
        if tuple(state.shape) != tuple(h.shape):
            raise ShapeError(f"{name} must have the shape of h, {tuple(h.shape)}, got {describe(state)}")
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None:
            check_array(name, bias, 1)
            if bias.shape[0] != rows:
                raise ShapeError(f"{name} must have {gates}·H = {rows} rows{stacked}, got {describe(bias)}")

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
            raise DTypeError(f"{name} must have the dtype of x, {x.dtype}, got {describe(value)}")

    if kind is np.ndarray:
        values = [None if v is None else torch.from_numpy(np.ascontiguousarray(v)) for v in values]
    unbatched = x.ndim == 1
    if unbatched:
        for k in (0, 1, *range(6, len(values))):
            values[k] = values[k].unsqueeze(0)

    def back(result):
        result = result.squeeze(0) if unbatched else result
        return result.numpy() if kind is np.ndarray else result

    return values, back

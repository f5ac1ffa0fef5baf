"""How the loss gradient reaches each hidden state: ``‖∂L/∂h_t‖`` for every time step.

The model's own forward pass hides the hidden states inside one recurrence, so here the
last layer is unrolled step by step with the equations of :mod:`rnnlab.cells` and the
module's own parameters, keeping every ``h_t`` (and ``c_t``) as a node of the autograd
graph. ``torch.autograd.grad`` with respect to those nodes gives the *total* derivative
``dL/dh_t``: the gradient through the output at step t plus everything that flows back
from later steps through ``h_{t+1}``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._checks import describe
from .cells import gru_step, lstm_step, project, rnn_step

# torch.nn names its RNN modes after the nonlinearity; rnnlab keeps that in `nonlinearity`.
_MODES = {"RNN": "RNN", "RNN_TANH": "RNN", "RNN_RELU": "RNN", "GRU": "GRU", "LSTM": "LSTM"}


def _mode_of(model) -> str:
    """'RNN', 'GRU' or 'LSTM' for an rnnlab or torch.nn recurrent module."""
    mode = getattr(model, "mode", None)
    if isinstance(model, nn.Module) and mode in _MODES:
        return _MODES[mode]
    raise TypeError("model must be an rnnlab or torch.nn RNN, GRU or LSTM module, "
                    f"got {describe(model)}")


def _unroll_direction(mode, model, x, layer, suffix, h, c):
    """Run one layer in one direction step by step; returns the lists of h_t and c_t."""
    bias = model.bias
    w_ih = getattr(model, f"weight_ih_l{layer}{suffix}")
    w_hh = getattr(model, f"weight_hh_l{layer}{suffix}")
    b_ih = getattr(model, f"bias_ih_l{layer}{suffix}") if bias else None
    b_hh = getattr(model, f"bias_hh_l{layer}{suffix}") if bias else None
    w_hr = getattr(model, f"weight_hr_l{layer}{suffix}", None)       # an LSTM with projections
    gi = project(x, w_ih, b_ih)
    steps = range(x.shape[0]) if suffix == "" else reversed(range(x.shape[0]))
    hs, cs = [None] * x.shape[0], [None] * x.shape[0]
    for t in steps:
        gh = project(h, w_hh, b_hh)
        if mode == "LSTM":
            h, c = lstm_step(gi[t] + gh, c)[:2]
            h = h if w_hr is None else project(h, w_hr)             # h_t = W_hr (o_t ⊙ tanh c_t)
        elif mode == "GRU":
            h = gru_step(gi[t], gh, h)[0]
        else:
            h = rnn_step(gi[t] + gh, getattr(model, "nonlinearity", "tanh"))
        hs[t], cs[t] = h, c
    return hs, cs


def hidden_grad_norms(model, inputs, loss_fn, hx=None, state="h"):
    """``‖∂L/∂h_t‖`` (Frobenius norm over batch and features) for every step t of the last layer.

    ``model`` is an rnnlab or torch.nn ``RNN``/``GRU``/``LSTM``; ``inputs`` is laid out as
    the model expects ((T, B, I), or (B, T, I) with ``batch_first``); ``loss_fn(output)``
    maps the model's output sequence (same layout as ``model(inputs)[0]``) to a scalar.
    ``hx`` is the optional initial state, as for the model. ``state="c"`` gives
    ``‖∂L/∂c_t‖`` for an LSTM instead. For a bidirectional model, h_t joins both
    directions. Returns a float64 numpy array of shape (T,).
    """
    mode = _mode_of(model)
    if state not in ("h", "c"):
        raise ValueError(f"state must be 'h' or 'c', got {state!r}")
    if state == "c" and mode != "LSTM":
        raise ValueError(f"state='c' needs an LSTM (only it has a cell state), got a {mode}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable mapping the output sequence to a scalar, got {describe(loss_fn)}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or not inputs.is_floating_point():
        raise ValueError(f"inputs must be a 3-D floating torch tensor laid out as the model expects, got {describe(inputs)}")
    if inputs.shape[-1] != model.input_size:
        raise ValueError(f"inputs must have input_size = {model.input_size} features on the last axis, got {describe(inputs)}")

    x = inputs.transpose(0, 1) if model.batch_first else inputs
    directions = 2 if model.bidirectional else 1
    shape = (model.num_layers * directions, x.shape[1], model.hidden_size)
    if hx is None:
        h0 = x.new_zeros(shape[:2] + (getattr(model, "proj_size", 0) or model.hidden_size,))
        c0 = x.new_zeros(shape)
    else:
        h0, c0 = hx if mode == "LSTM" else (hx, None)
    suffixes = ("", "_reverse")[:directions]
    for layer in range(model.num_layers):
        if layer > 0 and model.dropout > 0:
            x = nn.functional.dropout(x, model.dropout, model.training)
        runs = [_unroll_direction(mode, model, x, layer, suffix, h0[layer * directions + d],
                                  None if c0 is None else c0[layer * directions + d])
                for d, suffix in enumerate(suffixes)]
        x = torch.cat([torch.stack(hs) for hs, _ in runs], dim=-1)

    watched = [s for hs, cs in runs for s in (hs if state == "h" else cs)]
    output = x.transpose(0, 1) if model.batch_first else x
    loss = loss_fn(output)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {describe(loss)}")
    grads = torch.autograd.grad(loss, watched, allow_unused=True)
    steps = x.shape[0]
    squares = np.zeros(steps)
    for index, grad in enumerate(grads):
        if grad is not None:
            squares[index % steps] += float(grad.double().pow(2).sum())
    return np.sqrt(squares)

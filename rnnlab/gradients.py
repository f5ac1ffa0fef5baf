"""How the loss gradient reaches each hidden state: ``‖dL/dh_t‖`` for every time step.

The model's own forward pass hides the hidden states inside one recurrence, so here the
model runs :meth:`rnnlab.modules.RNNBase.forward_unrolled`: its own layer loop and
parameters, each step in plain autograd operations (the equations of :mod:`rnnlab.cells`),
keeping every ``h_t`` (and ``c_t``) of the last layer as a node of the autograd graph.
``torch.autograd.grad`` with respect to those nodes gives the *total* derivative
``dL/dh_t``: the gradient through the output at step t plus everything that flows back
from later steps through ``h_{t+1}`` (``∂`` is kept for partial derivatives, as in
``book/bptt.md``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._checks import describe
from .modules import RNNBase, rnnlab_twin
from .recurrence import KINDS


def hidden_grad_norms(model, inputs, loss_fn, hx=None, state="h"):
    """``‖dL/dh_t‖`` (Frobenius norm over batch and features) for every step t of the last layer.

    ``dL/dh_t`` is the total derivative: through the output at step t and through every
    later step. ``model`` is an rnnlab or torch.nn ``RNN``/``GRU``/``LSTM``; ``inputs`` is
    laid out as the model expects ((T, B, I), or (B, T, I) with ``batch_first``);
    ``loss_fn(output)`` maps the model's output sequence (same layout as
    ``model(inputs)[0]``) to a scalar. ``hx`` is the optional initial state, as for the
    model. ``state="c"`` gives ``‖dL/dc_t‖`` for an LSTM instead. For a bidirectional
    model, h_t joins both directions. Returns a float64 numpy array of shape (T,).
    """
    kind = KINDS.get(getattr(model, "mode", None)) if isinstance(model, nn.Module) else None
    if kind is None:
        raise TypeError("model must be an rnnlab or torch.nn RNN, GRU or LSTM module, "
                        f"got {describe(model)}")
    if state not in ("h", "c"):
        raise ValueError(f"state must be 'h' or 'c', got {state!r}")
    if state == "c" and not kind.cell_state:
        raise ValueError(f"state='c' needs an LSTM (only it has a cell state), got a {kind.name}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable mapping the output sequence to a scalar, got {describe(loss_fn)}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or not inputs.is_floating_point():
        raise ValueError(f"inputs must be a 3-D floating torch tensor laid out as the model expects, got {describe(inputs)}")
    if inputs.shape[-1] != model.input_size:
        raise ValueError(f"inputs must have input_size = {model.input_size} features on the last axis, got {describe(inputs)}")

    ours = model if isinstance(model, RNNBase) else rnnlab_twin(model)
    output, directions = ours.forward_unrolled(inputs, hx)
    watched = [h if state == "h" else c for steps in directions for h, c in steps]
    loss = loss_fn(output)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got {describe(loss)}")
    grads = torch.autograd.grad(loss, watched, allow_unused=True)
    steps = len(directions[0])
    squares = np.zeros(steps)
    for index, grad in enumerate(grads):
        if grad is not None:
            squares[index % steps] += float(grad.double().pow(2).sum())
    return np.sqrt(squares)

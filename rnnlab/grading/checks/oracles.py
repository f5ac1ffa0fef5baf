"""Expected values from ``torch.nn`` and autograd: the independent oracle of every check.

Each function takes the arrays of a :class:`~rnnlab.grading.checks.cases.Case` (float64 numpy)
and returns numpy float64 results. The modules are built inside ``torch.random.fork_rng``
so that checking an answer leaves the student's random state as it was.
"""

from __future__ import annotations

import numpy as np
import torch


def _tensor(array):
    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def _loaded(module_class, a, **options):
    """A float64 ``torch.nn`` module of the case's sizes holding the case's weights."""
    with torch.random.fork_rng(devices=[]):
        module = module_class(a["x"].shape[1], a["h"].shape[1], dtype=torch.float64, **options)
    suffix = "_l0" if isinstance(module, torch.nn.RNNBase) else ""
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, name + suffix).copy_(_tensor(a[name]))
    return module


def _numpy(tensor):
    return tensor.detach().numpy().astype(np.float64)


def rnn_cell(a):
    """``torch.nn.RNNCell`` (tanh): h_t, shape (B, H)."""
    return _numpy(_loaded(torch.nn.RNNCell, a)(_tensor(a["x"]), _tensor(a["h"])))


def gru_cell(a):
    """``torch.nn.GRUCell``: h_t, shape (B, H)."""
    return _numpy(_loaded(torch.nn.GRUCell, a)(_tensor(a["x"]), _tensor(a["h"])))


def lstm_cell(a):
    """``torch.nn.LSTMCell``: (h_t, c_t), each (B, H)."""
    h, c = _loaded(torch.nn.LSTMCell, a)(_tensor(a["x"]), (_tensor(a["h"]), _tensor(a["c"])))
    return _numpy(h), _numpy(c)


def rnn_forward(a):
    """``torch.nn.RNN`` from ``h``: the states h_1 … h_T, shape (T, B, H)."""
    output, _ = _loaded(torch.nn.RNN, a)(_tensor(a["xs"]), _tensor(a["h"])[None])
    return _numpy(output)


def gru_forward(a):
    """``torch.nn.GRU`` from ``h``: the states h_1 … h_T, shape (T, B, H)."""
    output, _ = _loaded(torch.nn.GRU, a)(_tensor(a["xs"]), _tensor(a["h"])[None])
    return _numpy(output)


def lstm_forward(a):
    """``torch.nn.LSTMCell`` run over time from ``(h, c)``: (hs, cs), each (T, B, H).

    ``torch.nn.LSTM`` returns only the last cell state, so the cell states of every step
    come from the cell; ``torch.nn.LSTM``'s output is checked against ``hs`` here as well.
    """
    cell = _loaded(torch.nn.LSTMCell, a)
    state = (_tensor(a["h"]), _tensor(a["c"]))
    hs, cs = [], []
    for x in _tensor(a["xs"]):
        state = cell(x, state)
        hs.append(state[0])
        cs.append(state[1])
    hs, cs = torch.stack(hs), torch.stack(cs)
    output, _ = _loaded(torch.nn.LSTM, a)(_tensor(a["xs"]), (_tensor(a["h"])[None], _tensor(a["c"])[None]))
    if not torch.allclose(output, hs, rtol=1e-12, atol=1e-12):
        raise RuntimeError("torch.nn.LSTM and torch.nn.LSTMCell disagree: the oracle cannot be trusted")
    return _numpy(hs), _numpy(cs)


def rnn_bptt(a):
    """Autograd through ``torch.nn.RNNCell`` unrolled over time, loss ``½ Σ (h_T − target)²``.

    Returns ``(grads, norms)`` like the exercise's ``rnn_bptt``: the four weight
    gradients, and ``norms[k] = ‖dL/dh‖`` (total derivative, Frobenius norm) for the state
    after step k, read from ``.grad`` of every intermediate state.
    """
    cell = _loaded(torch.nn.RNNCell, a)
    h = _tensor(a["h"])
    states = []
    for x in _tensor(a["xs"]):
        h = cell(x, h)
        h.retain_grad()
        states.append(h)
    loss = 0.5 * ((h - _tensor(a["target"])) ** 2).sum()
    loss.backward()
    grads = {name: _numpy(getattr(cell, name).grad) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    norms = np.array([float(state.grad.norm()) for state in states])
    return grads, norms


def rnn_parameter_count(input_size, hidden_size, num_layers):
    """The number of scalars in ``torch.nn.RNN(input_size, hidden_size, num_layers)``."""
    with torch.random.fork_rng(devices=[]):
        module = torch.nn.RNN(input_size, hidden_size, num_layers)
    return sum(p.numel() for p in module.parameters())

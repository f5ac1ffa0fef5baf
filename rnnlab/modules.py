"""``RNN``, ``GRU`` and ``LSTM`` modules, drop-in replacements for their torch.nn namesakes.

Same constructor arguments, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...),
shapes, default initialisation (uniform in ``[-1/sqrt(H), 1/sqrt(H)]``), inputs and
outputs as ``torch.nn.RNN/GRU/LSTM``, so a ``state_dict`` moves both ways. Each layer
computes the input projections of all time steps in one matrix product, then runs the
recurrence of :mod:`rnnlab.recurrence`, whose backward pass is BPTT written by hand.

Shapes, as in torch.nn: ``input`` (T, B, I), or (B, T, I) with ``batch_first=True``, or
(T, I) unbatched; ``h_0`` and ``c_0`` (num_layers * D, B, H) where D = 2 if
``bidirectional`` else 1; ``output`` (T, B, D * H) holding the last layer's hidden states
(forward and backward halves concatenated); ``h_n`` (num_layers * D, B, H), layer-major.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ._checks import check_positive_int, describe
from .cells import NONLINEARITIES, project
from .recurrence import run_layer


class _Recurrent(nn.Module):
    """What the three modules share; subclasses set ``mode`` and ``gates``."""

    mode = ""
    gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {describe(flag)}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a number in [0, 1], got {describe(dropout)}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout acts between stacked layers only; with num_layers=1 it does nothing "
                          f"(got dropout={dropout})", stacklevel=2)
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = float(dropout)
        factory = {"device": device, "dtype": dtype}
        rows = self.gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(rows, layer_input, **factory)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(rows, hidden_size, **factory)))
                if bias:
                    self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(rows, **factory)))
                    self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(rows, **factory)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self):
        """torch.nn's initialisation: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def _layer_parameters(self, layer, suffix):
        name = f"l{layer}{suffix}"
        get = lambda kind: getattr(self, f"{kind}_{name}") if self.bias or kind.startswith("weight") else None
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    # --- forward -----------------------------------------------------------------

    def forward(self, input, hx=None):
        """Run the whole stack over ``input``; returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``)."""
        x, batched = self._check_input(input)
        if self.batch_first and batched:
            x = x.transpose(0, 1)
        if not batched:
            x = x.unsqueeze(1)
        h0, c0 = self._initial_state(hx, x, batched)
        final_h, final_c = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
            halves = []
            for direction, suffix in enumerate(self._suffixes()):
                index = layer * self.num_directions + direction
                weight_ih, weight_hh, bias_ih, bias_hh = self._layer_parameters(layer, suffix)
                both = bias_ih if self.mode == "GRU" or bias_ih is None else bias_ih + bias_hh
                gi = project(x, weight_ih, both)
                if direction == 1:
                    gi = gi.flip(0)
                hs, cs = run_layer(self.mode, gi, h0[index], weight_hh, bias_hh,
                                   None if c0 is None else c0[index],
                                   nonlinearity=getattr(self, "nonlinearity", "tanh"))
                final_h.append(hs[-1])
                if cs is not None:
                    final_c.append(cs[-1])
                halves.append(hs.flip(0) if direction == 1 else hs)
            # the output is a new tensor (not the saved states), so it may be edited in place
            x = halves[0].clone() if len(halves) == 1 else torch.cat(halves, dim=-1)
        output, h_n = x, torch.stack(final_h)
        c_n = torch.stack(final_c) if final_c else None
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def _check_input(self, input):
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input must be a torch tensor of shape (T, B, {self.input_size}) "
                            f"(packed sequences are not supported: pad them), got {describe(input)}")
        if input.dim() not in (2, 3):
            raise ValueError(f"input must be 3-D (T, B, I) (or 2-D (T, I) unbatched), got {describe(input)}")
        if not input.is_floating_point():
            raise TypeError(f"input must have a floating dtype, got {describe(input)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input must have input_size = {self.input_size} features on its last axis, "
                             f"got {describe(input)}")
        steps = input.shape[1] if self.batch_first and input.dim() == 3 else input.shape[0]
        if steps == 0:
            raise ValueError(f"input must have at least one time step, got {describe(input)}")
        return input, input.dim() == 3

    def _initial_state(self, hx, x, batched):
        """The initial (h_0, c_0), each (num_layers * D, B, H); zeros where not given."""
        shape = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        zeros = lambda: x.new_zeros(shape)
        if hx is None:
            return zeros(), (zeros() if self.mode == "LSTM" else None)
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx must be a pair (h_0, c_0) for an LSTM, got {describe(hx)}")
            return self._check_state("h_0", hx[0], shape, x, batched), self._check_state("c_0", hx[1], shape, x, batched)
        return self._check_state("hx", hx, shape, x, batched), None

    @staticmethod
    def _check_state(name, state, shape, x, batched):
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape {shape}, got {describe(state)}")
        if not batched:
            state = state.unsqueeze(1) if state.dim() == 2 else state
        if tuple(state.shape) != shape:
            expected = shape if batched else (shape[0], shape[2])
            raise ValueError(f"{name} must have shape {expected} (num_layers * num_directions, B, H), "
                             f"got {describe(state)}")
        if state.dtype != x.dtype:
            raise TypeError(f"{name} must have the dtype of input, {x.dtype}, got {describe(state)}")
        return state


class RNN(_Recurrent):
    """Elman RNN, drop-in for ``torch.nn.RNN``: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    ``nonlinearity`` is ``'tanh'`` (default) or ``'relu'``. Parameters per layer and
    direction: ``weight_ih_l{k}`` (H, I or D*H), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}``
    and ``bias_hh_l{k}`` (H,).
    """

    mode, gates = "RNN", 1

    def __init__(self, *args, nonlinearity="tanh", **kwargs):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(*args, **kwargs)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}")


class GRU(_Recurrent):
    """GRU, drop-in for ``torch.nn.GRU``; gates stacked r, z, n in every weight (3H rows).

    ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 − z) ⊙ n + z ⊙ h``.
    """

    mode, gates = "GRU", 3


class LSTM(_Recurrent):
    """LSTM, drop-in for ``torch.nn.LSTM``; gates stacked i, f, g, o in every weight (4H rows).

    ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``. Returns ``(output, (h_n, c_n))``.
    The forget-gate bias is the sum of the slices ``[H:2H]`` of ``bias_ih`` and ``bias_hh``.
    """

    mode, gates = "LSTM", 4

"""``RNN``, ``GRU`` and ``LSTM`` modules, drop-in replacements for their torch.nn namesakes.

Same constructor arguments (``proj_size`` for the LSTM, ``nonlinearity`` for the RNN, also
as torch.nn's fourth positional argument), parameter names (``weight_ih_l0``,
``bias_hh_l1_reverse``, ``weight_hr_l0``, ...), shapes, default initialisation (uniform in
``[-1/sqrt(H), 1/sqrt(H)]``), attributes (``mode``, ``_flat_weights_names``,
``_flat_weights``, ``all_weights``, ``flatten_parameters()``), inputs and outputs as
``torch.nn.RNN/GRU/LSTM``, so a ``state_dict`` moves both ways. Each layer computes the
input projections of all time steps in one matrix product, then runs the recurrence of
:mod:`rnnlab.recurrence`, whose backward pass is BPTT written by hand.

Shapes, as in torch.nn: ``input`` (T, B, I), or (B, T, I) with ``batch_first=True``, or
(T, I) unbatched, or a ``torch.nn.utils.rnn.PackedSequence``; ``h_0`` (num_layers * D, B,
H_out) and, for the LSTM, ``c_0`` (num_layers * D, B, H), where D = 2 if ``bidirectional``
else 1 and H_out = ``proj_size`` if it is not 0 else H; ``output`` (T, B, D * H_out) holding
the last layer's hidden states (forward and backward halves concatenated), packed if the
input was; ``h_n`` (num_layers * D, B, H_out), layer-major, each sequence's state at its own
last step.

Errors name the argument. Their classes keep both promises: a wrong shape raises
:class:`rnnlab.ShapeError` (a ``ValueError``, as rnnlab says, and a ``RuntimeError``, as
torch.nn raises), a wrong dtype :class:`rnnlab.DTypeError` (``TypeError``, ``ValueError``
and ``RuntimeError``).
"""

from __future__ import annotations

import math
import warnings
from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ._checks import check_bool, check_int, check_positive_int, describe
from .errors import DTypeError, ShapeError
from .cells import NONLINEARITIES, project
from .recurrence import KINDS, CellKind


class RNNBase(nn.Module):
    """What the three modules share, as ``torch.nn.RNNBase``; each subclass sets ``kind``, its
    row of ``rnnlab.recurrence.KINDS`` (gates, autograd Function, cell state, ...)."""

    kind: CellKind

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            check_bool(name, flag)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a number in [0, 1], got {describe(dropout)}")
        self.proj_size = check_int("proj_size", proj_size, 0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size must be smaller than hidden_size = {hidden_size}, got {proj_size}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout acts between stacked layers only; with num_layers=1 it does nothing "
                          f"(got dropout={dropout})", stacklevel=2)
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = float(dropout)
        factory = {"device": device, "dtype": dtype}
        rows, out = self.kind.gates * self.hidden_size, self._output_size
        self._flat_weights_names = []
        for layer in range(self.num_layers):
            shapes = {"weight_ih": (rows, self.input_size if layer == 0 else out * self.num_directions),
                      "weight_hh": (rows, out)}
            if bias:
                shapes.update(bias_ih=(rows,), bias_hh=(rows,))
            if self.proj_size:
                shapes["weight_hr"] = (self.proj_size, self.hidden_size)
            for suffix in self._suffixes():
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{suffix}"
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    # --- what torch.nn.RNNBase offers ---------------------------------------------

    @property
    def mode(self) -> str:
        """torch.nn's name of the recurrence: 'RNN_TANH', 'RNN_RELU', 'GRU' or 'LSTM'."""
        return self.kind.mode

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _output_size(self) -> int:
        """H_out: the features of h_t, ``proj_size`` if the LSTM projects, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    @property
    def _flat_weights(self) -> list[torch.Tensor]:
        """The parameters in ``_flat_weights_names`` order, as torch.nn keeps them."""
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """One list of parameters per layer and direction, in torch.nn's order."""
        per_direction = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        weights = self._flat_weights
        return [weights[k:k + per_direction] for k in range(0, len(weights), per_direction)]

    def flatten_parameters(self) -> None:
        """Nothing to do. torch.nn packs the weights into one buffer for cuDNN; rnnlab runs
        its own recurrence on each parameter as it is, on every device."""

    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self):
        """torch.nn's initialisation: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def _layer_parameters(self, layer, suffix):
        get = lambda kind: getattr(self, f"{kind}_l{layer}{suffix}", None)
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    # --- forward -----------------------------------------------------------------

    def forward(self, input, hx=None):
        """Run the whole stack over ``input``; returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``)."""
        return self._forward(input, hx, self.kind.run)

    def forward_unrolled(self, input, hx=None):
        """``forward`` run step by step in plain autograd operations, keeping every state.

        ``input`` is a tensor, batched or not (not a ``PackedSequence``). Each layer runs
        ``kind.unroll`` instead of the kind's autograd Function, so every h_t (and c_t) of
        the last layer is a node of the autograd graph, and ``torch.autograd.grad`` with
        respect to it gives the *total* derivative dL/dh_t (:func:`rnnlab.hidden_grad_norms`).
        Returns ``(output, states)``: ``forward``'s output, and for each direction the list
        over time steps t = 0..T-1 of the last layer's pairs ``(h_t, c_t)`` (c_t None without
        a cell state), each (B, H_out) and (B, H).
        """
        if isinstance(input, PackedSequence):
            raise TypeError("input must be a tensor for forward_unrolled, got a PackedSequence")
        runs = []

        def unroll(*arguments):
            hs, cs = self.kind.unroll(*arguments)
            runs.append(list(zip(hs, cs)))
            return torch.stack(hs), torch.stack(cs) if self.kind.cell_state else None

        output, _ = self._forward(input, hx, unroll)
        last = runs[-self.num_directions:]
        return output, [steps if direction == 0 else steps[::-1] for direction, steps in enumerate(last)]

    def _forward(self, input, hx, run):
        packed = isinstance(input, PackedSequence)
        if packed:
            self._check_features("input", input.data, input.data)
            x, lengths = pad_packed_sequence(input)
            batched = True
        else:
            x, batched = self._check_input(input)
            if self.batch_first and batched:
                x = x.transpose(0, 1)
            if not batched:
                x = x.unsqueeze(1)
            lengths = None
        h0, c0 = self._initial_state(hx, x, batched)
        dtype = self._compute_dtype(x)
        with torch.autocast(x.device.type, enabled=False) if dtype is not None else nullcontext():
            output, h_n, c_n = self._layers(*(_cast(t, dtype) for t in (x, h0, c0)), lengths, dtype, run)
        if packed:
            output = _packed_like(input, output)
        elif not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if self.kind.cell_state else (output, h_n)

    def _layers(self, x, h0, c0, lengths, dtype, run):
        """The stack over ``x`` (T, B, I); ``lengths`` (B,) for padded packed sequences or None;
        ``run`` runs one layer in one direction, with the signature of ``CellKind.run``."""
        final_h, final_c = [], []
        last = None if lengths is None else (lengths.to(x.device) - 1)
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
            halves = []
            for direction, suffix in enumerate(self._suffixes()):
                index = layer * self.num_directions + direction
                weight_ih, weight_hh, bias_ih, bias_hh, weight_hr = (_cast(w, dtype) for w in
                                                                     self._layer_parameters(layer, suffix))
                both = bias_ih + bias_hh if self.kind.sums_biases and bias_ih is not None else bias_ih
                gi = project(x, weight_ih, both)
                if direction == 1:
                    gi = _reversed(gi, lengths)
                hs, cs = run(gi, h0[index], weight_hh, bias_hh, None if c0 is None else c0[index], weight_hr)
                final_h.append(_at_last_steps(hs, last))
                if cs is not None:
                    final_c.append(_at_last_steps(cs, last))
                halves.append(_reversed(hs, lengths) if direction == 1 else hs)
            # a new tensor, not the states the recurrence saved, so it may be edited in place
            x = halves[0].clone() if len(halves) == 1 else torch.cat(halves, dim=-1)
        return x, torch.stack(final_h), torch.stack(final_c) if final_c else None

    def _compute_dtype(self, x):
        """The dtype to compute in under autocast (None outside it), by torch.nn's CPU rules:
        the RNN and the LSTM run in autocast's lower precision (torch.nn's LSTM through
        oneDNN), the GRU in the dtype of its input."""
        if not torch.is_autocast_enabled(x.device.type) or x.dtype not in (torch.float32, torch.float16,
                                                                             torch.bfloat16):
            return None
        return torch.get_autocast_dtype(x.device.type) if self.kind.autocast_lower_precision else x.dtype

    def _check_input(self, input):
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input must be a torch tensor of shape (T, B, {self.input_size}) or a "
                            f"PackedSequence, got {describe(input)}")
        if input.dim() not in (2, 3):
            raise ShapeError(f"input must be 3-D (T, B, I) (or 2-D (T, I) unbatched), got {describe(input)}")
        self._check_features("input", input, input)
        steps = input.shape[1] if self.batch_first and input.dim() == 3 else input.shape[0]
        if steps == 0:
            raise ShapeError(f"input must have at least one time step, got {describe(input)}")
        return input, input.dim() == 3

    def _check_features(self, name, tensor, shown):
        weight = self.weight_ih_l0
        if tensor.dtype != weight.dtype and self._compute_dtype(tensor) is None:
            raise DTypeError(f"{name} must have the dtype of the weights, {weight.dtype}, got {describe(shown)}: "
                             f"convert the input with input.to({weight.dtype}) or the model with "
                             f"model.to({tensor.dtype})")
        if tensor.shape[-1] != self.input_size:
            raise ShapeError(f"{name} must have input_size = {self.input_size} features on its last axis, "
                             f"got {describe(shown)}")

    def _initial_state(self, hx, x, batched):
        """The initial (h_0, c_0), (num_layers * D, B, H_out) and (num_layers * D, B, H); zeros where not given."""
        layers, batch = self.num_layers * self.num_directions, x.shape[1]
        h_shape, c_shape = (layers, batch, self._output_size), (layers, batch, self.hidden_size)
        if hx is None:
            h0 = x.new_zeros(h_shape)
            return h0, (x.new_zeros(c_shape) if self.kind.cell_state else None)
        if self.kind.cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx must be a pair (h_0, c_0) for an LSTM, got {describe(hx)}")
            return self._check_state("h_0", hx[0], h_shape, x, batched), self._check_state("c_0", hx[1], c_shape, x, batched)
        return self._check_state("hx", hx, h_shape, x, batched), None

    @staticmethod
    def _check_state(name, state, shape, x, batched):
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape {shape}, got {describe(state)}")
        if state.dim() != (3 if batched else 2):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise ShapeError(f"{name} must be {3 if batched else 2}-D for {kind} input, got {describe(state)}")
        if not batched:
            state = state.unsqueeze(1)
        if tuple(state.shape) != shape:
            expected = shape if batched else (shape[0], shape[2])
            raise ShapeError(f"{name} must have shape {expected} (num_layers * num_directions, B, H), "
                             f"got {describe(state if batched else state.squeeze(1))}")
        if state.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
            raise DTypeError(f"{name} must have the dtype of input, {x.dtype}, got {describe(state)}")
        return state


def _cast(tensor, dtype):
    return tensor if tensor is None or dtype is None or tensor.dtype == dtype else tensor.to(dtype)


def _reversed(sequence, lengths):
    """Each sequence of the batch reversed in time within its own length (T, B, ·): its real
    steps last to first, then its padding. Applied twice, it gives the sequence back."""
    if lengths is None:
        return sequence.flip(0)
    steps = torch.arange(sequence.shape[0], device=sequence.device).unsqueeze(1)
    lengths = lengths.to(sequence.device).unsqueeze(0)
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)     # (T, B)
    return sequence.gather(0, source.unsqueeze(-1).expand_as(sequence))


def _at_last_steps(states, last):
    """The state after each sequence's last real step: (B, ·) from (T, B, ·)."""
    if last is None:
        return states[-1]
    return states[last, torch.arange(states.shape[1], device=states.device)]


def _packed_like(packed: PackedSequence, padded: torch.Tensor) -> PackedSequence:
    """``padded`` (T, B, ·), in the original batch order, packed like ``packed`` (same batch
    sizes and sorting), as torch.nn returns it."""
    batch_sizes = packed.batch_sizes
    order = packed.sorted_indices if packed.sorted_indices is not None else torch.arange(
        int(batch_sizes[0]), device=padded.device)
    times = torch.repeat_interleave(torch.arange(len(batch_sizes)), batch_sizes).to(padded.device)
    rows = torch.cat([order[:int(size)] for size in batch_sizes]).to(padded.device)
    return PackedSequence(padded[times, rows], batch_sizes, packed.sorted_indices, packed.unsorted_indices)


def _refuse_proj_size(cell, kwargs):
    """torch.nn's RNN and GRU refuse the argument proj_size, even 0."""
    if "proj_size" in kwargs:
        raise ValueError(f"proj_size is only supported by the LSTM, not the {cell}, got proj_size={kwargs['proj_size']}")


class RNN(RNNBase):
    """Elman RNN, drop-in for ``torch.nn.RNN``: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    ``nonlinearity`` is ``'tanh'`` (default) or ``'relu'``; as in torch.nn it may also be
    the fourth positional argument, ``RNN(input_size, hidden_size, num_layers,
    nonlinearity, bias, batch_first, dropout, bidirectional)``. Parameters per layer and
    direction: ``weight_ih_l{k}`` (H, I or D*H), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}``
    and ``bias_hh_l{k}`` (H,). ``mode`` is ``'RNN_TANH'`` or ``'RNN_RELU'``.
    """

    def __init__(self, *args, **kwargs):
        _refuse_proj_size("RNN", kwargs)
        if len(args) > 3:                   # torch.nn.RNN takes nonlinearity fourth
            if "nonlinearity" in kwargs:
                raise TypeError("RNN got nonlinearity both as the fourth positional argument and by name")
            kwargs["nonlinearity"] = args[3]
            args = args[:3] + args[4:]
        nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(*args, **kwargs)

    @property
    def kind(self) -> CellKind:
        return KINDS[f"RNN_{self.nonlinearity.upper()}"]

    def extra_repr(self):
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}")


class GRU(RNNBase):
    """GRU, drop-in for ``torch.nn.GRU``; gates stacked r, z, n in every weight (3H rows).

    ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 − z) ⊙ n + z ⊙ h``.
    """

    kind = KINDS["GRU"]

    def __init__(self, *args, **kwargs):
        _refuse_proj_size("GRU", kwargs)
        super().__init__(*args, **kwargs)


class LSTM(RNNBase):
    """LSTM, drop-in for ``torch.nn.LSTM``; gates stacked i, f, g, o in every weight (4H rows).

    ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``. Returns ``(output, (h_n, c_n))``.
    The forget-gate bias is the sum of the slices ``[H:2H]`` of ``bias_ih`` and ``bias_hh``.
    With ``proj_size = P > 0`` (Sak et al. 2014, as torch.nn), ``h' = W_hr (o ⊙ tanh(c'))``
    has P features: ``weight_hr_l{k}`` is (P, H), ``weight_hh_l{k}`` (4H, P), the input of
    layer k > 0 has D*P features, and ``h_0``/``h_n``/``output`` have P per direction.
    """

    kind = KINDS["LSTM"]


def rnnlab_twin(module: nn.Module) -> RNNBase:
    """The rnnlab module with the configuration and the weights of a torch.nn ``RNN``,
    ``GRU`` or ``LSTM`` (any module with their ``mode`` and parameter names), in the same
    training mode, on the same device, in the same dtype."""
    kind = KINDS[module.mode]
    options = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                   dropout=module.dropout, bidirectional=module.bidirectional)
    if getattr(module, "proj_size", 0):
        options["proj_size"] = module.proj_size
    if kind.nonlinearity is not None:
        options["nonlinearity"] = kind.nonlinearity
    reference = next(module.parameters())
    with warnings.catch_warnings():             # torch.nn warned about the arguments already
        warnings.simplefilter("ignore")
        twin = _CLASSES[kind.name](module.input_size, module.hidden_size, **options,
                                   device=reference.device, dtype=reference.dtype)
    twin.load_state_dict(module.state_dict())
    return twin.train(module.training)


_CLASSES = {cls.__name__: cls for cls in RNNBase.__subclasses__()}

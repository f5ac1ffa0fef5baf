"""The one catalogue of named mistakes, and what each mistake computes.

Each function here is written once in numpy (float64) with keyword flags. With no flags
it is the correct computation of DESIGN.md, "Notation" (the tests check it against ``torch.nn``);
each flag reproduces one mistake students make: the reset gate applied before ``W_hn``
(Cho et al.), ``z`` and ``1 − z`` swapped, gate blocks read in the wrong order, a bias
dropped, a weight used untransposed, a sigmoid where tanh belongs, an off-by-one in
time, a budget counted without the read-out, bits counted in nats, a temperature
applied after the softmax.

A :class:`Mistake` is one entry of the catalogue: its name, what it computes (the flags
of one of these functions, or a predicate over what the check saw the answer do) and
the sentence a student reads when their answer shows it. ``CATALOGUES`` lists them
per assignment; :meth:`Mistake.line` is the one place that writes the line naming a
mistake.

This module only *computes* wrong answers; the checks (:mod:`rnnlab.grading.checks`)
decide when one of them is the explanation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..messages import named


class NotApplicable(Exception):
    """The mistake cannot be computed on these shapes (the student's code would raise)."""


@dataclass(frozen=True)
class Mistake:
    """One named mistake: its name, what it computes, and what to tell the student who made it.

    What it computes is given in one of two ways:

    - keyword flags of a function below that computes the wrong answer: ``cell`` for a
      cell function, ``loop`` for :func:`run_sequence`, ``flags`` for any other
      (:func:`rnn_bptt`, :func:`rnn_parameter_count`, :func:`hidden_size_for_budget`,
      :func:`steps_to_solve`, :func:`bits_per_char`, :func:`sample_log_p`);
    - ``found``, a predicate over what the check saw (an answer that changes a model in
      place, a sampler and its generator): ``True``, or a dict of the details the message
      needs, when the answer shows the mistake; anything else when not
      (:func:`first_found`). ``seen`` is then the sentence saying what the check saw,
      with the same details.

    ``message`` (and ``seen``) may name details in braces, ``{where}``, filled by
    :meth:`line`; the others are written as they are read.
    """

    name: str
    message: str
    cell: dict = field(default_factory=dict)
    loop: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)
    found: Callable | None = None
    seen: str = ""

    def line(self, **details) -> str:
        """The line of a failure message that names this mistake: ``The mistake: <message>``."""
        return named(self.message.format(**details) if details else self.message)


def first_found(mistakes, seen) -> tuple[Mistake, dict] | None:
    """The first mistake of ``mistakes`` found by its predicate in ``seen``, with its details; None if none."""
    for mistake in mistakes:
        details = mistake.found(seen) if mistake.found is not None else None
        if details is True or (isinstance(details, dict) and details):
            return mistake, (details if isinstance(details, dict) else {})
    return None


def combined(first: Mistake, second: Mistake) -> Mistake | None:
    """The two mistakes made together, or None when they set the same flag."""
    for a, b in ((first.cell, second.cell), (first.loop, second.loop), (first.flags, second.flags)):
        if set(a) & set(b):
            return None
    return Mistake(
        name=f"{first.name}+{second.name}",
        message=f"two mistakes at once: (1) {first.message} (2) {second.message}",
        cell={**first.cell, **second.cell},
        loop={**first.loop, **second.loop},
        flags={**first.flags, **second.flags},
    )


def singles_then_pairs(mistakes):
    """Every single mistake, then every compatible pair: the order in which to try them."""
    yield from mistakes
    for first, second in itertools.combinations(mistakes, 2):
        pair = combined(first, second)
        if pair is not None:
            yield pair


# --- activations and the affine map ------------------------------------------------


def sigmoid(a):
    """The logistic function, written with tanh so that it cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "identity": lambda a: a,
}


def affine(v, weight, bias, transposed=False):
    """``v @ weight.T + bias``; ``v @ weight`` when the student forgot the transpose."""
    matrix = weight if transposed else weight.T
    if v.shape[-1] != matrix.shape[0]:
        raise NotApplicable("shapes do not fit this mistake")
    out = v @ matrix
    return out if bias is None else out + bias


def gate_block(stacked, order, gate, hidden):
    """The columns of ``stacked`` (B, G·H) that a student reading blocks in ``order`` takes for ``gate``."""
    k = order.index(gate)
    return stacked[..., k * hidden:(k + 1) * hidden]


# --- the cells ---------------------------------------------------------------------


def _activation(name_or_function):
    return ACTIVATIONS[name_or_function] if isinstance(name_or_function, str) else name_or_function


def _term(drop, name, value):
    """``value``, or 0 when the term ``name`` is dropped (a term of the equations left out)."""
    return 0.0 if name in drop else value


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh, *, activation="tanh",
             drop_bias_ih=False, drop_bias_hh=False, transposed=False, swap_weights=False, drop=()):
    """``h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` and its usual mistakes.

    ``activation`` may be a name of ``ACTIVATIONS`` or any elementwise function;
    ``drop`` names terms left out: "W_ih x", "b_ih", "W_hh h", "b_hh".
    """
    if swap_weights:
        weight_ih, weight_hh = weight_hh, weight_ih
    pre = (_term(drop, "W_ih x", affine(x, weight_ih, None, transposed))
           + _term(drop, "b_ih", 0.0 if drop_bias_ih else bias_ih)
           + _term(drop, "W_hh h", affine(h, weight_hh, None, transposed))
           + _term(drop, "b_hh", 0.0 if drop_bias_hh else bias_hh))
    if np.shape(pre) != h.shape:
        raise NotApplicable("shapes do not fit this mistake")
    return _activation(activation)(pre)


def _gate_terms(x, h, weight_ih, weight_hh, bias_ih, bias_hh, order, order_hh, drop,
                drop_bias_ih, drop_bias_hh, hidden):
    """gate -> (input part, hidden part) of its pre-activation, blocks read in ``order`` for
    ``weight_ih``/``bias_ih`` and ``order_hh`` for ``weight_hh``/``bias_hh``."""
    gi, gh = affine(x, weight_ih, None), affine(h, weight_hh, None)
    parts = {}
    for gate in order:
        from_input = (_term(drop, f"W_i{gate} x", gate_block(gi, order, gate, hidden))
                      + _term(drop, f"b_i{gate}", 0.0 if drop_bias_ih else gate_block(bias_ih, order, gate, hidden)))
        from_state = (_term(drop, f"W_h{gate} h", gate_block(gh, order_hh, gate, hidden))
                      + _term(drop, f"b_h{gate}", 0.0 if drop_bias_hh else gate_block(bias_hh, order_hh, gate, hidden)))
        parts[gate] = (from_input, from_state)
    return parts


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh, *, order="rzn", order_hh=None,
             reset_before=False, bias_hn_outside=False, swap_update=False,
             drop_bias_ih=False, drop_bias_hh=False,
             gate_activation="sigmoid", candidate_activation="tanh", activations=None, drop=()):
    """The GRU of torch.nn (gates r, z, n; r applied after ``W_hn``) and its usual mistakes.

    ``order``/``order_hh`` are the gate orders read from the input and the hidden side;
    ``activations`` maps "r", "z", "n" to any elementwise function; ``drop`` names terms
    left out ("W_iz x", "b_hr", "W_hn h", "(1 - z) n", "z h", ...).
    """
    hidden = h.shape[1]
    order_hh = order_hh or order
    act = {"r": gate_activation, "z": gate_activation, "n": candidate_activation, **(activations or {})}
    parts = _gate_terms(x, h, weight_ih, weight_hh, bias_ih, bias_hh, order, order_hh, drop,
                        drop_bias_ih, drop_bias_hh, hidden)
    r = _activation(act["r"])(sum(parts["r"]))
    z = _activation(act["z"])(sum(parts["z"]))
    k = order_hh.index("n")
    w_hn = weight_hh[k * hidden:(k + 1) * hidden]
    b_hn = 0.0 if drop_bias_hh or "b_hn" in drop else bias_hh[k * hidden:(k + 1) * hidden]
    if reset_before:          # Cho et al. (2014): W_hn (r ⊙ h) + b_hn
        recurrent = (r * h) @ w_hn.T + b_hn
    elif bias_hn_outside:     # r ⊙ (W_hn h) + b_hn
        recurrent = r * (h @ w_hn.T) + b_hn
    else:                     # torch.nn: r ⊙ (W_hn h + b_hn)
        recurrent = r * parts["n"][1]
    n = _activation(act["n"])(parts["n"][0] + recurrent)
    if swap_update:
        return z * n + (1.0 - z) * h
    return _term(drop, "(1 - z) n", (1.0 - z) * n) + _term(drop, "z h", z * h)


def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh, *, order="ifgo", order_hh=None,
              drop_bias_ih=False, drop_bias_hh=False, gate_activation="sigmoid",
              candidate_activation="tanh", cell_activation="tanh", activations=None, drop=(),
              cell_from_hidden=False, output_from_old_cell=False, swap_return=False):
    """The LSTM of torch.nn (gates i, f, g, o) and its usual mistakes; returns ``(h_t, c_t)``.

    ``activations`` maps "i", "f", "g", "o" and "c" (the function applied to the cell
    state in h_t) to any elementwise function; ``drop`` names terms left out ("W_hf h",
    "b_io", "f c", "i g", ...).
    """
    h, c = state
    hidden = h.shape[1]
    act = {"i": gate_activation, "f": gate_activation, "o": gate_activation, "g": candidate_activation,
           "c": cell_activation, **(activations or {})}
    parts = _gate_terms(x, h, weight_ih, weight_hh, bias_ih, bias_hh, order, order_hh or order, drop,
                        drop_bias_ih, drop_bias_hh, hidden)
    i, f, g, o = (_activation(act[gate])(sum(parts[gate])) for gate in "ifgo")
    c_new = _term(drop, "f c", f * (h if cell_from_hidden else c)) + _term(drop, "i g", i * g)
    h_new = o * _activation(act["c"])(c if output_from_old_cell else c_new)
    return (c_new, h_new) if swap_return else (h_new, c_new)


# --- loops over time ---------------------------------------------------------------


def run_sequence(step, xs, state0, *, record_before=False, start_from_zeros=False,
                 reuse_buffer=False):
    """Run ``step(x, state) -> state`` over ``xs`` (T, B, I) and stack the states.

    Returns (T, B, H) for an array state, a tuple of such stacks for a tuple state
    (the LSTM's ``(h, c)``). The flags reproduce the usual mistakes of the loop.
    """
    state = state0
    if start_from_zeros:
        state = _map_state(np.zeros_like, state)
    recorded = []
    for x in xs:
        if record_before:
            recorded.append(state)
        state = step(x, state)
        if not record_before:
            recorded.append(state)
    if reuse_buffer:
        recorded = [state] * len(xs)
    if isinstance(state0, tuple):
        return tuple(np.stack([s[k] for s in recorded]) for k in range(len(state0)))
    return np.stack(recorded)


def _map_state(fn, state):
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


# --- backpropagation through time of the vanilla RNN -----------------------------------


def rnn_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, target, *,
             norms_one_step_early=False, weight_hh_with_new_state=False,
             tanh_derivative="of_state", backward_transposed=False,
             norms_of_preactivation=False, norms_mean_per_example=False,
             overwrite_not_accumulate=False, no_recurrent_gradient=False):
    """Gradients of ``L = ½ Σ (h_T − target)²`` for the tanh RNN, and ``‖dL/dh_t‖`` per step.

    Returns ``(grads, norms)``: ``grads`` maps ``weight_ih, weight_hh, bias_ih, bias_hh``
    to arrays of their shapes; ``norms[k]`` is ``‖dL/dh‖`` for the state after step k
    (the same index as the forward pass's output), Frobenius over batch and features.
    """
    states = [h0]
    pres = []
    for x in xs:
        pres.append(affine(x, weight_ih, bias_ih) + affine(states[-1], weight_hh, bias_hh))
        states.append(np.tanh(pres[-1]))
    grads = {"weight_ih": np.zeros_like(weight_ih), "weight_hh": np.zeros_like(weight_hh),
             "bias_ih": np.zeros_like(bias_ih), "bias_hh": np.zeros_like(bias_hh)}
    norms = np.zeros(len(xs))
    grad_h = states[-1] - target                        # dL/dh_T
    for t in reversed(range(len(xs))):                  # step t reads xs[t], states[t] -> states[t + 1]
        local = {"of_state": 1.0 - states[t + 1] ** 2,  # tanh'(a_t) = 1 − h_t²
                 "of_preactivation": 1.0 - pres[t] ** 2,
                 "none": 1.0}[tanh_derivative]
        grad_a = grad_h * local                         # dL/da_t
        if not norms_one_step_early:
            norms[t] = _norm(grad_a if norms_of_preactivation else grad_h, norms_mean_per_example)
        contribution = {
            "weight_ih": grad_a.T @ xs[t],
            "weight_hh": grad_a.T @ (states[t + 1] if weight_hh_with_new_state else states[t]),
            "bias_ih": grad_a.sum(axis=0),
            "bias_hh": grad_a.sum(axis=0),
        }
        for name, value in contribution.items():
            grads[name] = value if overwrite_not_accumulate else grads[name] + value
        grad_h = grad_a @ (weight_hh.T if backward_transposed else weight_hh)   # dL/dh_{t−1}
        if no_recurrent_gradient:
            grad_h = np.zeros_like(grad_h)
        if norms_one_step_early:
            norms[t] = _norm(grad_h, norms_mean_per_example)
    return grads, norms


def _norm(grad, mean_per_example):
    if mean_per_example:
        return float(np.linalg.norm(grad, axis=1).mean())
    return float(np.linalg.norm(grad))


def rnn_parameter_count(input_size, hidden_size, num_layers=1, *, biases=2,
                        every_layer_reads_input=False, hidden_weight_as_input=False):
    """Parameters of ``torch.nn.RNN(input_size, hidden_size, num_layers)``: ``H(I + H) + 2H`` per layer."""
    total = 0
    for layer in range(num_layers):
        inputs = input_size if layer == 0 or every_layer_reads_input else hidden_size
        recurrent = inputs if hidden_weight_as_input else hidden_size
        total += hidden_size * inputs + hidden_size * recurrent + biases * hidden_size
    return total


# --- assignment gru_vs_lstm: a parameter budget, and when a run solved the task ------------

RECURRENT_BLOCKS = {"gru": 3, "lstm": 4}   # stacked gate blocks of weight_ih and weight_hh


def model_parameter_count(cell, input_size, output_size, hidden_size, *, swap_gates=False, biases=2, head=True):
    """Parameters of a one-layer ``cell`` of ``hidden_size`` units and a linear read-out.

    ``G(H(I + H) + 2H) + H·O + O`` with G = 3 for a GRU, 4 for an LSTM, as ``torch.nn``
    counts them. ``swap_gates`` counts the other cell's blocks, ``biases`` the bias
    vectors per block, ``head=False`` leaves the read-out out.
    """
    gates = RECURRENT_BLOCKS["lstm" if cell == "gru" else "gru"] if swap_gates else RECURRENT_BLOCKS[cell]
    layer = gates * (hidden_size * (input_size + hidden_size) + biases * hidden_size)
    return layer + (hidden_size * output_size + output_size if head else 0)


def hidden_size_for_budget(cell, input_size, output_size, budget, *, over_budget=False, **count_flags):
    """The largest hidden size whose model has at most ``budget`` parameters, counted by
    :func:`model_parameter_count` with ``count_flags``; one more with ``over_budget``."""
    hidden = 0
    while model_parameter_count(cell, input_size, output_size, hidden + 1, **count_flags) <= budget:
        hidden += 1
    return hidden + 1 if over_budget else hidden


def steps_to_solve(runs, threshold, *, accuracy="eval", last_only=False, strict=False):
    """Per cell, per run, the first evaluation step whose accuracy is at least ``threshold`` (None if none).

    ``runs`` maps a cell to ``(model, history)`` pairs of ``rnnlab.train``. The flags:
    ``accuracy="training"`` reads the training accuracy of every step, ``last_only`` looks
    at the last evaluation alone, ``strict`` asks for an accuracy above the threshold.
    """
    def first(history):
        if accuracy == "training":
            steps, values = history.step, history.accuracy
        else:
            steps, values = history.eval_step, history.eval_accuracy
        if last_only:
            steps, values = steps[-1:], values[-1:]
        for step, value in zip(steps, values):
            if value > threshold or (value >= threshold and not strict):
                return int(step)
        return None
    return {cell: [first(run[1]) for run in cell_runs] for cell, cell_runs in runs.items()}


# --- assignment char_lm: bits per character, and sampling --------------------------------

LN2 = math.log(2.0)


def log_softmax(values, axis):
    """``log softmax`` along ``axis``, in numpy, without overflow."""
    shifted = values - values.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def bits_per_char(logits, targets, *, natural_log=False, shift=1, total=False, count_all=False,
                  axis=-1, raw_logits=False) -> float:
    """Bits per character in numpy float64, and the usual mistakes (one keyword flag each).

    With no flag it is the correct value; ``shift`` 0 scores ``logits[t]`` against
    ``targets[t]``, -1 against ``targets[t - 1]``; ``axis`` is the axis of the softmax;
    ``raw_logits`` takes the logits as log-probabilities.
    """
    log_p = logits if raw_logits else log_softmax(logits, axis)
    scored, wanted = {1: (log_p[:-1], targets[1:]), 0: (log_p, targets), -1: (log_p[1:], targets[:-1])}[shift]
    nats = -np.take_along_axis(scored, wanted[..., None], axis=-1).sum()
    value = nats if total else nats / (targets.size if count_all else wanted.size)
    return float(value if natural_log else value / LN2)


def sample_log_p(table, prefix, drawn, temperature, *, temperature_applied="divided", prefix_fed=True,
                 state_carried=True, fed_back=True):
    """The log-probabilities (steps, B, V) of each next character along the sequence ``drawn``,
    for a sampler of the keyed-table model (:class:`~rnnlab.grading.checks.cases.KeyedTableLM`).

    With no flag, the right sampler: feed ``prefix`` (P, B), then draw from
    ``softmax(logits / temperature)`` and feed each character back with the state. The
    flags: ``temperature_applied`` "after_softmax" (no effect) or "multiplied"; the prefix
    not fed (only its last character); the state not carried after the prefix; the
    characters drawn not fed back (the last prefix character read again).
    """
    first, last = prefix[0], prefix[-1]
    inputs = np.concatenate([last[None], drawn[:-1]])              # what the model reads before each draw
    if not fed_back:
        inputs = np.broadcast_to(last, (len(drawn),) + last.shape)
    keys = np.broadcast_to(first if prefix_fed else last, inputs.shape)
    if not state_carried:                                          # the prefix was fed once, then the state dropped
        keys = np.concatenate([keys[:1], inputs[1:]])
    scale = {"divided": temperature, "after_softmax": 1.0, "multiplied": 1.0 / temperature}[temperature_applied]
    return log_softmax(table[keys, inputs].astype(np.float64) / scale, -1)


# --- the catalogues ------------------------------------------------------------------

def _bias_mistakes(gates):
    return [
        Mistake("dropped_bias_ih", f"bias_ih is missing: add it to x @ weight_ih.T ({gates}).",
                cell={"drop_bias_ih": True}),
        Mistake("dropped_bias_hh", f"bias_hh is missing: add it to h @ weight_hh.T ({gates}); "
                "torch.nn has two bias vectors and uses both.", cell={"drop_bias_hh": True}),
    ]


RNN_CELL_MISTAKES = [
    Mistake("sigmoid_for_tanh", "you used the sigmoid where tanh belongs: h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).",
            cell={"activation": "sigmoid"}),
    Mistake("missing_tanh", "the tanh is missing: h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), not the affine sum alone.",
            cell={"activation": "identity"}),
    *_bias_mistakes("one bias per product"),
    Mistake("untransposed_weights", "the weights are used untransposed: weight_ih has shape (H, I) and weight_hh "
            "(H, H) as in torch.nn, so the products are x @ weight_ih.T and h @ weight_hh.T.",
            cell={"transposed": True}),
    Mistake("swapped_weights", "weight_ih and weight_hh are swapped: weight_ih multiplies the input x, "
            "weight_hh the previous state h.", cell={"swap_weights": True}),
]

# Where a wrong order is a known convention, say so: it is how students get it.
_KNOWN_ORDERS = {
    "zrn": "Keras's order",
    "ifog": "the order of some tutorials",
    "igfo": "TensorFlow LSTMCell's order i, j, f, o",
    "iofg": "ONNX's order i, o, f, c",
}


def _bound(k):
    return {0: "0", 1: "H"}.get(k, f"{k}H")


def _order_mistakes(correct):
    mistakes = []
    for order in ("".join(p) for p in itertools.permutations(correct)):
        if order == correct:
            continue
        known = f" ({_KNOWN_ORDERS[order]})" if order in _KNOWN_ORDERS else ""
        rows = ", ".join(f"{g} rows {_bound(k)}:{_bound(k + 1)}" for k, g in enumerate(correct))
        mistakes.append(Mistake(
            f"gate_order_{order}",
            f"gate blocks taken in the wrong order: you read them as {', '.join(order)}{known}; "
            f"torch.nn stacks {', '.join(correct)} ({rows}) in weight_ih, weight_hh and both biases.",
            cell={"order": order}))
    return mistakes


GRU_CELL_MISTAKES = [
    Mistake("reset_before_matrix", "the reset gate is applied before W_hn, as in Cho et al. (2014): "
            "the PyTorch form is n_t = tanh(W_in x + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn)), "
            "r_t multiplying the product and its bias, not h_{t-1}.", cell={"reset_before": True}),
    Mistake("bias_hn_outside_reset", "b_hn is outside the reset gate: the PyTorch form is "
            "r_t ⊙ (W_hn h_{t-1} + b_hn), with the bias inside the product with r_t.",
            cell={"bias_hn_outside": True}),
    Mistake("update_gate_swapped", "z and 1 − z are swapped: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1} "
            "(z_t keeps the old state).", cell={"swap_update": True}),
    *_order_mistakes("rzn"),
    *_bias_mistakes("all three gates"),
    Mistake("sigmoid_for_tanh", "you used the sigmoid where tanh belongs: the candidate is "
            "n_t = tanh(...), only r_t and z_t are sigmoids.", cell={"candidate_activation": "sigmoid"}),
    Mistake("tanh_for_sigmoid", "you used tanh where the sigmoid belongs: the gates r_t and z_t are "
            "σ(...), between 0 and 1.", cell={"gate_activation": "tanh"}),
]

LSTM_CELL_MISTAKES = [
    *_order_mistakes("ifgo"),
    *_bias_mistakes("all four gates"),
    Mistake("sigmoid_for_tanh", "you used the sigmoid where tanh belongs: the candidate is "
            "g_t = tanh(...); i_t, f_t and o_t are the sigmoids.", cell={"candidate_activation": "sigmoid"}),
    Mistake("sigmoid_on_cell", "you used the sigmoid where tanh belongs: h_t = o_t ⊙ tanh(c_t).",
            cell={"cell_activation": "sigmoid"}),
    Mistake("missing_tanh_on_cell", "the tanh on the cell state is missing: h_t = o_t ⊙ tanh(c_t), not o_t ⊙ c_t.",
            cell={"cell_activation": "identity"}),
    Mistake("tanh_for_sigmoid", "you used tanh where the sigmoid belongs: i_t, f_t and o_t are σ(...), "
            "between 0 and 1.", cell={"gate_activation": "tanh"}),
    Mistake("forget_gate_on_hidden", "the forget gate multiplies h_{t-1}: it keeps the old cell "
            "state, c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t.", cell={"cell_from_hidden": True}),
    Mistake("output_from_old_cell", "h_t uses the old cell state: compute c_t first, then "
            "h_t = o_t ⊙ tanh(c_t) with the new c_t.", cell={"output_from_old_cell": True}),
    Mistake("returned_c_h", "you returned (c_t, h_t): return (h_t, c_t), the order of torch.nn.LSTMCell.",
            cell={"swap_return": True}),
]

LOOP_MISTAKES = [
    Mistake("recorded_before_step", "off by one in time: the row for step t holds the state before "
            "reading x_t (row 0 is your h0). Store the new state after computing it; the last row is h_T.",
            loop={"record_before": True}),
    Mistake("started_from_zeros", "the loop starts from zeros instead of the initial state you were given: "
            "start from h0.", loop={"start_from_zeros": True}),
    Mistake("reused_buffer", "every row holds the last state: the same array was stored at each step and then "
            "changed in place (h[:] = ..., h += ...). Compute a new array each step (h = ...), or store a copy.",
            loop={"reuse_buffer": True}),
]


def sequence_mistakes(cell_mistakes):
    """Mistakes of a sequence function: its cell's, the loop's, then one of each together."""
    yield from cell_mistakes
    yield from LOOP_MISTAKES
    for in_cell, in_loop in itertools.product(cell_mistakes, LOOP_MISTAKES):
        yield combined(in_cell, in_loop)


BPTT_MISTAKES = [
    Mistake("norms_one_step_early", "off by one in time: your norms[k] is ‖dL/dh‖ of the state before step k "
            "(norms[0] is ‖dL/dh_0‖). Record ‖dL/dh_t‖ before propagating it to h_{t-1}; norms[-1] is ‖h_T − target‖.",
            flags={"norms_one_step_early": True}),
    Mistake("weight_hh_with_new_state", "off by one in time in weight_hh's gradient: step t contributes "
            "(dL/da_t)^T h_{t-1}, the state that entered the step, not h_t.",
            flags={"weight_hh_with_new_state": True}),
    Mistake("tanh_derivative_of_preactivation", "the tanh derivative is taken of the pre-activation: "
            "tanh'(a_t) = 1 − tanh(a_t)² = 1 − h_t², not 1 − a_t².",
            flags={"tanh_derivative": "of_preactivation"}),
    Mistake("missing_tanh_derivative", "the tanh derivative is missing: dL/da_t = dL/dh_t ⊙ (1 − h_t²).",
            flags={"tanh_derivative": "none"}),
    Mistake("backward_transposed", "going back through weight_hh uses its transpose: a_t = ... + h_{t-1} W_hh^T, "
            "so dL/dh_{t-1} = (dL/da_t) @ weight_hh (no .T).", flags={"backward_transposed": True}),
    Mistake("norms_of_preactivation", "you recorded ‖dL/da_t‖, after multiplying by tanh': record ‖dL/dh_t‖, "
            "the gradient with respect to the state itself.", flags={"norms_of_preactivation": True}),
    Mistake("norms_mean_per_example", "your norms are averaged per example: ‖dL/dh_t‖ is one Frobenius norm "
            "over the whole (B, H) array, np.linalg.norm(grad_h).", flags={"norms_mean_per_example": True}),
    Mistake("overwrite_not_accumulate", "the weight gradients hold one step's contribution only: a weight is "
            "used at every step, so its gradient is the sum over steps (+=, not =).",
            flags={"overwrite_not_accumulate": True}),
    Mistake("no_recurrent_gradient", "the gradient is not carried back through time: at each step "
            "dL/dh_{t-1} = (dL/da_t) @ weight_hh must be passed on to the step before.",
            flags={"no_recurrent_gradient": True}),
]

PARAMETER_COUNT_MISTAKES = [
    Mistake("one_bias", "you counted one bias vector per layer: torch.nn.RNN has two, bias_ih and bias_hh, "
            "so a layer has H(I + H) + 2H parameters.", flags={"biases": 1}),
    Mistake("no_bias", "you counted no biases: torch.nn.RNN has bias_ih and bias_hh, H each, per layer.",
            flags={"biases": 0}),
    Mistake("every_layer_reads_input", "every layer is counted with the input size I: layers after the first "
            "read the previous layer's state, of size H, so their weight_ih is (H, H).",
            flags={"every_layer_reads_input": True}),
    Mistake("hidden_weight_as_input", "weight_hh is counted as (H, I): it maps the previous state to the new "
            "one, so it is (H, H).", flags={"hidden_weight_as_input": True}),
]

BUDGET_MISTAKES = [
    Mistake("swapped_gate_counts", "the gate counts are swapped: a GRU layer has 3 blocks of weights (r, z, n), "
            "an LSTM layer 4 (i, f, g, o).", flags={"swap_gates": True}),
    Mistake("one_bias", "you counted one bias vector per block: torch.nn has two, bias_ih and bias_hh.",
            flags={"biases": 1}),
    Mistake("no_readout", "the read-out is missing from the count: the budget covers the linear layer too, "
            "hidden_size × output_size weights plus output_size biases.", flags={"head": False}),
    Mistake("over_budget", "off by one: your hidden size is the smallest one *over* the budget; return the "
            "largest one whose model fits (at most budget parameters).", flags={"over_budget": True}),
]

STEPS_TO_SOLVE_MISTAKES = [
    Mistake("training_accuracy", "you used the training accuracy (history.accuracy, one noisy batch per step); "
            "use the evaluation accuracy, history.eval_accuracy at history.eval_step.",
            flags={"accuracy": "training"}),
    Mistake("last_evaluation_only", "you looked at the last evaluation only; return the *first* evaluation step "
            "that reached the threshold.", flags={"last_only": True}),
    Mistake("strictly_above", "'reached' means accuracy >= threshold, not >.", flags={"strict": True}),
]

BITS_MISTAKES = [
    Mistake("natural_log", "the value is in nats: bits per character take the logarithm in base 2. Divide the "
            "natural-log loss by ln 2 (math.log(2)), or use torch.log2.", flags=dict(natural_log=True)),
    Mistake("targets_not_shifted", "the targets are not shifted by one: logits[t] was scored against targets[t], the "
            "character the model had just read. logits[t] predicts the next character: compare logits[:-1] "
            "with targets[1:].", flags=dict(shift=0)),
    Mistake("shifted_backwards", "the targets are shifted the wrong way: logits[t] predicts targets[t + 1], so compare "
            "logits[:-1] with targets[1:], not logits[1:] with targets[:-1].", flags=dict(shift=-1)),
    Mistake("total", "you returned the total number of bits: bits per character is their mean over the "
            "(T − 1)·B predicted characters.", flags=dict(total=True)),
    Mistake("count_all", "you divided by T·B, but only (T − 1)·B characters are predicted (the last step predicts "
            "past the end of the text): divide by (T − 1)·B.", flags=dict(count_all=True)),
    Mistake("raw_logits", "the logits were used as log-probabilities: normalise them first, "
            "torch.log_softmax(logits, dim=-1) (the logits minus their logsumexp).", flags=dict(raw_logits=True)),
    Mistake("softmax_over_time", "the softmax ran over dim=0, the time axis: the probabilities of the next character "
            "sum to one over the vocabulary, the last axis (dim=-1).", flags=dict(axis=0)),
    Mistake("softmax_over_batch", "the softmax ran over dim=1, the batch axis: the probabilities of the next "
            "character sum to one over the vocabulary, the last axis (dim=-1).", flags=dict(axis=1)),
]

# The sampling mistakes with flags are found by the distribution the samples follow
# (sample_log_p); the others by what the sampler does with its generator, ``draws``
# holding the characters ``first`` drawn, ``again`` with a generator in the same state,
# ``other`` with another, and ``greedy``, the most likely ones.
SAMPLE_MISTAKES = [
    Mistake("seed_ignored", "the generator's seed is ignored: two calls with generators in the same state gave "
            "different samples. Draw with the generator you are given, torch.multinomial(probabilities, 1, "
            "generator=generator), not from torch's global random state.",
            found=lambda draws: not bool(np.array_equal(draws.first, draws.again)),
            seen="sample gave different characters on the inputs {inputs} for two generators seeded alike."),
    Mistake("greedy", "you took the most likely character (argmax): sampling draws one at random from "
            "softmax(logits / temperature), e.g. torch.multinomial(probabilities, 1, generator=generator).",
            found=lambda draws: bool(np.array_equal(draws.first, draws.greedy) and draws.temperature >= 0.5),
            seen="sample returned the most likely characters on the inputs {inputs}."),
    Mistake("generator_unused", "your samples do not change when the generator does: draw with the generator you "
            "are given (torch.multinomial(probabilities, 1, generator=generator)), and do not seed anything "
            "inside the function.",
            found=lambda draws: bool(np.array_equal(draws.first, draws.other) and draws.temperature >= 0.5),
            seen="sample gave the same {count} characters on the inputs {inputs} for generators seeded differently."),
    Mistake("temperature_after_softmax", "the temperature was applied after the softmax: dividing probabilities by "
            "the temperature changes nothing once torch.multinomial normalises them. Divide the logits: "
            "torch.softmax(logits / temperature, dim=-1).", flags={"temperature_applied": "after_softmax"}),
    Mistake("temperature_multiplied", "the logits were multiplied by the temperature: divide them, "
            "softmax(logits / temperature), so that a temperature below 1 makes the samples less varied.",
            flags={"temperature_applied": "multiplied"}),
    Mistake("prefix_not_fed", "the prefix was not fed to the model before sampling (only its last character was): "
            "run the model over the whole prefix first, logits, state = model(prefix, None), and draw the first "
            "character from logits[-1].", flags={"prefix_fed": False}),
    Mistake("state_not_carried", "the state was not carried from one step to the next: pass the state the model "
            "returned into the next call, logits, state = model(next_character, state).",
            flags={"state_carried": False}),
    Mistake("samples_not_fed_back", "the characters you drew were not fed back: each one is the model's next "
            "input, logits, state = model(next_character.view(1, -1), state).", flags={"fed_back": False}),
]

# --- assignment lstm_cell: set_forget_gate_bias -------------------------------------------

LSTM_GATES = ("input (i)", "forget (f)", "candidate (g)", "output (o)")   # torch.nn's order of the blocks
LSTM_ROWS = ("0:H", "H:2H", "2H:3H", "3H:4H")

# Found on what the call changed, read by rnnlab.grading.checks.forget_bias in this order:
# each parameter (``kind`` "parameter"), the LSTM as a whole ("lstm"), then each layer and
# direction ("layer"). A mistake of a layer is named only where that layer's sum is wrong,
# except a changed block of another gate.
FORGET_BIAS_MISTAKES = [
    Mistake("parameter_replaced", "lstm.{name} is no longer a torch.nn.Parameter: change the values inside the "
            "parameter (with torch.no_grad(): lstm.bias_ih_l0[...] = ...) instead of replacing it.",
            found=lambda s: s.kind == "parameter" and not s.is_parameter and {"name": s.name}),
    Mistake("parameter_frozen", "lstm.{name} no longer requires gradients: the biases must stay trainable.",
            found=lambda s: s.kind == "parameter" and not s.requires_grad and {"name": s.name}),
    Mistake("parameter_reshaped", "lstm.{name} has shape {shape}; it must keep its shape {old_shape}.",
            found=lambda s: (s.kind == "parameter" and s.shape != s.old_shape
                             and {"name": s.name, "shape": s.shape, "old_shape": s.old_shape})),
    Mistake("weights_changed", "you changed {names}: only the forget gate's biases should change.",
            found=lambda s: s.kind == "lstm" and s.changed_weights and {"names": ", ".join(s.changed_weights)}),
    Mistake("nothing_changed", "nothing in the LSTM changed: set the biases of the LSTM you are given, in place "
            "(with torch.no_grad(): ...); returning a new tensor or a new LSTM does not change it.",
            found=lambda s: s.kind == "lstm" and bool(s.unchanged)),
    Mistake("other_gate_changed", "you changed {name}[{rows}], the {gate} gate's bias ({where}): torch.nn "
            "stacks the gates i, f, g, o, so the forget gate is the second block, rows H:2H.",
            found=lambda s: (s.kind == "layer" and s.changed_block is not None
                             and {"name": s.names[s.changed_block[0]], "rows": LSTM_ROWS[s.changed_block[1]],
                                  "gate": LSTM_GATES[s.changed_block[1]], "where": s.where})),
    Mistake("layer_not_set", "the forget gate's bias of {where} was not changed: set it in every layer{directions}.",
            found=lambda s: (s.kind == "layer" and not s.right and s.forget_unchanged
                             and {"where": s.where, "directions": " and both directions (the *_reverse parameters)"
                                  if s.bidirectional else ""})),
    Mistake("both_biases_set", "both b_if and b_hf are set to {value} ({where}), so the forget gate's bias, their "
            "sum, is {twice}: set one of them to {value} and the other to 0.",
            found=lambda s: (s.kind == "layer" and not s.right and all(s.set_to_value)
                             and {"value": s.value, "where": s.where, "twice": 2 * s.value})),
    Mistake("one_bias_set", "only {name}[H:2H] was set ({where}): the forget gate adds b_if and b_hf, and "
            "{other}[H:2H] still holds its random initial values, so the sum is not {value}. Set {other}[H:2H] to 0.",
            found=lambda s: (s.kind == "layer" and not s.right and s.only_set is not None
                             and {"name": s.names[s.only_set], "other": s.names[1 - s.only_set], "where": s.where,
                                  "value": s.value})),
]

# Every named mistake, listed per assignment (the notebooks of solutions/).
CATALOGUES = {
    "rnn_forward": (RNN_CELL_MISTAKES, LOOP_MISTAKES, PARAMETER_COUNT_MISTAKES),
    "gru_cell": (GRU_CELL_MISTAKES, LOOP_MISTAKES),
    "lstm_cell": (LSTM_CELL_MISTAKES, LOOP_MISTAKES, FORGET_BIAS_MISTAKES),
    "bptt": (BPTT_MISTAKES,),
    "gru_vs_lstm": (BUDGET_MISTAKES, STEPS_TO_SOLVE_MISTAKES),
    "char_lm": (BITS_MISTAKES, SAMPLE_MISTAKES),
}

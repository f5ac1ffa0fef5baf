"""The checks that the test cells of the exercises call.

Each ``check_<function>(answer, hidden=False)`` runs the student's function on seeded
cases (:mod:`rnnlab.grading.checks.cases`), compares it with ``torch.nn``
(:mod:`rnnlab.grading.checks.oracles`) and returns None, printing one line, when it agrees.
Otherwise it raises :class:`~rnnlab.grading.checks.calling.CheckFailed`, whose message is all
the student sees: what is wrong and on which inputs, the expected values against the
answer's, and, when the answer equals what a usual mistake computes on the same inputs
(:mod:`rnnlab.grading.checks.mistakes`), which mistake that is and how to fix it. A sequence
check given the student's cell function (``cell=``) also says when the loop itself is
right and the error comes from the cell, whose own test already counts it.

Any correct answer passes: numpy or torch inside, float32 or float64, a loop or
vectorised code. The student's function runs with warnings and stderr silenced, because
nbgrader scores a test cell 0 for any stderr output, even a harmless warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import kinds
from . import mistakes as M
from . import oracles
from .cases import cases
from ..messages import FROM_EARLIER
from .calling import CheckFailed, call_quietly, explain_exception, hidden_inputs, run_answer

RTOL = 1e-4   # loose enough for float32 arithmetic, far tighter than any mistake
ATOL = 1e-5   # times max(1, largest expected magnitude)


class Wrong(CheckFailed):
    """An answer's output cannot be read (wrong type, structure or shape)."""


# --- reading outputs -------------------------------------------------------------------


def as_array(value, what):
    """A student's output as a float64 numpy array; a clear ``Wrong`` for anything else."""
    if value is None:
        raise Wrong(f"{what} is None: is a `return` missing?")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_complex():
            raise Wrong(f"{what} is a complex tensor; expected real numbers")
        return value.to(torch.float64).numpy()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (np.ndarray, torch.Tensor)) for v in value):
        parts = [as_array(v, what) for v in value]
        if len({p.shape for p in parts}) == 1:
            return np.stack(parts)
    if isinstance(value, (np.ndarray, np.generic, float, int, list, tuple)) and not isinstance(value, bool):
        array = np.asarray(value)
        if array.dtype.kind in "fiu":
            return array.astype(np.float64)
    raise Wrong(f"{what} is {type(value).__name__}; expected a numpy array or a torch tensor of numbers")


def single(label):
    """Outputs of a function that returns one array, named ``label`` in messages."""
    return lambda value: {label: as_array(value, label)}


def pair(first, second):
    """Outputs of a function that returns a pair of arrays, such as ``(h_t, c_t)``."""
    def read(value):
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise Wrong(f"the function must return the pair ({first}, {second}); it returned {type(value).__name__}")
        return {first: as_array(value[0], first), second: as_array(value[1], second)}
    return read


_GRAD_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def bptt_outputs(value):
    """Outputs of ``rnn_bptt``: ``(grads, norms)`` with ``grads`` a dict of the four weight gradients."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Wrong(f"rnn_bptt must return the pair (grads, norms); it returned {type(value).__name__}")
    grads, norms = value
    if not isinstance(grads, Mapping):
        raise Wrong(f"grads must be a dict with keys {', '.join(_GRAD_NAMES)}; it is {type(grads).__name__}")
    missing = [k for k in _GRAD_NAMES if k not in grads]
    if missing:
        raise Wrong(f"grads lacks the key(s) {', '.join(missing)}; expected {', '.join(_GRAD_NAMES)}")
    outputs = {f"grads['{k}']": as_array(grads[k], f"grads['{k}']") for k in _GRAD_NAMES}
    outputs["norms"] = as_array(norms, "norms")
    return outputs


# --- comparing and explaining --------------------------------------------------------------


def close(got, expected):
    """Equal up to float32 round-off, relative to the size of the expected values."""
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=RTOL, atol=ATOL * scale))


def _shape_hint(got, expected, case):
    if got.shape == (case.batch,) + expected.shape:
        return " Did you forget to sum over the batch (axis 0)?"
    if len(expected.shape) == 3 and got.shape == expected.shape[1:]:
        return " It looks like one step only: return the states of all T steps stacked, shape (T, B, H)."
    if got.shape == expected.shape[::-1]:
        return " It looks transposed."
    return ""


def _difference(label, got, expected, time_axis):
    """One line saying how ``got`` differs from ``expected``."""
    error = np.abs(got - expected)
    worst = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else ()
    line = f"  {label} differs from the expected values by up to {error.max():.3g} (at index {list(map(int, worst))})"
    if time_axis and got.ndim == 3:
        first = next(t for t in range(len(got)) if not close(got[t], expected[t]))
        line += ("; it is wrong from the first step on" if first == 0 else
                 f"; steps 0 to {first - 1} are right, step {first} is the first wrong one")
    row = worst[:-1] if len(worst) > 1 else ()
    if expected[row].size <= 8:
        shown = f"{label}[{', '.join(map(str, row))}]" if row else label
        line += (f".\n    expected {shown} = {np.round(expected[row], 4).tolist()},"
                 f" got {np.round(got[row], 4).tolist()}")
    return line + "."


def _scale_hint(got, expected):
    """When the answer is a constant multiple of the expected values, say so."""
    flat_got = np.concatenate([g.ravel() for g in got.values()])
    flat_expected = np.concatenate([e.ravel() for e in expected.values()])
    norm = float(flat_expected @ flat_expected)
    if norm == 0.0:
        return None
    factor = float(flat_got @ flat_expected) / norm
    if abs(factor - 1.0) > 1e-3 and np.allclose(flat_got, factor * flat_expected, rtol=RTOL, atol=ATOL):
        return (f"Your values are {factor:.4g} × the expected ones everywhere: check constant factors "
                "(the ½ of the loss, a mean where a sum belongs).")
    return None


@dataclass(frozen=True)
class Spec:
    """What a check needs to know about one function students write.

    ``arguments`` builds the function's arguments from a case's arrays; ``reference``
    computes the expected outputs (torch.nn) and ``variant`` those of a mistake from the
    same arrays; ``outputs`` reads a returned value into named arrays.
    """

    name: str
    arg_names: tuple
    oracle: str
    gates: int
    tensors: bool
    arguments: Callable
    reference: Callable
    variant: Callable
    mistakes: Callable
    outputs: Callable
    sequence: bool = False
    cell: "Spec | None" = None   # for a sequence function: the spec of the cell it loops over


def _student_args(args, case, tensors):
    def convert(value):
        if isinstance(value, tuple):
            return tuple(convert(v) for v in value)
        array = value.astype(case.dtype)
        return torch.from_numpy(array) if tensors else array
    return tuple(convert(v) for v in args)


def _matching_mistake(spec, arrays, got, expected, graded):
    for mistake in spec.mistakes():
        try:
            with np.errstate(all="ignore"):
                value = spec.outputs(spec.variant(arrays, mistake))
        except M.NotApplicable:
            continue
        if (all(close(got[k], value[k]) for k in graded)
                and not all(close(value[k], expected[k]) for k in graded)):
            return mistake
    return None


def _verdict(spec, case, arrays, got, expected, graded, cause=None):
    """None when the graded outputs agree, otherwise the message explaining what is wrong.

    ``cause()``, when given, may return the lines that explain values which differ (the
    student's own cell, for a sequence answer); otherwise the usual mistakes are tried.
    """
    for key in graded:
        if got[key].shape != expected[key].shape:
            return (f"{spec.name} returned {key} of shape {got[key].shape}; expected {expected[key].shape} "
                    f"on the inputs {case.describe(spec.sequence)}.{_shape_hint(got[key], expected[key], case)}")
    wrong = [k for k in graded if not close(got[k], expected[k])]
    if not wrong:
        return None
    for key in wrong:
        if not np.all(np.isfinite(got[key])):
            return (f"{spec.name} returned {key} with NaN or infinite values on the inputs {case.describe(spec.sequence)}: "
                    "look for a division by zero, a log of 0, or an overflow (exp of a large number in float32).")
    lines = [f"{spec.name} is wrong on the inputs {case.describe(spec.sequence)} (compared with {spec.oracle}):"]
    lines += [_difference(k, got[k], expected[k], spec.sequence) for k in wrong]
    right = [k for k in graded if k not in wrong]
    if right:
        lines.append(f"  {', '.join(right)} {'is' if len(right) == 1 else 'are'} right.")
    explained = cause() if cause else None
    mistake = None if explained else _explaining_mistake(spec, arrays, got, expected, graded)
    if explained:
        lines += explained
    elif mistake is not None:
        lines.append(mistake.line())
    else:
        scaled = _scale_hint({k: got[k] for k in graded}, {k: expected[k] for k in graded})
        lines.append(scaled or "It matches none of the usual mistakes the tests know; "
                     "compare your code with the equations above, one line at a time.")
    return "\n".join(lines)


def _stacked(states):
    """The states a loop recorded, stacked over time into the outputs' arrays."""
    if isinstance(states[0], (tuple, list)):
        return tuple(np.stack([as_array(s[k], "the state") for s in states]) for k in range(len(states[0])))
    return np.stack([as_array(s, "the state") for s in states])


def _cell_lines(spec, cell, case, arrays, args, got, expected, graded):
    """When a sequence answer is a correct loop over the student's own wrong cell: the lines saying so.

    The student's ``cell`` is run step by step by a correct loop on the same inputs; if
    that gives exactly the sequence answer's (wrong) outputs, the loop is right and the
    error is the cell's. None otherwise (a cell that raises or returns something
    unreadable, or a loop that differs).
    """
    inner = spec.cell
    xs, state, *weights = _student_args(args, case, spec.tensors)
    try:
        states = []
        for x in xs:
            state = run_answer(cell, inner.name, inner.arg_names, (x, state, *weights), case.describe())
            states.append(state)
        looped = spec.outputs(_stacked(states))
        if not all(close(looped[k], got[k]) for k in graded):
            return None
        cell_args = _student_args(inner.arguments(arrays), case, inner.tensors)
        cell_got = inner.outputs(run_answer(cell, inner.name, inner.arg_names, cell_args, case.describe()))
    except CheckFailed:
        return None
    cell_expected = inner.outputs(inner.reference(arrays))
    # Named from the whole sequence first: over many steps the outputs can show what one
    # step cannot (a clip that only bites once |c_t| passes 1); else as the cell's own test.
    mistake = (_explaining_mistake(spec, arrays, got, expected, graded)
               or _explaining_mistake(inner, arrays, cell_got, cell_expected, list(cell_expected)))
    return [f"{FROM_EARLIER}{spec.name} returns exactly what your {inner.name} gives, step by step.",
            f"The error comes from {inner.name}, which its own test above already counts."
            + ("" if mistake else f" That test says what is wrong with {inner.name}."),
            *([mistake.line()] if mistake else [])]


def _explaining_mistake(spec, arrays, got, expected, graded):
    """The usual mistake that gives these outputs: a catalogued one first, else one found by
    its kind (:func:`rnnlab.grading.checks.kinds.explain`); None if neither."""
    mistake = _matching_mistake(spec, arrays, got, expected, graded)
    if mistake is not None:
        return mistake
    text = kinds.explain(spec.name, arrays, got, expected, close)
    return None if text is None else M.Mistake("by_kind", text)


def run_check(spec, answer, hidden=False, graded=None, what=None, cell=None):
    """Check ``answer`` against ``spec`` on the visible (and hidden) cases; print a line when right.

    ``graded`` names the outputs this check grades (all by default), ``what`` says them in
    words; ``cell`` is the student's cell function that a sequence answer loops over.
    """
    if not callable(answer):
        raise CheckFailed(f"{spec.name} must be a function; it is {type(answer).__name__}")
    chosen = cases(hidden)
    for case in chosen:
        arrays = case.draw(spec.gates)
        args = spec.arguments(arrays)
        result = run_answer(answer, spec.name, spec.arg_names, _student_args(args, case, spec.tensors),
                            case.describe(spec.sequence))
        expected = spec.outputs(spec.reference(arrays))
        graded_keys = list(graded or expected)
        try:
            got = spec.outputs(result)
        except Wrong as exc:
            raise CheckFailed(f"{spec.name}: {exc} (inputs {case.describe(spec.sequence)})") from None
        cause = None
        if callable(cell) and spec.cell is not None:
            cause = lambda: _cell_lines(spec, cell, case, arrays, args, got, expected,  # noqa: E731
                                         graded_keys)
        message = _verdict(spec, case, arrays, got, expected, graded_keys, cause)
        if message:
            raise CheckFailed(message)
    print(f"OK: {spec.name}{f' ({what})' if what else ''} agrees with {spec.oracle} on {len(chosen)} cases"
          f"{', the hidden ones included' if hidden else ''}.")


# --- the functions of the exercises -------------------------------------------------------

_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _weights(a):
    return tuple(a[k] for k in _WEIGHTS)


def _sequence_variant(cell):
    def variant(a, mistake, initial):
        step = lambda x, state: cell(x, state, *_weights(a), **mistake.cell)  # noqa: E731
        return M.run_sequence(step, a["xs"], initial(a), **mistake.loop)
    return variant


RNN_CELL = Spec(
    name="rnn_cell", arg_names=("x", "h") + _WEIGHTS, oracle="torch.nn.RNNCell", gates=1, tensors=False,
    arguments=lambda a: (a["x"], a["h"]) + _weights(a),
    reference=oracles.rnn_cell,
    variant=lambda a, m: M.rnn_cell(a["x"], a["h"], *_weights(a), **m.cell),
    mistakes=lambda: M.singles_then_pairs(M.RNN_CELL_MISTAKES),
    outputs=single("h_t"),
)

RNN_FORWARD = Spec(
    name="rnn_forward", arg_names=("xs", "h0") + _WEIGHTS, oracle="torch.nn.RNN", gates=1, tensors=False,
    arguments=lambda a: (a["xs"], a["h"]) + _weights(a),
    reference=oracles.rnn_forward,
    variant=lambda a, m: _sequence_variant(M.rnn_cell)(a, m, lambda a: a["h"]),
    mistakes=lambda: M.sequence_mistakes(M.RNN_CELL_MISTAKES),
    outputs=single("hs"), sequence=True, cell=RNN_CELL,
)

GRU_CELL = Spec(
    name="gru_cell", arg_names=("x", "h") + _WEIGHTS, oracle="torch.nn.GRUCell", gates=3, tensors=True,
    arguments=lambda a: (a["x"], a["h"]) + _weights(a),
    reference=oracles.gru_cell,
    variant=lambda a, m: M.gru_cell(a["x"], a["h"], *_weights(a), **m.cell),
    mistakes=lambda: M.singles_then_pairs(M.GRU_CELL_MISTAKES),
    outputs=single("h_t"),
)

GRU_FORWARD = Spec(
    name="gru_forward", arg_names=("xs", "h0") + _WEIGHTS, oracle="torch.nn.GRU", gates=3, tensors=True,
    arguments=lambda a: (a["xs"], a["h"]) + _weights(a),
    reference=oracles.gru_forward,
    variant=lambda a, m: _sequence_variant(M.gru_cell)(a, m, lambda a: a["h"]),
    mistakes=lambda: M.sequence_mistakes(M.GRU_CELL_MISTAKES),
    outputs=single("hs"), sequence=True, cell=GRU_CELL,
)

LSTM_CELL = Spec(
    name="lstm_cell", arg_names=("x", "state") + _WEIGHTS, oracle="torch.nn.LSTMCell", gates=4, tensors=True,
    arguments=lambda a: (a["x"], (a["h"], a["c"])) + _weights(a),
    reference=oracles.lstm_cell,
    variant=lambda a, m: M.lstm_cell(a["x"], (a["h"], a["c"]), *_weights(a), **m.cell),
    mistakes=lambda: M.singles_then_pairs(M.LSTM_CELL_MISTAKES),
    outputs=pair("h_t", "c_t"),
)

LSTM_FORWARD = Spec(
    name="lstm_forward", arg_names=("xs", "state0") + _WEIGHTS, oracle="torch.nn.LSTM", gates=4, tensors=True,
    arguments=lambda a: (a["xs"], (a["h"], a["c"])) + _weights(a),
    reference=oracles.lstm_forward,
    variant=lambda a, m: _sequence_variant(M.lstm_cell)(a, m, lambda a: (a["h"], a["c"])),
    mistakes=lambda: M.sequence_mistakes(M.LSTM_CELL_MISTAKES),
    outputs=pair("hs", "cs"), sequence=True, cell=LSTM_CELL,
)

RNN_BPTT = Spec(
    name="rnn_bptt", arg_names=("xs", "h0") + _WEIGHTS + ("target",), oracle="autograd through torch.nn.RNNCell",
    gates=1, tensors=False,
    arguments=lambda a: (a["xs"], a["h"]) + _weights(a) + (a["target"],),
    reference=oracles.rnn_bptt,
    variant=lambda a, m: M.rnn_bptt(a["xs"], a["h"], *_weights(a), a["target"], **m.flags),
    mistakes=lambda: M.singles_then_pairs(M.BPTT_MISTAKES),
    outputs=bptt_outputs, sequence=True,
)


def check_rnn_cell(rnn_cell, hidden=False):
    """``rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)`` against ``torch.nn.RNNCell``."""
    run_check(RNN_CELL, rnn_cell, hidden)


def check_rnn_forward(rnn_forward, hidden=False, cell=None):
    """``rnn_forward(xs, h0, ...)`` returning (T, B, H) against ``torch.nn.RNN``.

    ``cell``, the student's ``rnn_cell``, lets a failure say whether the loop or the cell is wrong.
    """
    run_check(RNN_FORWARD, rnn_forward, hidden, cell=cell)


def check_gru_cell(gru_cell, hidden=False):
    """``gru_cell(x, h, ...)`` (torch tensors in) against ``torch.nn.GRUCell``."""
    run_check(GRU_CELL, gru_cell, hidden)


def check_gru_forward(gru_forward, hidden=False, cell=None):
    """``gru_forward(xs, h0, ...)`` returning (T, B, H) against ``torch.nn.GRU``.

    ``cell``, the student's ``gru_cell``, lets a failure say whether the loop or the cell is wrong.
    """
    run_check(GRU_FORWARD, gru_forward, hidden, cell=cell)


def check_lstm_cell(lstm_cell, hidden=False):
    """``lstm_cell(x, (h, c), ...)`` returning ``(h_t, c_t)`` against ``torch.nn.LSTMCell``."""
    run_check(LSTM_CELL, lstm_cell, hidden)


def check_lstm_forward(lstm_forward, hidden=False, cell=None):
    """``lstm_forward(xs, (h0, c0), ...)`` returning ``(hs, cs)`` against ``torch.nn.LSTM``/``LSTMCell``.

    ``cell``, the student's ``lstm_cell``, lets a failure say whether the loop or the cell is wrong.
    """
    run_check(LSTM_FORWARD, lstm_forward, hidden, cell=cell)


def check_rnn_bptt_norms(rnn_bptt, hidden=False):
    """The ``norms`` that ``rnn_bptt`` returns: ‖dL/dh_t‖ per step, against autograd."""
    run_check(RNN_BPTT, rnn_bptt, hidden, graded=("norms",), what="the norms")


def check_rnn_bptt_gradients(rnn_bptt, hidden=False):
    """The four weight gradients that ``rnn_bptt`` returns, against autograd."""
    run_check(RNN_BPTT, rnn_bptt, hidden, graded=tuple(f"grads['{k}']" for k in _GRAD_NAMES),
              what="the four gradients")


# --- the parameter count -----------------------------------------------------------------

def check_whole_numbers(name, answer, argument_lists, expected, mistakes, mistaken, explain):
    """Check a function that returns a count on several argument lists.

    ``expected(*args)`` is the oracle, ``mistakes`` a catalogue (:mod:`.mistakes`) whose
    flags ``mistaken(*args, **flags)`` computes, and ``explain(args, got)`` says what is
    wrong on one call. The mistake named is one that agrees with *every* answer given, so
    that two mistakes which coincide on one call are told apart by the others.
    """
    answers = []
    for args in argument_lists:
        call = f"{name}{tuple(args)!r}"
        try:
            got = call_quietly(answer, args)
        except Exception as exc:  # a student's error of any kind becomes a message
            raise CheckFailed(explain_exception(name, exc, call)) from None
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        whole = isinstance(got, (int, np.integer)) or (isinstance(got, (float, np.floating)) and float(got).is_integer())
        if isinstance(got, bool) or not whole:
            raise CheckFailed(f"{call} returned {got!r}; expected a whole number")
        answers.append(int(got))
    wrong = [(args, got) for args, got in zip(argument_lists, answers) if got != expected(*args)]
    if not wrong:
        return
    args, got = wrong[0]
    lines = [explain(args, got)]
    matching = [m for m in mistakes if mistaken(*args, **m.flags) == got]
    consistent = [m for m in matching if all(mistaken(*a, **m.flags) == g for a, g in zip(argument_lists, answers))]
    named_ones = consistent or matching
    if named_ones:
        lines.append(named_ones[0].line())
    raise CheckFailed("\n".join(lines))


_COUNT_VISIBLE = ((3, 5, 1), (4, 4, 2))


def check_rnn_parameter_count(rnn_parameter_count, hidden=False):
    """``rnn_parameter_count(input_size, hidden_size, num_layers)`` against ``torch.nn.RNN``."""
    sizes = _COUNT_VISIBLE + (hidden_inputs("PARAMETER_COUNTS") if hidden else ())
    check_whole_numbers(
        "rnn_parameter_count", rnn_parameter_count, sizes, oracles.rnn_parameter_count,
        M.PARAMETER_COUNT_MISTAKES, M.rnn_parameter_count,
        lambda args, got: (f"rnn_parameter_count{args} returned {got}; torch.nn.RNN{args} has "
                           f"{oracles.rnn_parameter_count(*args)} parameters."))
    print(f"OK: rnn_parameter_count agrees with torch.nn.RNN on {len(sizes)} sizes"
          f"{', the hidden ones included' if hidden else ''}.")

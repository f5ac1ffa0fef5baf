"""Mistakes named by kind: the elementwise function applied, a gate order, a dropped term.

The catalogue of :mod:`rnnlab.grading.checks.mistakes` names the mistakes students usually make.
When an answer matches none of them, :func:`explain` searches whole kinds of mistake in a
cell (the vanilla RNN, the GRU or the LSTM, one step or a loop over time), each found by
recomputing the cell with that one change and comparing with the student's output:

- **a wrong elementwise function** in any place (the RNN's tanh; the GRU's gates and
  candidate; the LSTM's gates, candidate and the tanh of the cell state). The function is
  *recovered* from the student's own outputs: the cell's equations are solved for the
  values that place produced (for a loop over time, each step from the student's previous
  state), and those values are matched against a family of functions with their
  parameters fitted (ReLU, leaky ReLU with its slope, ELU with its α, a clip to any
  bounds, softsign, softplus, GELU, SiLU, hard sigmoid, identity, an affine map, ...). A
  function outside the family is described by its values at a few points. The same
  function in every gate at once is found by recomputation;
- **any permutation of the gate blocks**, read in one order from ``weight_ih``/``bias_ih``
  and in another (or the same) from ``weight_hh``/``bias_hh``;
- **any term of the equations left out**, or any two of them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import mistakes as M


@dataclass(frozen=True)
class Function:
    """An elementwise function with the name a student would recognise."""

    name: str
    apply: Callable


def _erf(a):
    return np.vectorize(math.erf, otypes=[float])(a)


def _sigmoid(a):
    return M.sigmoid(a)


def _softplus(a):
    return np.logaddexp(0.0, a)


FAMILY = [
    Function("the identity (nothing applied)", lambda a: a),
    Function("ReLU", lambda a: np.maximum(a, 0.0)),
    Function("ReLU6", lambda a: np.clip(a, 0.0, 6.0)),
    Function("the sigmoid σ", _sigmoid),
    Function("tanh", np.tanh),
    Function("softsign x / (1 + |x|)", lambda a: a / (1.0 + np.abs(a))),
    Function("softplus log(1 + eˣ)", _softplus),
    Function("GELU", lambda a: 0.5 * a * (1.0 + _erf(a / math.sqrt(2.0)))),
    Function("GELU (tanh approximation)",
             lambda a: 0.5 * a * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a ** 3)))),
    Function("SiLU (swish) x·σ(x)", lambda a: a * _sigmoid(a)),
    Function("Mish", lambda a: a * np.tanh(_softplus(a))),
    Function("SELU", lambda a: 1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * np.expm1(np.minimum(a, 0)))),
    Function("hard sigmoid (PyTorch's, ReLU6(x + 3) / 6)", lambda a: np.clip(a + 3.0, 0.0, 6.0) / 6.0),
    Function("hard sigmoid (Keras's, clip(0.2x + 0.5, 0, 1))", lambda a: np.clip(0.2 * a + 0.5, 0.0, 1.0)),
    Function("hard swish", lambda a: a * np.clip(a + 3.0, 0.0, 6.0) / 6.0),
    Function("log-sigmoid", lambda a: -_softplus(-a)),
    Function("tanh(x / 2) = 2σ(x) − 1", lambda a: np.tanh(0.5 * a)),
    Function("the scaled tanh 1.7159·tanh(2x/3) (LeCun)", lambda a: 1.7159 * np.tanh(2.0 * a / 3.0)),
    Function("the absolute value", np.abs),
    Function("tanhshrink x − tanh(x)", lambda a: a - np.tanh(a)),
    Function("exp", np.exp),
    Function("the square x²", np.square),
    Function("sin", np.sin),
    Function("arctan", np.arctan),
]


def _fitted(a, y) -> list[Function]:
    """Members of families with a parameter, the parameter read off the samples ``(a, y)``."""
    found = []
    below = a < -1e-3
    if below.any():
        slope = float(np.median(y[below] / a[below]))
        if 0.0 < abs(slope) < 1.0:
            found.append(Function(f"leaky ReLU (slope {slope:.3g} below 0)",
                                  lambda v, s=slope: np.where(v > 0, v, s * v)))
        alpha = float(np.median(y[below] / np.expm1(a[below])))
        if 0.0 < alpha < 10.0:
            found.append(Function(f"ELU (α = {alpha:.3g})", lambda v, s=alpha: np.where(v > 0, v, s * np.expm1(v))))
    for base, said in ((np.tanh, "tanh"), (_sigmoid, "σ")):
        scale = float(np.median(y / base(a))) if np.all(np.abs(base(a)) > 1e-3) else 0.0
        if abs(scale) > 1e-3 and abs(scale - 1.0) > 1e-3:
            found.append(Function(f"{scale:.4g}·{said}(x)", lambda v, c=scale, f=base: c * f(v)))
    # A clip's bound is read off the outputs only where some input went past it; a bound
    # no input reached is not named (it may be anywhere beyond the inputs, or absent).
    low, high = float(np.min(y)), float(np.max(y))
    low_seen, high_seen = bool(np.any(a < low - 1e-9)), bool(np.any(a > high + 1e-9))
    if high - low > 1e-6 and (low_seen or high_seen):   # a range of rounding noise is a constant
        if low_seen and high_seen:
            name = "hard tanh (a clip to [−1, 1])" if (round(low, 6), round(high, 6)) == (-1.0, 1.0) else \
                f"a clip to [{low:.3g}, {high:.3g}]"
        else:
            name = f"a clip from above at {high:.3g}" if high_seen else f"a clip from below at {low:.3g}"
            low, high = (low, np.inf) if low_seen else (-np.inf, high)
        found.append(Function(name.replace("-0,", "0,").replace("[−0", "[0"),
                              lambda v, lo=low, hi=high: np.clip(v, lo, hi)))
    if a.size >= 2 and np.ptp(a) > 0:
        scale, offset = np.polyfit(a, y, 1)
        if abs(scale) > 1e-6 and (abs(scale - 1.0) > 1e-6 or abs(offset) > 1e-9):
            found.append(Function(f"the linear map {scale:.4g}·x {'+' if offset >= 0 else '−'} {abs(offset):.4g}",
                                  lambda v, s=scale, t=offset: s * v + t))
    return found


def _described(a, y) -> str | None:
    """Words for an elementwise function outside the family, when the samples are one."""
    order = np.argsort(a)
    a, y = a[order], y[order]
    if a.size < 8 or np.ptp(a) <= 0 or np.ptp(y) <= 0:
        return None
    # A function of a: it turns at most twice, and each sample is near what its two
    # neighbours predict (leave one out, linear), as for any smooth curve sampled this densely.
    slopes = np.sign(np.diff(y))
    if np.count_nonzero(np.diff(slopes[slopes != 0])) > 2:
        return None
    inner = np.arange(1, a.size - 1)
    span = a[inner + 1] - a[inner - 1]
    ok = span > 0
    weight = (a[inner][ok] - a[inner - 1][ok]) / span[ok]
    predicted = y[inner - 1][ok] + weight * (y[inner + 1][ok] - y[inner - 1][ok])
    if np.max(np.abs(predicted - y[inner][ok])) > 0.15 * np.ptp(y):
        return None
    points = [p for p in (-2.0, -1.0, 0.0, 1.0, 2.0) if a[0] <= p <= a[-1]] or [float(a[0]), float(a[-1])]
    values = ", ".join(f"f({p:g}) ≈ {np.interp(p, a, y):.3g}" for p in points)
    return f"an elementwise function the tests do not know by name: read from your outputs, {values}"


@dataclass(frozen=True)
class Step:
    """One step of a cell over a stacked batch: inputs, the weights, the student's new state."""

    x: np.ndarray
    state: tuple          # (h,) or (h, c)
    weights: tuple
    got: tuple            # the student's (h_t,) or (h_t, c_t)


# What each place of each cell applies, and how it reads in a message.
PLACES = {
    "rnn": {"h": ("tanh", "h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)")},
    "gru": {"n": ("tanh", "the candidate n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))"),
            "z": ("sigmoid", "the update gate z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)"),
            "r": ("sigmoid", "the reset gate r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)")},
    "lstm": {"g": ("tanh", "the candidate g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)"),
             "c": ("tanh", "h_t = o_t ⊙ tanh(c_t), the tanh of the new cell state"),
             "i": ("sigmoid", "the input gate i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)"),
             "f": ("sigmoid", "the forget gate f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)"),
             "o": ("sigmoid", "the output gate o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)")},
}
GROUPS = {"gru": [("r", "z")], "lstm": [("i", "f", "o"), ("g", "c")]}
GATES = {"rnn": "", "gru": "rzn", "lstm": "ifgo"}
TERMS = {
    "rnn": ["W_ih x", "b_ih", "W_hh h", "b_hh"],
    "gru": [f"{w}{g} {v}" for g in "rzn" for w, v in (("W_i", "x"), ("W_h", "h"))]
    + [f"b_{s}{g}" for g in "rzn" for s in "ih"] + ["(1 - z) n", "z h"],
    "lstm": [f"{w}{g} {v}" for g in "ifgo" for w, v in (("W_i", "x"), ("W_h", "h"))]
    + [f"b_{s}{g}" for g in "ifgo" for s in "ih"] + ["f c", "i g"],
}
_CELLS = {"rnn": M.rnn_cell, "gru": M.gru_cell, "lstm": M.lstm_cell}


def _said(term: str) -> str:
    """A term as the equations write it: W_hz h -> W_hz h_{t-1}, (1 - z) n -> (1 − z_t) ⊙ n_t."""
    words = {"x": "x_t", "h": "h_{t-1}", "(1 - z) n": "(1 − z_t) ⊙ n_t", "z h": "z_t ⊙ h_{t-1}",
             "f c": "f_t ⊙ c_{t-1}", "i g": "i_t ⊙ g_t"}
    if term in words:
        return words[term]
    head, _, tail = term.partition(" ")
    return f"{head} {words.get(tail, tail)}".strip()


def _outputs(cell, step: Step, **flags):
    state = step.state if cell == "lstm" else step.state[0]
    with np.errstate(all="ignore"):
        out = _CELLS[cell](step.x, state, *step.weights, **flags)
    return out if isinstance(out, tuple) else (out,)


def _matches(cell, step, close, flags) -> bool:
    try:
        out = _outputs(cell, step, **flags)
    except (M.NotApplicable, ValueError, FloatingPointError):
        return False
    return all(np.shape(o) == g.shape and np.all(np.isfinite(o)) and close(g, o) for g, o in zip(step.got, out))


def _correct(cell, step) -> dict:
    """The correct intermediate values of one step: pre-activations and gates by place."""
    x, weights, hidden = step.x, step.weights, step.state[0].shape[1]
    if cell == "rnn":
        return {"a_h": M.affine(x, weights[0], weights[2]) + M.affine(step.state[0], weights[1], weights[3])}
    parts = M._gate_terms(x, step.state[0], *weights, GATES[cell], GATES[cell], (), False, False, hidden)
    values = {f"a_{g}": sum(parts[g]) for g in parts}
    if cell == "gru":
        values.update(r=_sigmoid(values["a_r"]), z=_sigmoid(values["a_z"]), i_n=parts["n"][0], h_n=parts["n"][1])
        values["a_n"] = values["i_n"] + values["r"] * values["h_n"]
        values["n"] = np.tanh(values["a_n"])
    else:
        values.update({g: _sigmoid(values[f"a_{g}"]) for g in "ifo"}, g=np.tanh(values["a_g"]))
        values["c_new"] = values["f"] * step.state[1] + values["i"] * values["g"]
        values["a_c"] = values["c_new"]
    return values


def _samples(cell, place, step):
    """(pre-activation, value the student's function gave) at ``place``, solved from the outputs."""
    v, got = _correct(cell, step), step.got
    h = step.state[0]
    with np.errstate(all="ignore"):
        if cell == "rnn":
            a, y, keep = v["a_h"], got[0], np.ones_like(got[0], dtype=bool)
        elif cell == "gru":
            if place == "n":
                a, y, keep = v["a_n"], (got[0] - v["z"] * h) / (1.0 - v["z"]), 1.0 - v["z"] > 0.02
            elif place == "z":
                a, y, keep = v["a_z"], (got[0] - v["n"]) / (h - v["n"]), np.abs(h - v["n"]) > 0.02
            else:
                n = (got[0] - v["z"] * h) / (1.0 - v["z"])
                y = (np.arctanh(np.clip(n, -0.999999, 0.999999)) - v["i_n"]) / v["h_n"]
                a, keep = v["a_r"], (1.0 - v["z"] > 0.02) & (np.abs(n) < 0.99) & (np.abs(v["h_n"]) > 0.05)
        else:
            h_new, c_new = got
            c = step.state[1]
            if place == "c":
                a, y, keep = v["c_new"], h_new / v["o"], v["o"] > 0.02
            elif place == "o":
                a, y, keep = v["a_o"], h_new / np.tanh(c_new), np.abs(np.tanh(c_new)) > 0.02
            elif place == "g":
                a, y, keep = v["a_g"], (c_new - v["f"] * c) / v["i"], v["i"] > 0.02
            elif place == "i":
                a, y, keep = v["a_i"], (c_new - v["f"] * c) / v["g"], np.abs(v["g"]) > 0.02
            else:
                a, y, keep = v["a_f"], (c_new - v["i"] * v["g"]) / c, np.abs(c) > 0.02
    keep = keep & np.isfinite(y)
    return np.asarray(a)[keep].ravel(), np.asarray(y)[keep].ravel()


def _functions(cell, step, close):
    """A message for a wrong elementwise function at one place, or at every gate at once."""
    places = PLACES[cell]
    flags = (lambda place, f: {"activation": f}) if cell == "rnn" else (lambda place, f: {"activations": {place: f}})
    samples = {place: _samples(cell, place, step) for place in places}
    for place, (right, phrase) in places.items():
        a, y = samples[place]
        if a.size == 0:
            continue
        for function in FAMILY + _fitted(a, y):
            if function.name == _right(right):
                continue
            with np.errstate(all="ignore"):
                agrees = np.allclose(function.apply(a), y, rtol=1e-3, atol=1e-4)
            if agrees and _matches(cell, step, close, flags(place, function.apply)):
                return f"{phrase}, but your outputs apply {function.name} there instead of {_right(right)}."
    for group in GROUPS.get(cell, ()):
        right = places[group[0]][0]
        for function in FAMILY:
            if function.name == _right(right):
                continue
            if _matches(cell, step, close, {"activations": {place: function.apply for place in group}}):
                names = [f"{p}_t" for p in group]
                said = " and ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " and " + names[-1]
                return (f"{said} all apply {function.name} where {_right(right)} belongs: "
                        + "; ".join(places[p][1] for p in group) + ".")
    # A function outside the family: the place whose values, read from half of the outputs,
    # predict all of them best, if they predict them well.
    fits = []
    for place, (right, phrase) in places.items():
        a, y = samples[place]
        described = _described(a, y)
        if described is None or np.allclose(_right_function(right)(a), y, rtol=1e-3, atol=1e-4):
            continue
        order = np.argsort(a)
        half = _interpolant(a[order][::2], y[order][::2])
        error = _error(cell, step, flags(place, half))
        if error is not None:
            fits.append((error, place, described))
    if fits:
        _, place, described = min(fits)
        right, phrase = places[place]
        return f"{phrase}, but your outputs apply {described}, not {_right(right)}."
    return None


def _interpolant(a, y):
    order = np.argsort(a)
    return lambda v: np.interp(v, a[order], y[order])


def _error(cell, step, flags) -> float | None:
    """How far, relative to its range, the output is from the cell using ``flags``; None
    when farther than 5 %: what a function read off some outputs can promise about all."""
    try:
        out = _outputs(cell, step, **flags)
    except (M.NotApplicable, ValueError, FloatingPointError):
        return None
    worst = 0.0
    for g, o in zip(step.got, out):
        if np.shape(o) != g.shape or not np.all(np.isfinite(o)):
            return None
        worst = max(worst, float(np.max(np.abs(g - o), initial=0.0)) / max(1.0, float(np.ptp(g))))
    return worst if worst <= 0.05 else None


def _right(name):
    return "the sigmoid σ" if name == "sigmoid" else name


def _right_function(name):
    return _sigmoid if name == "sigmoid" else np.tanh


def _orders(cell, step, close):
    gates = GATES[cell]
    if not gates:
        return None
    for order_ih, order_hh in itertools.product(map("".join, itertools.permutations(gates)), repeat=2):
        if (order_ih, order_hh) == (gates, gates):
            continue
        if _matches(cell, step, close, {"order": order_ih, "order_hh": order_hh}):
            read = (f"weight_ih and bias_ih as {', '.join(order_ih)} and weight_hh and bias_hh as {', '.join(order_hh)}"
                    if order_ih != order_hh else f"all four as {', '.join(order_ih)}")
            return (f"gate blocks taken in the wrong order: you read {read}; torch.nn stacks "
                    f"{', '.join(gates)} in weight_ih, weight_hh and both biases.")
    return None


def _dropped(cell, step, close):
    terms = TERMS[cell]
    for count in (1, 2):
        for dropped in itertools.combinations(terms, count):
            if _matches(cell, step, close, {"drop": dropped}):
                listed = " and ".join(_said(t) for t in dropped)
                return (f"the term{'s' if count > 1 else ''} {listed} {'are' if count > 1 else 'is'} missing: "
                        f"{_equations(cell)}")
    return None


def _equations(cell) -> str:
    return {"rnn": "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).",
            "gru": "each gate sums W_i· x_t + b_i· + W_h· h_{t-1} + b_h·, and h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}.",
            "lstm": "each gate sums W_i· x_t + b_i· + W_h· h_{t-1} + b_h·, and c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t."}[cell]


def _step(name, arrays, got) -> tuple[str, Step] | None:
    """The cell and one stacked step holding every step of the answer's output."""
    cell, _, what = name.partition("_")
    if cell not in _CELLS or what not in ("cell", "forward"):
        return None
    weights = tuple(arrays[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    keys = {"cell": ("h_t", "c_t"), "forward": ("hs", "cs")}[what][:2 if cell == "lstm" else 1]
    if any(k not in got for k in keys):
        return None
    outputs = tuple(np.asarray(got[k], dtype=np.float64) for k in keys)
    initial = (arrays["h"], arrays["c"])[:len(keys)]
    if what == "cell":
        return cell, Step(arrays["x"], initial, weights, outputs)
    # Step t starts from the student's own state after step t − 1: one stacked batch.
    states = tuple(np.concatenate([s[None], o[:-1]]) for s, o in zip(initial, outputs))
    flat = lambda v: v.reshape(-1, v.shape[-1])  # noqa: E731
    return cell, Step(flat(arrays["xs"]), tuple(flat(s) for s in states), weights, tuple(flat(o) for o in outputs))


def explain(name: str, arrays: dict, got: dict, expected: dict, close) -> str | None:
    """A message naming the kind of mistake of the answer ``name`` on a case, or None.

    ``arrays`` are the case's inputs, ``got`` and ``expected`` the graded outputs by
    label, ``close`` the check's comparison.
    """
    found = _step(name, arrays, got)
    if found is None:
        return None
    cell, step = found
    reference = _outputs(cell, step)
    if all(close(g, r) for g, r in zip(step.got, reference)):
        return None  # right step by step (the loop itself is wrong: the catalogue's business)
    for search in (_functions, _orders, _dropped):
        message = search(cell, step, close)
        if message:
            return message
    return None

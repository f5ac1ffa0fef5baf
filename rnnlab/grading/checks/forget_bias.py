"""The check of ``set_forget_gate_bias(lstm, value)`` (assignment lstm_cell).

``torch.nn.LSTM`` adds two bias vectors, ``bias_ih`` and ``bias_hh``, each stacking the
gates i, f, g, o; the forget gate sees ``b_if + b_hf``, the sum of rows ``H:2H`` of both.
A correct answer leaves that sum equal to ``value`` in every layer and direction and
changes nothing else. The check reads the parameters before and after the call and says
which of the usual mistakes explains what changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import mistakes as M
from .calling import CheckFailed, call_quietly, explain_exception, hidden_inputs

VISIBLE = (
    dict(input_size=3, hidden_size=4, num_layers=1, bidirectional=False, value=1.0, seed=1),
    dict(input_size=2, hidden_size=3, num_layers=2, bidirectional=False, value=2.0, seed=2),
)


def _describe(config):
    return (f"torch.nn.LSTM({config['input_size']}, {config['hidden_size']}, "
            f"num_layers={config['num_layers']}, bidirectional={config['bidirectional']}) "
            f"and value = {config['value']}")


def _build(config):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        return torch.nn.LSTM(config["input_size"], config["hidden_size"], num_layers=config["num_layers"],
                             bidirectional=config["bidirectional"])


def _block(vector, k, hidden):
    return vector[k * hidden:(k + 1) * hidden]


@dataclass(frozen=True)
class _Parameter:
    """One parameter of the LSTM after the call, beside its value before."""

    name: str
    is_parameter: bool
    requires_grad: bool
    shape: tuple
    old_shape: tuple
    kind: str = "parameter"


@dataclass(frozen=True)
class _Whole:
    """What the call changed in the LSTM as a whole."""

    changed_weights: list
    unchanged: bool
    kind: str = "lstm"


@dataclass(frozen=True)
class _Layer:
    """The biases of one layer and direction after the call: what the forget gate's sum is,
    and which blocks changed (``names`` are its ``bias_ih``/``bias_hh``; indices refer to them)."""

    where: str
    names: tuple
    value: float
    bidirectional: bool
    right: bool                 # b_if + b_hf equals value
    changed_block: tuple | None  # (index into names, gate k) of the first other gate's block that changed
    forget_unchanged: bool      # neither forget-gate block changed
    set_to_value: tuple         # for each of b_if, b_hf: it equals value
    only_set: int | None        # index of the one forget-gate block set to value, the other unchanged
    kind: str = "layer"


def _layer(config, lstm, before, suffix):
    hidden, value = config["hidden_size"], config["value"]
    where = f"layer {suffix[2]}" + (", reverse direction" if suffix.endswith("_reverse") else "")
    names = (f"bias_ih{suffix}", f"bias_hh{suffix}")
    old = [before[n] for n in names]
    new = [getattr(lstm, n).detach() for n in names]
    changed = next(((i, k) for i in range(2) for k in (0, 2, 3)
                    if not torch.equal(_block(old[i], k, hidden), _block(new[i], k, hidden))), None)
    old_f = [_block(o, 1, hidden) for o in old]
    new_f = [_block(n, 1, hidden) for n in new]
    total = (new_f[0] + new_f[1]).double()
    set_to_value = tuple(torch.allclose(n.double(), torch.full_like(n, value).double()) for n in new_f)
    return _Layer(
        where=where, names=names, value=value, bidirectional=config["bidirectional"],
        right=torch.allclose(total, torch.full_like(total, value), rtol=1e-6, atol=1e-6),
        changed_block=changed,
        forget_unchanged=all(torch.equal(o, n) for o, n in zip(old_f, new_f)),
        set_to_value=set_to_value,
        only_set=next((k for k in range(2) if set_to_value[k] and torch.equal(old_f[1 - k], new_f[1 - k])), None),
    ), total


def _problem(config, lstm, before):
    """None if the LSTM's parameters are right after the call, else the lines saying what is wrong.

    What the call changed is read in the order of :data:`~.mistakes.FORGET_BIAS_MISTAKES`
    (each parameter, the whole LSTM, each layer), lazily, and the first named mistake it
    shows is the answer's; a layer whose sum is wrong for no named reason is described.
    """
    for name, old in before.items():
        new = getattr(lstm, name, None)
        seen = _Parameter(name, isinstance(new, torch.nn.Parameter), getattr(new, "requires_grad", False),
                          tuple(getattr(new, "shape", ())), tuple(old.shape))
        shown = M.first_found(M.FORGET_BIAS_MISTAKES, seen)
        if shown:
            return shown
    whole = _Whole(
        changed_weights=[n for n in before if n.startswith("weight") and not torch.equal(before[n], getattr(lstm, n).detach())],
        unchanged=all(torch.equal(old, getattr(lstm, name).detach()) for name, old in before.items()))
    shown = M.first_found(M.FORGET_BIAS_MISTAKES, whole)
    if shown:
        return shown
    for suffix in sorted({n[len("bias_ih"):] for n in before if n.startswith("bias_ih")}):
        layer, total = _layer(config, lstm, before, suffix)
        shown = M.first_found(M.FORGET_BIAS_MISTAKES, layer)
        if shown:
            return shown
        if not layer.right:
            return (f"the forget gate's bias b_if + b_hf of {layer.where} is "
                    f"{np.round(total.numpy(), 4).tolist()}, not {config['value']} everywhere.")
    return None


def check_set_forget_gate_bias(set_forget_gate_bias, hidden=False):
    """After ``set_forget_gate_bias(lstm, value)``, ``b_if + b_hf = value`` everywhere and nothing else changed."""
    configs = VISIBLE + (hidden_inputs("FORGET_BIAS_LSTMS") if hidden else ())
    for config in configs:
        lstm = _build(config)
        before = {name: p.detach().clone() for name, p in lstm.named_parameters()}
        try:
            call_quietly(set_forget_gate_bias, (lstm, config["value"]))
        except Exception as exc:  # a student's error of any kind becomes a message
            raise CheckFailed(explain_exception("set_forget_gate_bias", exc, _describe(config))) from None
        problem = _problem(config, lstm, before)
        if problem:
            raise CheckFailed(f"set_forget_gate_bias is wrong on {_describe(config)}:\n"
                              + (f"  {problem}" if isinstance(problem, str) else problem[0].line(**problem[1])))
    print(f"OK: set_forget_gate_bias is right on {len(configs)} LSTMs"
          f"{', the hidden ones included' if hidden else ''}.")

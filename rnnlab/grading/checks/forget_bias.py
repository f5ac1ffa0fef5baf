"""The check of ``set_forget_gate_bias(lstm, value)`` (assignment lstm_cell).

``torch.nn.LSTM`` adds two bias vectors, ``bias_ih`` and ``bias_hh``, each stacking the
gates i, f, g, o; the forget gate sees ``b_if + b_hf``, the sum of rows ``H:2H`` of both.
A correct answer leaves that sum equal to ``value`` in every layer and direction and
changes nothing else. The check reads the parameters before and after the call and says
which of the usual mistakes explains what changed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..messages import named
from .calling import CheckFailed, call_quietly, explain_exception, hidden_inputs

GATES = ("input (i)", "forget (f)", "candidate (g)", "output (o)")
ROWS = ("0:H", "H:2H", "2H:3H", "3H:4H")

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


class _Unnamed(str):
    """What is wrong, when it is none of the usual mistakes."""


def _problem(config, lstm, before):
    """None if the LSTM's parameters are right after the call, else what is wrong: the usual
    mistake it shows, or an :class:`_Unnamed` description."""
    hidden, value = config["hidden_size"], config["value"]
    for name, old in before.items():
        new = getattr(lstm, name, None)
        if not isinstance(new, torch.nn.Parameter):
            return (f"lstm.{name} is no longer a torch.nn.Parameter: change the values inside the parameter "
                    "(with torch.no_grad(): lstm.bias_ih_l0[...] = ...) instead of replacing it.")
        if not new.requires_grad:
            return f"lstm.{name} no longer requires gradients: the biases must stay trainable."
        if new.shape != old.shape:
            return f"lstm.{name} has shape {tuple(new.shape)}; it must keep its shape {tuple(old.shape)}."
    weights = [n for n in before if n.startswith("weight") and not torch.equal(before[n], getattr(lstm, n).detach())]
    if weights:
        return f"you changed {', '.join(weights)}: only the forget gate's biases should change."
    if all(torch.equal(old, getattr(lstm, name).detach()) for name, old in before.items()):
        return ("nothing in the LSTM changed: set the biases of the LSTM you are given, in place "
                "(with torch.no_grad(): ...); returning a new tensor or a new LSTM does not change it.")
    for suffix in sorted({n[len("bias_ih"):] for n in before if n.startswith("bias_ih")}):
        where = f"layer {suffix[2]}" + (", reverse direction" if suffix.endswith("_reverse") else "")
        names = (f"bias_ih{suffix}", f"bias_hh{suffix}")
        old = [before[n] for n in names]
        new = [getattr(lstm, n).detach() for n in names]
        for name, o, n in zip(names, old, new):
            for k in (0, 2, 3):
                if not torch.equal(_block(o, k, hidden), _block(n, k, hidden)):
                    return (f"you changed {name}[{ROWS[k]}], the {GATES[k]} gate's bias ({where}): torch.nn "
                            "stacks the gates i, f, g, o, so the forget gate is the second block, rows H:2H.")
        old_f = [_block(o, 1, hidden) for o in old]
        new_f = [_block(n, 1, hidden) for n in new]
        total = (new_f[0] + new_f[1]).double()
        if torch.allclose(total, torch.full_like(total, value), rtol=1e-6, atol=1e-6):
            continue
        if all(torch.equal(o, n) for o, n in zip(old_f, new_f)):
            return (f"the forget gate's bias of {where} was not changed: set it in every layer"
                    + (" and both directions (the *_reverse parameters)" if config["bidirectional"] else "") + ".")
        both_value = [torch.allclose(n.double(), torch.full_like(n, value).double()) for n in new_f]
        if all(both_value):
            return (f"both b_if and b_hf are set to {value} ({where}), so the forget gate's bias, their sum, is "
                    f"{2 * value}: set one of them to {value} and the other to 0.")
        for k, name in enumerate(names):
            if both_value[k] and torch.equal(old_f[1 - k], new_f[1 - k]):
                return (f"only {name}[H:2H] was set ({where}): the forget gate adds b_if and b_hf, and "
                        f"{names[1 - k]}[H:2H] still holds its random initial values, so the sum is not {value}. "
                        f"Set {names[1 - k]}[H:2H] to 0.")
        return _Unnamed(f"the forget gate's bias b_if + b_hf of {where} is "
                        f"{np.round(total.numpy(), 4).tolist()}, not {value} everywhere.")
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
                              + (f"  {problem}" if isinstance(problem, _Unnamed) else named(problem)))
    print(f"OK: set_forget_gate_bias is right on {len(configs)} LSTMs"
          f"{', the hidden ones included' if hidden else ''}.")

"""The checks of assignment gru_vs_lstm: a parameter budget, training runs, their summary.

Training results vary with the seed and the machine, so these checks grade what a run
must satisfy whatever it learned: the model is the cell asked for at the largest hidden
size within the budget, training ran for the budget's steps on the task (its first loss
is that of an untrained classifier), every seed gives its own run, and the same seed
gives the same run again. Parameter counts come from real ``torch.nn`` modules.
"""

from __future__ import annotations

import math

import torch

from ...sizing import hidden_size_for_budget, parameter_count
from . import mistakes as M
from .calling import CheckFailed, call_quietly, explain_exception, hidden_inputs
from .recurrent import check_whole_numbers

CELLS = ("gru", "lstm")


def _recurrent_class(cell):
    return {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]


def _model(cell, input_size, output_size, hidden_size):
    """A ``cell`` layer of ``hidden_size`` units and a linear read-out, as torch.nn modules."""
    return torch.nn.ModuleList([_recurrent_class(cell)(input_size, hidden_size),
                                torch.nn.Linear(hidden_size, output_size)])


def model_parameters(cell, input_size, output_size, hidden_size):
    """Parameters of a ``cell`` layer of ``hidden_size`` units plus a linear read-out, counted on torch.nn modules."""
    with torch.random.fork_rng(devices=[]):
        return parameter_count(_model(cell, input_size, output_size, hidden_size))


def largest_hidden_size(cell, input_size, output_size, budget):
    """The largest hidden size whose model has at most ``budget`` parameters: the book's one
    budget rule, :func:`rnnlab.sizing.hidden_size_for_budget`, over torch.nn modules."""
    return hidden_size_for_budget(lambda hidden: _model(cell, input_size, output_size, hidden), budget)


_BUDGET_VISIBLE = (("gru", 8, 4, 1500), ("lstm", 8, 4, 1500))


def check_hidden_size_for_budget(hidden_size_for_budget, hidden=False):
    """``hidden_size_for_budget(cell, input_size, output_size, budget)`` against counts of torch.nn modules."""
    sizes = _BUDGET_VISIBLE + (hidden_inputs("BUDGETS") if hidden else ())
    def explain(args, got):
        expected = largest_hidden_size(*args)
        return ("hidden_size_for_budget{!r} returned {}; the largest hidden size that fits is {} ".format(args, got, expected)
                + f"({model_parameters(*args[:3], expected)} parameters; {expected + 1} units would need "
                f"{model_parameters(*args[:3], expected + 1)}).")

    check_whole_numbers("hidden_size_for_budget", hidden_size_for_budget, sizes, largest_hidden_size,
                        M.BUDGET_MISTAKES, M.hidden_size_for_budget, explain)
    print(f"OK: hidden_size_for_budget agrees with torch.nn's parameter counts on {len(sizes)} budgets"
          f"{', the hidden ones included' if hidden else ''}.")


def _check_run(cell, seed, run, task, budget, steps, eval_every):
    where = f"runs[{cell!r}] for seed {seed}"
    if not isinstance(run, (tuple, list)) or len(run) != 2:
        raise CheckFailed(f"{where} must be the pair (model, history) that train_cell returns; got {type(run).__name__}")
    model, history = run
    recurrent = getattr(model, "recurrent", None)
    if not isinstance(model, torch.nn.Module) or recurrent is None:
        raise CheckFailed(f"{where}: the model must be an rnnlab SequenceModel (a recurrent layer and a read-out); "
                             f"got {type(model).__name__}")
    kind = getattr(recurrent, "mode", type(recurrent).__name__).upper()
    if cell.upper() not in kind:
        raise CheckFailed(f"{where}: the recurrent layer is {type(recurrent).__name__}; train_cell({cell!r}, ...) "
                             f"must build a {cell.upper()}.")
    if getattr(recurrent, "input_size", None) != task.input_size:
        raise CheckFailed(f"{where}: the layer reads {getattr(recurrent, 'input_size', None)} inputs per step; "
                             f"the task has {task.input_size} (TASK.input_size).")
    count = sum(p.numel() for p in model.parameters())
    expected_hidden = largest_hidden_size(cell, task.input_size, task.output_size, budget)
    if count > budget:
        raise CheckFailed(f"{where}: the model has {count} parameters, over the budget of {budget}.")
    if recurrent.hidden_size != expected_hidden:
        raise CheckFailed(f"{where}: hidden size {recurrent.hidden_size}; the largest that fits the budget of "
                             f"{budget} parameters is {expected_hidden} (use hidden_size_for_budget).")
    if not hasattr(history, "loss") or not hasattr(history, "eval_accuracy"):
        raise CheckFailed(f"{where}: the history must be what rnnlab.train returns; got {type(history).__name__}")
    if getattr(history, "diverged", False):
        raise CheckFailed(f"{where}: training diverged (a loss that is not finite); keep the learning rate LR.")
    if len(history.loss) != steps:
        raise CheckFailed(f"{where}: {len(history.loss)} training steps recorded; the budget is STEPS = {steps}.")
    wanted_evals = list(range(eval_every, steps + 1, eval_every))
    if wanted_evals[-1] != steps:
        wanted_evals.append(steps)
    if list(history.eval_step) != wanted_evals:
        raise CheckFailed(f"{where}: evaluated at steps {list(history.eval_step)[:8]}…; pass eval_every=EVAL_EVERY "
                             f"to rnnlab.train so that it evaluates every {eval_every} steps.")
    chance = math.log(task.output_size)
    if not abs(history.loss[0] - chance) < 0.3:
        raise CheckFailed(f"{where}: the first loss is {history.loss[0]:.3f}; an untrained classifier of "
                             f"{task.output_size} classes starts near ln {task.output_size} = {chance:.3f}. "
                             "Train a fresh model on TASK.")


def check_training_runs(runs, train_cell, *, task, budget, steps, seeds, eval_every, hidden=False):
    """What ``train_cell`` returned for every cell and seed, and (hidden) that a seed reproduces its run."""
    if not isinstance(runs, dict) or sorted(runs) != sorted(CELLS):
        raise CheckFailed(f"runs must be a dict with the keys 'gru' and 'lstm'; got {type(runs).__name__}"
                             + (f" with keys {sorted(runs)}" if isinstance(runs, dict) else ""))
    for cell in CELLS:
        if len(runs[cell]) != len(seeds):
            raise CheckFailed(f"runs[{cell!r}] holds {len(runs[cell])} runs; expected one per seed in SEEDS = {seeds}.")
        for seed, run in zip(seeds, runs[cell]):
            _check_run(cell, seed, run, task, budget, steps, eval_every)
        curves = {tuple(run[1].loss) for run in runs[cell]}
        if len(curves) < len(seeds):
            raise CheckFailed(f"two seeds of runs[{cell!r}] gave identical training: use the seed both to build "
                                 "the model (torch.manual_seed(seed)) and in rnnlab.train(..., seed=seed).")
    if hidden:
        cell, index = hidden_inputs("REPEATED_RUN")
        seed = seeds[index]
        try:
            again = call_quietly(train_cell, (cell, seed))
        except Exception as exc:  # a student's error of any kind becomes a message
            raise CheckFailed(explain_exception("train_cell", exc, f"({cell!r}, {seed})")) from None
        first = runs[cell][index]
        if not isinstance(again, (tuple, list)) or len(again) != 2 or list(again[1].loss) != list(first[1].loss):
            initial_same = (isinstance(again, (tuple, list)) and len(again) == 2
                            and isinstance(again[0], torch.nn.Module)
                            and all(torch.equal(a, b) for a, b in zip(again[0].state_dict().values(),
                                                                       first[0].state_dict().values())))
            raise CheckFailed(
                f"train_cell({cell!r}, {seed}) run again does not repeat the first run: "
                + ("the models end equal but the recorded losses differ." if initial_same else
                   "seed torch's random numbers with torch.manual_seed(seed) right before building the model, "
                   "so that the same seed gives the same initial weights, and pass seed=seed to rnnlab.train."))
    print(f"OK: {sum(len(r) for r in runs.values())} runs have the right model, budget, steps and seeds"
          f"{', and a seed repeats its run' if hidden else ''}.")


def check_steps_to_solve(steps_to_solve, runs, threshold=0.9, hidden=False):
    """``steps_to_solve(runs, threshold)``: per cell, the first evaluation step at or above ``threshold``, per seed."""
    thresholds = (threshold,) + (hidden_inputs("THRESHOLDS") if hidden else ())
    for level in thresholds:
        expected = M.steps_to_solve(runs, level)
        try:
            got = call_quietly(steps_to_solve, (runs, level))
        except Exception as exc:  # a student's error of any kind becomes a message
            raise CheckFailed(explain_exception("steps_to_solve", exc, f"(runs, {level})")) from None
        if not isinstance(got, dict):
            raise CheckFailed(f"steps_to_solve(runs, {level}) must return a dict; got {type(got).__name__}")
        got = {cell: [None if s is None else int(s) for s in got.get(cell, [])] for cell in expected}
        if got == expected:
            continue
        lines = [f"steps_to_solve(runs, {level}) returned {got}; expected {expected}."]
        mistake = next((m for m in M.STEPS_TO_SOLVE_MISTAKES if got == M.steps_to_solve(runs, level, **m.flags)), None)
        if mistake is not None:
            lines.append(mistake.line())
        raise CheckFailed("\n".join(lines))
    print(f"OK: steps_to_solve is right for {len(thresholds)} threshold(s){', the hidden ones included' if hidden else ''}.")

"""A small seeded training loop for sequence models, and what it records.

    task = rnnlab.tasks.adding_problem_task(length=20, vary_length=False)
    model = rnnlab.SequenceModel(rnnlab.LSTM(task.input_size, 32), task.output_size)
    history = rnnlab.train(model, task, steps=3000, lr=1e-3, seed=0, eval_every=600)
    history.steps_to(0.9, "eval_accuracy")  # first evaluation with 90 % solved, or None

:func:`train` draws a fresh batch at every step, takes one optimiser step (Adam by
default) and records the loss, the accuracy if the task has one, the gradient norm and the
wall time. :class:`History` holds these lists; :class:`SequenceModel` puts a linear
read-out on a recurrent layer so that it maps inputs straight to predictions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ._checks import check_positive_int, describe
from .tasks import Batch, Task

__all__ = ["SequenceModel", "History", "train"]


class SequenceModel(nn.Module):
    """A recurrent layer followed by a linear read-out: inputs in, predictions out.

    ``recurrent`` is an ``rnnlab`` or ``torch.nn`` ``RNN``/``GRU``/``LSTM`` (anything that
    returns ``(output, state)`` and has ``hidden_size``). With ``readout="last"`` the
    read-out sees the output of the last step and the model returns (N, output_size), one
    prediction per sequence; with ``readout="all"`` it sees every step and returns
    (T, N, output_size), or (N, T, output_size) if the layer is ``batch_first``.
    """

    def __init__(self, recurrent: nn.Module, output_size: int, readout: str = "last"):
        super().__init__()
        if not isinstance(recurrent, nn.Module) or not hasattr(recurrent, "hidden_size"):
            raise TypeError("recurrent must be a recurrent torch.nn.Module with a hidden_size "
                            f"(rnnlab or torch.nn RNN/GRU/LSTM), got {describe(recurrent)}")
        if readout not in ("last", "all"):
            raise ValueError(f'readout must be "last" or "all", got {readout!r}')
        self.recurrent = recurrent
        self.readout = readout
        self.batch_first = bool(getattr(recurrent, "batch_first", False))
        features = getattr(recurrent, "proj_size", 0) or recurrent.hidden_size
        directions = 2 if getattr(recurrent, "bidirectional", False) else 1
        self.head = nn.Linear(directions * features, check_positive_int("output_size", output_size))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output, _ = self.recurrent(inputs)
        if self.readout == "last":
            output = output[:, -1] if self.batch_first else output[-1]
        return self.head(output)


_LOWER_IS_BETTER = ("loss", "eval_loss")
_HIGHER_IS_BETTER = ("accuracy", "eval_accuracy")


@dataclass
class History:
    """What :func:`train` recorded.

    Per training step (``step`` counts from 1): ``loss`` and ``accuracy`` on the batch of
    that step, before its update; ``grad_norm``, the Euclidean norm of the whole gradient
    before clipping; ``seconds``, the training wall time since the start (evaluation not
    included). Per evaluation (``eval_step``): ``eval_loss`` and ``eval_accuracy`` on one
    fixed held-out batch, after that step's update. Accuracy lists stay empty when the
    task has no accuracy. ``diverged`` is True if training stopped on a loss that was
    not finite.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    diverged: bool = False

    def values(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of a metric as numpy arrays, ready for ``ax.plot(*...)``."""
        if metric not in ("loss", "accuracy", "grad_norm", "seconds", "eval_loss", "eval_accuracy"):
            raise ValueError('metric must be one of "loss", "accuracy", "grad_norm", "seconds", '
                             f'"eval_loss", "eval_accuracy", got {metric!r}')
        steps = self.eval_step if metric.startswith("eval_") else self.step
        values = getattr(self, metric)
        if not values:
            reason = "the task has no accuracy" if steps else (
                "train() was called without eval_every" if metric.startswith("eval_") else "no step was run")
            raise ValueError(f"{metric} was not recorded: {reason}")
        return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)

    def steps_to(self, threshold: float, metric: str = "loss") -> int | None:
        """The first step at which ``metric`` reached ``threshold``, or None if it never did.

        Losses reach it from above (value <= threshold), accuracies from below
        (value >= threshold). The training metrics are noisy, one batch each; the
        ``eval_`` ones are measured on a fixed batch.
        """
        if metric not in _LOWER_IS_BETTER + _HIGHER_IS_BETTER:
            raise ValueError(f"metric must be one of {_LOWER_IS_BETTER + _HIGHER_IS_BETTER}, got {metric!r}")
        steps, values = self.values(metric)
        reached = values <= threshold if metric in _LOWER_IS_BETTER else values >= threshold
        return int(steps[reached.argmax()]) if reached.any() else None


def _mean_squared_error(predictions, batch):
    return F.mse_loss(predictions, batch.targets)


def _as_task(task, loss_fn, accuracy_fn) -> Task:
    """A :class:`Task`, from a Task or a callable ``sample(batch_size, seed=...)``; the
    functions given override the task's own."""
    if isinstance(task, Task):
        return replace(task, loss=loss_fn or task.loss, accuracy=accuracy_fn or task.accuracy)
    if callable(task):
        return Task(getattr(task, "__name__", "task"), task, loss_fn or _mean_squared_error, accuracy_fn)
    raise TypeError("task must be an rnnlab.tasks.Task or a callable sample(batch_size, seed=...) "
                    f"returning (inputs, targets), got {describe(task)}")


def _draw(task: Task, batch_size: int, rng: np.random.Generator, device) -> Batch:
    drawn = task.sample(batch_size, seed=rng)
    if not isinstance(drawn, tuple) or len(drawn) not in (2, 3):
        raise TypeError(f"the task's sample() must return a Batch or (inputs, targets), got {describe(drawn)}")
    return Batch(*(None if t is None else t.to(device) for t in drawn))


def _predict(model: nn.Module, batch: Batch) -> torch.Tensor:
    predictions = model(batch.inputs)
    if not isinstance(predictions, torch.Tensor):
        raise TypeError("model must return a tensor of predictions, got "
                        f"{type(predictions).__name__}; wrap a bare RNN/GRU/LSTM in rnnlab.SequenceModel")
    return predictions


def _make_optimizer(optimizer, parameters, lr: float) -> torch.optim.Optimizer:
    if optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr)
    if callable(optimizer):
        return optimizer(parameters, lr)
    raise ValueError('optimizer must be "adam", "sgd" or a callable (parameters, lr) -> '
                     f"torch.optim.Optimizer, got {describe(optimizer)}")


def _check_positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def train(model: nn.Module, task, *, steps: int, lr: float = 1e-3, batch_size: int = 32,
          optimizer="adam", clip: float | None = None, loss_fn=None, accuracy_fn=None,
          eval_every: int | None = None, eval_batch_size: int = 256, seed: int = 0,
          progress: bool = True) -> History:
    """Train ``model`` on ``task`` for ``steps`` optimiser steps and return a :class:`History`.

    Each step draws a new batch of ``batch_size`` sequences, computes the loss of the
    model's predictions, back-propagates, optionally rescales the gradient so that its
    norm is at most ``clip`` (``torch.nn.utils.clip_grad_norm_``), and updates the weights.

    Arguments:
        model: a ``torch.nn.Module`` mapping a batch of inputs to predictions, e.g. a
            :class:`SequenceModel`. It is trained in place.
        task: an :class:`rnnlab.tasks.Task`, or a callable ``sample(batch_size, seed=rng)``
            returning ``(inputs, targets)`` (its loss then defaults to mean squared error).
        loss_fn, accuracy_fn: ``f(predictions, batch)`` replacing the task's loss/accuracy;
            ``batch`` has ``.inputs``, ``.targets`` and ``.mask``.
        optimizer: ``"adam"`` (default), ``"sgd"``, or a callable ``(parameters, lr)``
            returning a ``torch.optim.Optimizer``.
        eval_every: evaluate every that many steps, and after the last one, on one fixed
            batch of ``eval_batch_size`` sequences drawn apart from the training batches.
        seed: fixes the training batches, the evaluation batch and torch's random numbers
            during training (dropout); the caller's torch random state is left as it was.
            The initial weights are the model's: seed them when you build the model.
        progress: show a tqdm progress bar on stderr; ``progress=False`` prints nothing.

    Training stops early, with ``history.diverged = True``, if the loss is not finite.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    task = _as_task(task, loss_fn, accuracy_fn)
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = _check_positive_number("lr", lr)
    clip = math.inf if clip is None else _check_positive_number("clip", clip)
    eval_every = None if eval_every is None else check_positive_int("eval_every", eval_every)
    eval_batch_size = check_positive_int("eval_batch_size", eval_batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {describe(progress)}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters")
    optim = _make_optimizer(optimizer, parameters, lr)
    device = parameters[0].device

    train_stream, eval_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(2))
    eval_batch = _draw(task, eval_batch_size, eval_stream, device) if eval_every else None
    history = History()
    was_training = model.training
    with torch.random.fork_rng(devices=[]), tqdm(total=steps, desc=task.name, disable=not progress) as bar:
        torch.manual_seed(int(seed))
        elapsed = 0.0
        for step in range(1, steps + 1):
            started = time.perf_counter()
            model.train()  # _evaluate switches to eval mode
            batch = _draw(task, batch_size, train_stream, device)
            predictions = _predict(model, batch)
            loss = task.loss(predictions, batch)
            optim.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(parameters, clip)
            if not torch.isfinite(loss):
                history.diverged = True
            else:
                optim.step()
            elapsed += time.perf_counter() - started

            history.step.append(step)
            history.loss.append(loss.item())
            history.grad_norm.append(grad_norm.item())
            history.seconds.append(elapsed)
            if task.accuracy is not None:
                with torch.no_grad():
                    history.accuracy.append(float(task.accuracy(predictions, batch)))
            if eval_every and (step % eval_every == 0 or step == steps):
                _evaluate(model, task, eval_batch, step, history)
            bar.update()
            if step % 10 == 0 or step == steps:
                bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
            if history.diverged:
                break
    model.train(was_training)
    return history


def _evaluate(model: nn.Module, task: Task, batch: Batch, step: int, history: History) -> None:
    """Score ``model`` on the fixed evaluation batch and append the result to ``history``."""
    model.eval()
    with torch.no_grad():
        predictions = _predict(model, batch)
        history.eval_step.append(step)
        history.eval_loss.append(task.loss(predictions, batch).item())
        if task.accuracy is not None:
            history.eval_accuracy.append(float(task.accuracy(predictions, batch)))

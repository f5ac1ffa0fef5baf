"""A small seeded training loop for sequence models, one seed or many at once, and what it records.

One model, one seed::

    task = rnnlab.tasks.adding_problem_task(length=20, vary_length=False)
    model = rnnlab.SequenceModel(rnnlab.LSTM(task.input_size, 32), task.output_size)
    history = rnnlab.train(model, task, steps=3000, lr=1e-3, seed=0, eval_every=600)
    history.steps_to(0.9, "eval_accuracy")  # first evaluation with 90 % solved, or None

:func:`train` draws a fresh batch at every step, takes one optimiser step (Adam by
default) and records the loss, the accuracy if the task has one, the gradient norm and the
wall time. :class:`History` holds these lists; :class:`SequenceModel` puts a linear
read-out on a recurrent layer so that it maps inputs straight to predictions.

Many seeds at once: give a list of S models of one architecture, each built under its own
seed, and S seeds; they train as one stacked model (:class:`rnnlab.StackedModels`) and
:func:`train` returns S Histories, each what training that model alone with its seed
gives (to float32 round-off)::

    models = []
    for seed in range(16):
        torch.manual_seed(seed)
        models.append(rnnlab.SequenceModel(rnnlab.GRU(task.input_size, 16), task.output_size))
    histories = rnnlab.train(models, task, steps=3000, seeds=range(16), eval_every=600)
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

from ._checks import check_bool, check_positive_int, check_positive_number, check_seed, describe
from .modules import RNNBase
from .stacking import StackedModels
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
    included; with many seeds at once, the time of the whole stack). Per evaluation
    (``eval_step``): ``eval_loss`` and ``eval_accuracy``, after that step's update, on one
    fixed held-out batch or on the validation set given. Accuracy lists stay empty when
    the task has no accuracy. ``diverged`` is True if training stopped on a loss that was
    not finite. ``stop_reason`` says why training ended before ``steps``: ``"diverged"``,
    ``"stop_when"`` or ``"patience"`` (None if it ran every step). ``best_step`` is the step
    of the best evaluation when ``keep_best`` was given (its weights are the model's).
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
    stop_reason: str | None = None
    best_step: int | None = None

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


def _as_batch(drawn, device, name) -> Batch:
    if not isinstance(drawn, tuple) or len(drawn) not in (2, 3) or not isinstance(drawn[0], torch.Tensor):
        raise TypeError(f"{name} must be a Batch or (inputs, targets), got {describe(drawn)}")
    return Batch(*(None if t is None else t.to(device) for t in drawn))


def _draw(task: Task, batch_size: int, rng: np.random.Generator, device) -> Batch:
    return _as_batch(task.sample(batch_size, seed=rng), device, "the task's sample() result")


def _predict(model, batch: Batch) -> torch.Tensor:
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


@dataclass(frozen=True)
class _Settings:
    """The checked arguments of :func:`train` that every seed shares."""

    task: Task
    steps: int
    lr: float
    batch_size: int
    optimizer: object
    clip: float
    eval_every: int | None
    eval_batch_size: int
    validation: list[Batch] | None
    evaluate: object
    keep_best: str | None
    patience: int | None
    stop_when: object
    progress: bool

    def evaluates_at(self, step: int) -> bool:
        return bool(self.eval_every) and (step % self.eval_every == 0 or step == self.steps)


def train(model, task, *, steps: int, lr: float = 1e-3, batch_size: int = 32,
          optimizer="adam", clip: float | None = None, loss_fn=None, accuracy_fn=None,
          eval_every: int | None = None, eval_batch_size: int = 256, validation=None,
          evaluate=None, keep_best: str | None = None, patience: int | None = None,
          stop_when=None, seed: int | None = None, seeds=None, stack_size: int | None = None,
          progress: bool = True):
    """Train ``model`` on ``task`` for ``steps`` optimiser steps and return a :class:`History`.

    Each step draws a new batch of ``batch_size`` sequences, computes the loss of the
    model's predictions, back-propagates, optionally rescales the gradient so that its
    norm is at most ``clip`` (``torch.nn.utils.clip_grad_norm_``), and updates the weights.

    Arguments:
        model: a ``torch.nn.Module`` mapping a batch of inputs to predictions, e.g. a
            :class:`SequenceModel`. It is trained in place. Or a list of S such modules
            of one architecture (each built under its own seed) with ``seeds``: they are
            trained at once as one stacked model (:class:`rnnlab.StackedModels`; torch.nn
            recurrent layers run as their rnnlab twins there), each updated in place, and
            ``train`` returns a list of S Histories, the k-th equal (to float32 round-off)
            to ``train(model[k], task, seed=seeds[k], ...)``. Models with dropout are
            refused in that form: a stack cannot draw each seed's own dropout masks.
        task: an :class:`rnnlab.tasks.Task`, or a callable ``sample(batch_size, seed=rng)``
            returning ``(inputs, targets)`` (its loss then defaults to mean squared error).
        loss_fn, accuracy_fn: ``f(predictions, batch)`` replacing the task's loss/accuracy;
            ``batch`` has ``.inputs``, ``.targets`` and ``.mask``.
        optimizer: ``"adam"`` (default), ``"sgd"``, or a callable ``(parameters, lr)``
            returning a ``torch.optim.Optimizer`` (for many seeds at once, one that acts
            element-wise, as SGD, Adam, AdamW, RMSprop do, so that seeds stay independent).
        eval_every: evaluate every that many steps, and after the last one: by default on
            one fixed batch of ``eval_batch_size`` sequences drawn apart from the training
            batches (one per seed).
        validation: evaluate on this validation set instead, the same for every seed: a
            :class:`rnnlab.tasks.Batch` (or ``(inputs, targets)``) or a list of them. With
            several batches, ``eval_loss`` and ``eval_accuracy`` are their means weighted
            by the number of target values each averages (``targets[mask]`` when a batch
            has a mask): the mean over the whole set for losses and accuracies that are
            means over target values, as all of :mod:`rnnlab.tasks`' losses are.
        evaluate: or a callable ``evaluate(model) -> {"eval_loss": float, "eval_accuracy":
            float}`` (accuracy optional) computing any metric; it is called in evaluation
            mode without gradients, on each seed's model.
        keep_best: ``"eval_loss"`` or ``"eval_accuracy"``: at the end, each model holds the
            weights of its best evaluation by that metric (early stopping);
            ``history.best_step`` says which.
        patience: with ``keep_best``, stop a seed after that many evaluations in a row
            without improving on its best (``history.stop_reason == "patience"``).
        stop_when: a callable ``stop_when(history) -> bool`` asked after every step (after
            its evaluation, if any); True stops that seed (``stop_reason == "stop_when"``).
        seed: fixes the training batches, the evaluation batch and torch's random numbers
            during training (dropout); the caller's torch random state is left as it was.
            The initial weights are the model's: seed them when you build the model.
            Default 0.
        seeds: with a list of models, one seed per model (e.g. ``range(S)``).
        stack_size: with a list of models, train at most that many at once, the groups one
            after the other (default: all). The results do not depend on it; the speed
            does: a stack's tensors grow with it, and once one tensor of a step passes about
            32 MB (T * stack_size * B * 4 * G*H bytes for a recurrent layer) the memory
            allocator returns it to the system at every step, which can make a stack of 16
            slower than two of 8 (``benchmarks/seeds.py`` measures both).
        progress: show a tqdm progress bar on stderr; ``progress=False`` prints nothing.

    Training stops early, with ``history.diverged = True``, if the loss is not finite;
    the weights are then those before that step.
    """
    many = isinstance(model, (list, tuple, nn.ModuleList))
    if not many and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or a list of them, got {describe(model)}")
    settings = _check_settings(task, loss_fn, accuracy_fn, steps, lr, batch_size, optimizer, clip,
                               eval_every, eval_batch_size, validation, evaluate, keep_best, patience,
                               stop_when, progress)
    if many:
        if seed is not None:
            raise TypeError("seed= trains one model; with a list of models give seeds=, one per model")
        models, seeds = list(model), _check_seeds(seeds, len(model))
        size = len(models) if stack_size is None else check_positive_int("stack_size", stack_size)
        return [history for start in range(0, len(models), size)
                for history in _train_many(models[start:start + size], settings, seeds[start:start + size])]
    if seeds is not None or stack_size is not None:
        raise TypeError("seeds= and stack_size= go with a list of models; for one model give seed=")
    return _train_one(model, settings, 0 if seed is None else check_seed("seed", seed))


def _check_settings(task, loss_fn, accuracy_fn, steps, lr, batch_size, optimizer, clip, eval_every,
                    eval_batch_size, validation, evaluate, keep_best, patience, stop_when, progress) -> _Settings:
    task = _as_task(task, loss_fn, accuracy_fn)
    eval_every = None if eval_every is None else check_positive_int("eval_every", eval_every)
    if eval_every is None:
        for name, value in (("validation", validation), ("evaluate", evaluate), ("keep_best", keep_best),
                            ("patience", patience)):
            if value is not None:
                raise ValueError(f"{name} needs eval_every, the number of steps between evaluations")
    if validation is not None and evaluate is not None:
        raise ValueError("give validation (batches scored with the task's loss) or evaluate (your own "
                         "function), not both")
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be a callable evaluate(model) -> dict, got {describe(evaluate)}")
    if keep_best not in (None, "eval_loss", "eval_accuracy"):
        raise ValueError(f'keep_best must be "eval_loss" or "eval_accuracy", got {keep_best!r}')
    if patience is not None:
        patience = check_positive_int("patience", patience)
        if keep_best is None:
            raise ValueError('patience needs keep_best ("eval_loss" or "eval_accuracy"), the metric to improve')
    if stop_when is not None and not callable(stop_when):
        raise TypeError(f"stop_when must be a callable stop_when(history) -> bool, got {describe(stop_when)}")
    return _Settings(task=task, steps=check_positive_int("steps", steps), lr=check_positive_number("lr", lr),
                     batch_size=check_positive_int("batch_size", batch_size), optimizer=optimizer,
                     clip=math.inf if clip is None else check_positive_number("clip", clip),
                     eval_every=eval_every, eval_batch_size=check_positive_int("eval_batch_size", eval_batch_size),
                     validation=_validation_batches(validation), evaluate=evaluate, keep_best=keep_best,
                     patience=patience, stop_when=stop_when, progress=check_bool("progress", progress))


def _validation_batches(validation) -> list[Batch] | None:
    if validation is None:
        return None
    single = isinstance(validation, tuple) and validation and isinstance(validation[0], torch.Tensor)
    batches = [validation] if single else validation
    if not isinstance(batches, (list, tuple)) or not batches:
        raise TypeError(f"validation must be a Batch, (inputs, targets) or a non-empty list of them, "
                        f"got {describe(validation)}")
    return [_as_batch(b, None, f"validation[{k}]") for k, b in enumerate(batches)]


def _check_seeds(seeds, count: int) -> list[int]:
    if seeds is None:
        raise TypeError(f"seeds must give one seed per model ({count} models), e.g. seeds=range({count})")
    try:
        seeds = list(seeds)
    except TypeError:
        raise TypeError(f"seeds must be a sequence of ints, one per model, got {describe(seeds)}") from None
    if len(seeds) != count:
        raise ValueError(f"seeds must give one seed per model: {count} models, got {len(seeds)} seeds")
    return [check_seed(f"seeds[{k}]", s) for k, s in enumerate(seeds)]


class _Run:
    """One seed's random streams, History, best weights and stopping state."""

    def __init__(self, seed: int, settings: _Settings, device):
        self.train_stream, eval_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        needs_batch = settings.eval_every and settings.validation is None and settings.evaluate is None
        self.eval_batch = _draw(settings.task, settings.eval_batch_size, eval_stream, device) if needs_batch else None
        self.settings = settings
        self.history = History()
        self.best_value = None
        self.best_state = None
        self.since_best = 0

    def record_step(self, step, loss: float, accuracy, grad_norm: float, seconds: float) -> None:
        history = self.history
        history.step.append(step)
        history.loss.append(loss)
        history.grad_norm.append(grad_norm)
        history.seconds.append(seconds)
        if accuracy is not None:
            history.accuracy.append(float(accuracy))
        if not math.isfinite(loss):
            history.diverged = True
            history.stop_reason = "diverged"

    def record_evaluation(self, step: int, scores: dict, state) -> None:
        """Append one evaluation; ``state()`` gives the current weights, kept if they are the best."""
        history = self.history
        history.eval_step.append(step)
        history.eval_loss.append(float(scores["eval_loss"]))
        if scores.get("eval_accuracy") is not None:
            history.eval_accuracy.append(float(scores["eval_accuracy"]))
        metric = self.settings.keep_best
        if metric is None:
            return
        value = getattr(history, metric)[-1]
        if self.best_value is None or not math.isfinite(self.best_value) or (
                value < self.best_value if metric == "eval_loss" else value > self.best_value):
            self.best_value, self.best_state, self.since_best = value, state(), 0
            history.best_step = step
        else:
            self.since_best += 1

    def finished(self) -> bool:
        """Whether this seed stops after the step just recorded (and says why in its History)."""
        history, settings = self.history, self.settings
        if history.diverged:
            return True
        if settings.patience is not None and self.since_best >= settings.patience:
            history.stop_reason = "patience"
        elif settings.stop_when is not None and settings.stop_when(history):
            history.stop_reason = "stop_when"
        return history.stop_reason is not None


def _weighted_scores(task: Task, scored) -> dict:
    """``eval_loss`` (and ``eval_accuracy``) over ``(predictions, batch)`` pairs, each batch
    weighted by the number of target values its loss averages."""
    if len(scored) == 1:
        predictions, batch = scored[0]
        accuracy = None if task.accuracy is None else float(task.accuracy(predictions, batch))
        return {"eval_loss": task.loss(predictions, batch).item(), "eval_accuracy": accuracy}
    total, loss, accuracy = 0, 0.0, 0.0
    for predictions, batch in scored:
        weight = (batch.targets if batch.mask is None else batch.targets[batch.mask]).numel()
        total += weight
        loss += weight * task.loss(predictions, batch).item()
        if task.accuracy is not None:
            accuracy += weight * float(task.accuracy(predictions, batch))
    return {"eval_loss": loss / total, "eval_accuracy": accuracy / total if task.accuracy is not None else None}


def _own_evaluation(evaluate, model: nn.Module) -> dict:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = evaluate(model)
    model.train(was_training)
    if not isinstance(scores, dict) or "eval_loss" not in scores:
        raise TypeError(f"evaluate(model) must return a dict with 'eval_loss' (and optionally 'eval_accuracy'), "
                        f"got {describe(scores)}")
    return scores


def _state(model: nn.Module) -> dict:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


# --- one seed -----------------------------------------------------------------------------


def _train_one(model: nn.Module, settings: _Settings, seed: int) -> History:
    task = settings.task
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters")
    optim = _make_optimizer(settings.optimizer, parameters, settings.lr)
    device = parameters[0].device
    validation = None if settings.validation is None else [b._replace(**_moved(b, device)) for b in settings.validation]
    run = _Run(seed, settings, device)
    was_training = model.training
    with torch.random.fork_rng(devices=[]), tqdm(total=settings.steps, desc=task.name,
                                                 disable=not settings.progress) as bar:
        torch.manual_seed(seed)
        elapsed = 0.0
        for step in range(1, settings.steps + 1):
            started = time.perf_counter()
            model.train()  # evaluation switches to eval mode
            batch = _draw(task, settings.batch_size, run.train_stream, device)
            predictions = _predict(model, batch)
            loss = task.loss(predictions, batch)
            optim.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(parameters, settings.clip)
            if torch.isfinite(loss):
                optim.step()
            elapsed += time.perf_counter() - started

            accuracy = None
            if task.accuracy is not None:
                with torch.no_grad():
                    accuracy = task.accuracy(predictions, batch)
            run.record_step(step, loss.item(), accuracy, grad_norm.item(), elapsed)
            if settings.evaluates_at(step) and not run.history.diverged:
                run.record_evaluation(step, _evaluate_one(model, settings, run, validation), lambda: _state(model))
            bar.update()
            if step % 10 == 0 or step == settings.steps:
                bar.set_postfix(loss=f"{run.history.loss[-1]:.4g}", refresh=False)
            if run.finished():
                break
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.train(was_training)
    return run.history


def _moved(batch: Batch, device) -> dict:
    return {name: None if t is None else t.to(device) for name, t in batch._asdict().items()}


def _evaluate_one(model: nn.Module, settings: _Settings, run: _Run, validation) -> dict:
    if settings.evaluate is not None:
        return _own_evaluation(settings.evaluate, model)
    batches = validation if validation is not None else [run.eval_batch]
    model.eval()
    with torch.no_grad():
        scores = _weighted_scores(settings.task, [(_predict(model, b), b) for b in batches])
    return scores


# --- many seeds at once -------------------------------------------------------------------


def _train_many(models: list, settings: _Settings, seeds: list[int]) -> list[History]:
    task = settings.task
    _refuse_dropout(models[0])
    stack = StackedModels(models)
    if not stack.parameters():
        raise ValueError("the models have no trainable parameters")
    device = stack.parameters()[0].device
    validation = None if settings.validation is None else [b._replace(**_moved(b, device)) for b in settings.validation]
    runs = [_Run(seed, settings, device) for seed in seeds]
    active = list(range(len(models)))          # the models still training, in the order of the stack
    optim = _make_optimizer(settings.optimizer, stack.parameters(), settings.lr)
    with tqdm(total=settings.steps, desc=f"{task.name}, {len(models)} seeds", disable=not settings.progress) as bar:
        elapsed = 0.0
        for step in range(1, settings.steps + 1):
            started = time.perf_counter()
            stack.train()
            batches = [_draw(task, settings.batch_size, runs[k].train_stream, device) for k in active]
            predictions = _stacked_predictions(stack, batches)
            losses = torch.stack([task.loss(p, b) for p, b in zip(predictions, batches)])
            optim.zero_grad()
            losses.sum().backward()
            grad_norms = _clip_each_model(stack.parameters(), settings.clip).tolist()
            losses = losses.tolist()
            for position, k in enumerate(active):
                if not math.isfinite(losses[position]):    # its weights stay those before this step
                    _load(models[k], stack.state_of(position))
            optim.step()
            elapsed += time.perf_counter() - started

            for position, k in enumerate(active):
                accuracy = None
                if task.accuracy is not None:
                    with torch.no_grad():
                        accuracy = task.accuracy(predictions[position].detach(), batches[position])
                runs[k].record_step(step, losses[position], accuracy, grad_norms[position], elapsed)
            if settings.evaluates_at(step):
                _evaluate_many(stack, settings, runs, active, validation, step)
            bar.update()
            if step % 10 == 0 or step == settings.steps:
                bar.set_postfix(loss=f"{np.mean(losses):.4g}", refresh=False)
            done = [position for position, k in enumerate(active) if runs[k].finished()]
            if done:
                stack, optim, active = _without(stack, optim, active, done, models, runs, settings)
                if not active:
                    break
    stack.write_back()
    for run, model in zip(runs, models):
        if run.best_state is not None:
            _load(model, run.best_state)
    return [run.history for run in runs]


def _refuse_dropout(model: nn.Module) -> None:
    for name, module in model.named_modules():
        rate = 0.0
        if isinstance(module, nn.modules.dropout._DropoutNd):
            rate = module.p
        elif isinstance(module, (nn.RNNBase, RNNBase)) and module.num_layers > 1:
            rate = module.dropout
        if rate > 0:
            raise ValueError(f"the models use dropout ({name or 'the model'}: {rate}); training many seeds at "
                             "once reproduces each seed's own run, but a stack cannot draw each seed's own "
                             "dropout masks: train models with dropout one at a time")


def _stacked_predictions(stack: StackedModels, batches: list[Batch]) -> list[torch.Tensor]:
    """Each model's predictions on its own batch: one stacked call per group of batches whose
    inputs have the same shape (a task may draw sequences of another length for each seed)."""
    groups: dict[tuple, list[int]] = {}
    for position, batch in enumerate(batches):
        groups.setdefault(tuple(batch.inputs.shape), []).append(position)
    predictions = [None] * len(batches)
    for positions in groups.values():
        inputs = torch.stack([batches[p].inputs for p in positions])
        outputs = stack(inputs, select=None if len(positions) == len(batches) else positions)
        if not isinstance(outputs, torch.Tensor):
            raise TypeError("model must return a tensor of predictions, got "
                            f"{type(outputs).__name__}; wrap a bare RNN/GRU/LSTM in rnnlab.SequenceModel")
        for position, output in zip(positions, outputs.unbind(0)):
            predictions[position] = output
    return predictions


def _clip_each_model(parameters: list[torch.Tensor], clip: float) -> torch.Tensor:
    """``clip_grad_norm_`` for each model's slice of the stacked gradients: returns the (S,)
    norms before clipping and scales each slice whose norm exceeds ``clip``."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
    scale = (clip / (norms + 1e-6)).clamp(max=1.0)     # torch.nn.utils.clip_grad_norm_'s rule
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return norms


def _evaluate_many(stack: StackedModels, settings: _Settings, runs: list[_Run], active: list[int],
                   validation, step: int) -> None:
    evaluated = [(position, k) for position, k in enumerate(active) if not runs[k].history.diverged]
    if not evaluated:
        return
    if settings.evaluate is not None:
        stack.write_back()
        scores = [_own_evaluation(settings.evaluate, stack.models[position]) for position, _ in evaluated]
    else:
        stack.eval()
        with torch.no_grad():
            if validation is not None:
                shared = [stack(batch.inputs, in_dims=None) for batch in validation]
                scores = [_weighted_scores(settings.task, [(out[position], batch) for out, batch in zip(shared, validation)])
                          for position, _ in evaluated]
            else:
                batches = [runs[k].eval_batch for k in active]
                predictions = _stacked_predictions(stack, batches)
                scores = [_weighted_scores(settings.task, [(predictions[position], batches[position])])
                          for position, _ in evaluated]
        stack.train()
    for (position, k), score in zip(evaluated, scores):
        runs[k].record_evaluation(step, score, lambda position=position: stack.state_of(position))


def _without(stack: StackedModels, optim, active: list[int], done: list[int], models: list, runs, settings):
    """Take the finished models out of the stack: write every model's weights back (a diverged
    one already holds its weights from before the bad step), restack the others and carry
    their optimiser state over."""
    diverged = {active[p] for p in done if runs[active[p]].history.diverged}
    for position, k in enumerate(active):
        if k not in diverged:
            _load(models[k], stack.state_of(position))
    keep = [p for p in range(len(active)) if p not in done]
    active = [active[p] for p in keep]
    if not active:
        return stack, optim, active
    old_parameters = stack.parameters()
    stack = StackedModels([models[k] for k in active])
    new_optim = _make_optimizer(settings.optimizer, stack.parameters(), settings.lr)
    index = torch.tensor(keep)
    for old, new in zip(old_parameters, stack.parameters()):
        state = optim.state.get(old)
        if state:
            new_optim.state[new] = {key: value.index_select(0, index).clone()
                                    if isinstance(value, torch.Tensor) and value.shape == old.shape else value
                                    for key, value in state.items()}
    return stack, new_optim, active


@torch.no_grad()
def _load(model: nn.Module, state: dict) -> None:
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if name in state:
            tensor.copy_(state[name])

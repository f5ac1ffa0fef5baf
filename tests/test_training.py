"""Specification of rnnlab.training: the loop lowers the loss, is reproducible, clips,
records what it says it records, and stays quiet when asked; many seeds at once give each
seed's own run; early stopping keeps the best weights."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import rnnlab
from module_pairs import one_thread  # noqa: F401  (a fixture)
from rnnlab import tasks
from rnnlab.training import History, SequenceModel, train


pytestmark = pytest.mark.usefixtures("one_thread")


def gru_model(task, hidden_size=8, seed=0):
    torch.manual_seed(seed)
    return SequenceModel(nn.GRU(task.input_size, hidden_size), task.output_size, readout=task.readout)


SINES = tasks.noisy_sines_task(length=20, noise_std=0.05)


def test_train_lowers_the_loss_on_noisy_sines():
    model = gru_model(SINES)
    batch = SINES.batch(256, seed=123)
    before = nn.functional.mse_loss(model(batch.inputs), batch.targets).item()
    history = train(model, SINES, steps=80, lr=2e-2, seed=0, progress=False)
    with torch.no_grad():
        after = nn.functional.mse_loss(model(batch.inputs), batch.targets).item()
    assert after < 0.2 * before, f"held-out loss went from {before:.3f} to {after:.3f} only"
    assert len(history.loss) == len(history.step) == len(history.seconds) == len(history.grad_norm) == 80
    assert history.step == list(range(1, 81))
    assert all(b >= a for a, b in zip(history.seconds, history.seconds[1:])) and history.seconds[-1] > 0
    assert history.accuracy == [] and not history.diverged


def test_train_is_reproducible_with_a_seed():
    runs = {}
    for name, seed in (("first", 7), ("again", 7), ("other", 8)):
        model = gru_model(SINES)
        runs[name] = (train(model, SINES, steps=15, seed=seed, progress=False).loss, model.state_dict())
    assert runs["first"][0] == runs["again"][0]
    assert all(torch.equal(runs["first"][1][k], runs["again"][1][k]) for k in runs["first"][1])
    assert runs["first"][0] != runs["other"][0]


def test_train_leaves_the_callers_torch_random_state_alone():
    model = gru_model(SINES)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    train(model, SINES, steps=3, seed=0, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_progress_false_prints_nothing_and_true_shows_a_bar(capfd):
    train(gru_model(SINES), SINES, steps=3, seed=0, progress=False)
    assert capfd.readouterr() == ("", "")
    train(gru_model(SINES), SINES, steps=3, seed=0, progress=True)
    assert "3/3" in capfd.readouterr().err


def fixed_batch(inputs, targets):
    """A task given as a callable that always returns the same batch."""
    def sample(batch_size, seed):
        return inputs, targets
    return sample


def test_sgd_step_matches_a_hand_computed_gradient_and_clip_bounds_it():
    torch.manual_seed(0)
    inputs, targets = torch.randn(6, 4, 1), torch.randn(4, 1)
    model = gru_model(SINES)
    model.readout = "last"
    reference = copy.deepcopy(model)
    loss = nn.functional.mse_loss(reference(inputs), targets)
    gradients = torch.autograd.grad(loss, list(reference.parameters()))
    norm = torch.sqrt(sum((g ** 2).sum() for g in gradients)).item()

    unclipped = copy.deepcopy(model)
    history = train(unclipped, fixed_batch(inputs, targets), steps=1, lr=0.1, optimizer="sgd", progress=False)
    assert history.loss[0] == pytest.approx(loss.item(), rel=1e-6)
    assert history.grad_norm[0] == pytest.approx(norm, rel=1e-5)
    for before, after, g in zip(model.parameters(), unclipped.parameters(), gradients):
        torch.testing.assert_close(after, before - 0.1 * g)

    clip = norm / 10
    train(model, fixed_batch(inputs, targets), steps=1, lr=1.0, optimizer="sgd", clip=clip, progress=False)
    step = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(model.parameters(), reference.parameters())))
    assert step.item() == pytest.approx(clip, rel=1e-4), "a clipped SGD step has length lr * clip"


def test_accuracy_is_recorded_before_the_update():
    task = tasks.memorisation_task("ABCAAB", window=4)
    model = gru_model(task)
    batch = task.batch(32, seed=0)
    with torch.no_grad():
        expected = (model(batch.inputs).argmax(-1) == batch.targets).float().mean().item()
    history = train(model, fixed_batch(batch.inputs, batch.targets), steps=2, progress=False,
                    loss_fn=task.loss, accuracy_fn=task.accuracy)
    assert history.accuracy[0] == pytest.approx(expected)
    assert len(history.accuracy) == 2


def test_evaluation_runs_every_n_steps_and_after_the_last():
    task = tasks.memorisation_task("ABCAAB", window=4)
    history = train(gru_model(task), task, steps=20, eval_every=8, eval_batch_size=64, seed=0, progress=False)
    assert history.eval_step == [8, 16, 20]
    assert len(history.eval_loss) == len(history.eval_accuracy) == 3
    assert all(0 <= a <= 1 for a in history.eval_accuracy + history.accuracy)


def test_a_loss_that_is_not_finite_stops_training_without_touching_the_weights():
    model = gru_model(SINES)
    model.readout = "last"
    weights = copy.deepcopy(model.state_dict())
    sample = fixed_batch(torch.randn(5, 3, 1), torch.full((3, 1), float("nan")))
    history = train(model, sample, steps=10, progress=False)
    assert history.diverged and history.step == [1]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("layer", [nn.GRU(3, 5), nn.LSTM(3, 5), rnnlab.GRU(3, 5)], ids=["nn.GRU", "nn.LSTM", "rnnlab.GRU"])
def test_sequence_model_reads_out_the_last_step_or_every_step(layer):
    torch.manual_seed(0)
    inputs = torch.randn(7, 4, 3)
    last, every = SequenceModel(layer, 2, readout="last"), SequenceModel(layer, 2, readout="all")
    every.head.load_state_dict(last.head.state_dict())
    outputs, _ = layer(inputs)
    torch.testing.assert_close(last(inputs), outputs[-1] @ last.head.weight.T + last.head.bias)
    assert every(inputs).shape == (7, 4, 2)
    torch.testing.assert_close(every(inputs)[-1], last(inputs))


def test_sequence_model_follows_batch_first():
    torch.manual_seed(0)
    layer = nn.GRU(3, 5, batch_first=True)
    model = SequenceModel(layer, 2)
    inputs = torch.randn(4, 7, 3)
    torch.testing.assert_close(model(inputs), model.head(layer(inputs)[0][:, -1]))


def test_history_steps_to_finds_the_first_step_reaching_a_threshold():
    history = History(step=[1, 2, 3, 4], loss=[1.0, 0.5, 0.2, 0.3], accuracy=[0.1, 0.95, 0.8, 1.0],
                      eval_step=[10, 20], eval_loss=[0.4, 0.1], eval_accuracy=[0.5, 0.9])
    assert history.steps_to(0.5) == 2
    assert history.steps_to(0.25, "loss") == 3
    assert history.steps_to(0.05) is None
    assert history.steps_to(0.9, "accuracy") == 2
    assert history.steps_to(0.2, "eval_loss") == 20
    assert history.steps_to(0.95, "eval_accuracy") is None
    steps, values = history.values("eval_loss")
    assert steps.tolist() == [10, 20] and values.tolist() == [0.4, 0.1]
    with pytest.raises(ValueError, match="metric"):
        history.steps_to(0.5, "grad_norm")
    with pytest.raises(ValueError, match="accuracy was not recorded: the task has no accuracy"):
        History(step=[1], loss=[1.0]).steps_to(0.5, "accuracy")
    with pytest.raises(ValueError, match="without eval_every"):
        History(step=[1], loss=[1.0]).steps_to(0.5, "eval_loss")


@pytest.mark.parametrize("kwargs, error, name", [
    ({"steps": 0}, ValueError, "steps"),
    ({"steps": 2.5}, TypeError, "steps"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"clip": 0}, ValueError, "clip"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"optimizer": "adagrad"}, ValueError, "optimizer"),
    ({"eval_every": 0}, ValueError, "eval_every"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.0}, TypeError, "seed"),
    ({"progress": "no"}, TypeError, "progress"),
    ({"task": 42}, TypeError, "task"),
    ({"model": "gru"}, TypeError, "model"),
])
def test_bad_arguments_raise_errors_naming_them(kwargs, error, name):
    arguments = {"model": gru_model(SINES), "task": SINES, "steps": 2, "progress": False, **kwargs}
    with pytest.raises(error, match=name):
        train(**arguments)


def test_a_bare_recurrent_layer_is_refused_with_advice():
    with pytest.raises(TypeError, match="SequenceModel"):
        train(nn.GRU(1, 4), SINES, steps=1, progress=False)
    with pytest.raises(ValueError, match="readout"):
        SequenceModel(nn.GRU(1, 4), 1, readout="first")


# --- many seeds at once -------------------------------------------------------------------

def seeded_models(kind, task, count, library=rnnlab, hidden_size=6):
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        models.append(SequenceModel(getattr(library, kind)(task.input_size, hidden_size), task.output_size,
                                    readout=task.readout))
    return models


def assert_same_histories(got, expected):
    """Equal step lists and stopping, and every recorded number equal to float32 round-off."""
    assert (got.step, got.eval_step, got.diverged, got.stop_reason, got.best_step) == \
        (expected.step, expected.eval_step, expected.diverged, expected.stop_reason, expected.best_step)
    for metric in ("loss", "accuracy", "grad_norm", "eval_loss", "eval_accuracy"):
        assert len(getattr(got, metric)) == len(getattr(expected, metric)), metric
        torch.testing.assert_close(torch.tensor(getattr(got, metric)), torch.tensor(getattr(expected, metric)),
                                   rtol=1e-4, atol=1e-6, equal_nan=True, msg=lambda text: f"{metric}: {text}")


def train_both_ways(models, task, seeds, **options):
    """Train copies of ``models`` one at a time and ``models`` all at once; return both."""
    alone = [copy.deepcopy(m) for m in models]
    expected = [train(m, task, seed=s, progress=False, **options) for m, s in zip(alone, seeds)]
    got = train(models, task, seeds=seeds, progress=False, **options)
    assert isinstance(got, list) and len(got) == len(models)
    for g, e in zip(got, expected):
        assert_same_histories(g, e)
    for m, a in zip(models, alone):
        for (name, p), q in zip(m.named_parameters(), a.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4, equal_nan=True, msg=lambda text: f"{name}: {text}")
    return got, expected


@pytest.mark.parametrize("kind, library, task", [
    ("GRU", rnnlab, tasks.memorisation_task("ABCAAB", window=4)),
    ("LSTM", rnnlab, tasks.noisy_sines_task(length=12)),
    ("GRU", nn, tasks.adding_problem_task(length=20)),          # torch.nn layers; a new length every batch
], ids=["rnnlab.GRU-memorisation", "rnnlab.LSTM-sines", "nn.GRU-adding-varying-length"])
def test_many_seeds_at_once_equal_each_seed_trained_alone(kind, library, task):
    train_both_ways(seeded_models(kind, task, 3, library), task, [5, 6, 7], steps=12, lr=1e-2, clip=0.5,
                    eval_every=5, eval_batch_size=32)


def test_stack_size_trains_groups_one_after_the_other_with_the_same_results():
    task = tasks.noisy_sines_task(length=10)
    models = seeded_models("RNN", task, 5)
    copies = [copy.deepcopy(m) for m in models]
    whole = train(models, task, steps=6, seeds=range(5), progress=False)
    groups = train(copies, task, steps=6, seeds=range(5), stack_size=2, progress=False)
    for a, b in zip(whole, groups):
        assert_same_histories(a, b)


def test_seeds_that_stop_or_diverge_leave_the_others_as_if_alone():
    """stop_when ends each seed at its own step, a model with NaN weights diverges at once:
    the others go on (their optimiser state carried over) exactly as when trained alone."""
    task = tasks.noisy_sines_task(length=12)
    models = seeded_models("GRU", task, 4)
    with torch.no_grad():
        models[1].head.bias.fill_(float("nan"))
    got, _ = train_both_ways(models, task, [0, 1, 2, 3], steps=25, lr=3e-2,
                             stop_when=lambda h: h.loss[-1] < 0.6 * h.loss[0])
    assert got[1].diverged and got[1].step == [1] and torch.isnan(models[1].head.bias).all()
    stops = [len(h.step) for h in got]
    assert len(set(stops)) > 2 and any(h.stop_reason == "stop_when" for h in got), f"stops at {stops}"


def test_keep_best_leaves_each_model_with_its_best_evaluated_weights():
    task = tasks.memorisation_task("ABCAAB", window=4)
    validation = [task.batch(40, seed=100), task.batch(24, seed=101)]
    models = seeded_models("LSTM", task, 2)
    got, _ = train_both_ways(models, task, [0, 1], steps=12, lr=0.5, eval_every=2, validation=validation,
                             keep_best="eval_loss")
    assert any(h.best_step != h.eval_step[-1] for h in got), "a case where the best is not the last"
    for model, history in zip(models, got):
        best = int(np.argmin(history.eval_loss))
        assert history.best_step == history.eval_step[best]
        with torch.no_grad():       # the validation loss of the weights kept, weighted by batch size
            losses = [task.loss(model(b.inputs), b).item() for b in validation]
        assert np.average(losses, weights=[40, 24]) == pytest.approx(history.eval_loss[best], rel=1e-5)


def test_patience_stops_after_evaluations_without_improvement():
    scores = iter([3.0, 2.0, 2.5, 2.6, 1.0])
    history = train(gru_model(SINES), SINES, steps=50, eval_every=4, evaluate=lambda m: {"eval_loss": next(scores)},
                    keep_best="eval_loss", patience=2, progress=False)
    assert history.eval_step == [4, 8, 12, 16] and history.eval_loss == [3.0, 2.0, 2.5, 2.6]
    assert (history.stop_reason, history.best_step, history.step[-1]) == ("patience", 8, 16)


def test_evaluate_is_called_on_each_model_in_eval_mode():
    task = tasks.memorisation_task("ABCAAB", window=4)
    batch = task.batch(50, seed=9)

    def evaluate(model):
        assert not model.training and not torch.is_grad_enabled()
        predictions = model(batch.inputs)
        return {"eval_loss": task.loss(predictions, batch).item(), "eval_accuracy": task.accuracy(predictions, batch)}

    got, _ = train_both_ways(seeded_models("GRU", task, 2), task, [3, 4], steps=6, eval_every=3, evaluate=evaluate)
    assert got[0].eval_step == [3, 6] and len(got[0].eval_accuracy) == 2


@pytest.mark.parametrize("call, error, words", [
    (lambda m, t: train(m, t, steps=2), TypeError, "seeds=range\\(2\\)"),
    (lambda m, t: train(m, t, steps=2, seeds=[0]), ValueError, "2 models, got 1 seeds"),
    (lambda m, t: train(m, t, steps=2, seeds=[0, -1]), ValueError, "seeds\\[1\\]"),
    (lambda m, t: train(m, t, steps=2, seed=0, seeds=[0, 1]), TypeError, "seeds="),
    (lambda m, t: train(m[0], t, steps=2, seeds=[0, 1]), TypeError, "seed="),
    (lambda m, t: train(m, t, steps=2, seeds=[0, 1], stack_size=0), ValueError, "stack_size"),
    (lambda m, t: train(m, t, steps=2, seeds=[0, 1], keep_best="eval_loss"), ValueError, "eval_every"),
    (lambda m, t: train(m, t, steps=2, seeds=[0, 1], eval_every=1, keep_best="loss"), ValueError, "keep_best"),
    (lambda m, t: train(m, t, steps=2, seeds=[0, 1], eval_every=1, patience=2), ValueError, "keep_best"),
    (lambda m, t: train(m, t, steps=2, seeds=[0, 1], stop_when=True), TypeError, "stop_when"),
    (lambda m, t: train(m, t, steps=2, seeds=[0, 1], eval_every=1, validation=[]), TypeError, "validation"),
])
def test_many_seed_arguments_are_checked(call, error, words):
    task = tasks.noisy_sines_task(length=8)
    with pytest.raises(error, match=words):
        call(seeded_models("GRU", task, 2), task)


def test_many_seeds_refuse_dropout():
    task = tasks.noisy_sines_task(length=8)
    models = [SequenceModel(rnnlab.GRU(1, 4, num_layers=2, dropout=0.3), 1, readout="all") for _ in range(2)]
    with pytest.raises(ValueError, match="dropout"):
        train(models, task, steps=1, seeds=[0, 1], progress=False)

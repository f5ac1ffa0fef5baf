"""StackedModels: S models run as one give each model's own outputs and gradients.

The oracle is each model run alone (and, for the recurrent layers, torch.nn), never the
stacked code itself.
"""

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, vmap

import rnnlab
from module_pairs import MODES, one_thread  # noqa: F401  (one_thread: a fixture)
from rnnlab import StackedModels


pytestmark = pytest.mark.usefixtures("one_thread")


def sequence_models(kind, count, library=rnnlab, **options):
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        layer = getattr(library, kind)(3, 5, **options).double()
        models.append(rnnlab.SequenceModel(layer, 2, readout="all").double())
    return models


class CharModel(nn.Module):
    """An embedding, an LSTM and a read-out returning (logits, state): a language model that
    a chapter trains with truncated BPTT, carrying the state from chunk to chunk."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.lstm = nn.LSTM(4, 6)
        self.head = nn.Linear(6, 7)

    def forward(self, tokens, state=None):
        output, state = self.lstm(self.embed(tokens), state)
        return self.head(output), state


@pytest.mark.parametrize("kind", MODES)
@pytest.mark.parametrize("library", [rnnlab, torch.nn], ids=["rnnlab", "torch.nn"])
def test_each_slice_of_a_stack_is_that_model_alone(kind, library):
    options = {"proj_size": 2} if kind == "LSTM" else {}         # an LSTM with projections
    models = sequence_models(kind, 3, library, num_layers=2, bidirectional=kind == "GRU", **options)
    stack = StackedModels(models)
    x = torch.randn(3, 4, 2, 3, dtype=torch.float64)
    out = stack(x)
    (out ** 2).sum().backward()
    for k, model in enumerate(models):
        expected = model(x[k])
        torch.testing.assert_close(out[k], expected, rtol=1e-12, atol=1e-12)
        (expected ** 2).sum().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stack.params[name].grad[k], p.grad, rtol=1e-10, atol=1e-12)


def test_shared_inputs_select_and_write_back():
    models = sequence_models("LSTM", 4)
    stack = StackedModels(models)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    shared = stack(x, in_dims=None)
    assert shared.shape == (4, 5, 2, 2)
    for k, model in enumerate(models):
        torch.testing.assert_close(shared[k], model(x), rtol=1e-12, atol=1e-12)

    some = stack(torch.stack([x, 2 * x]), select=[3, 1])
    torch.testing.assert_close(some[0], models[3](x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(some[1], models[1](2 * x), rtol=1e-12, atol=1e-12)
    some.sum().backward()
    assert stack.params["head.weight"].grad[[0, 2]].abs().sum() == 0, "unselected models get no gradient"

    with torch.no_grad():
        for p in stack.parameters():
            p.mul_(0.5)
    before = copy.deepcopy(models[2].state_dict())
    stack.write_back()
    for name, value in models[2].state_dict().items():
        torch.testing.assert_close(value, 0.5 * before[name])


def test_truncated_bptt_with_carried_state_matches_each_model_alone():
    torch.manual_seed(0)
    models = [CharModel().double() for _ in range(3)]
    singles = copy.deepcopy(models)
    stack = StackedModels(models)
    optimizer = torch.optim.SGD(stack.parameters(), lr=0.1)
    tokens = torch.randint(0, 7, (3, 12, 2))         # (S, T, B): one text stream per model
    state = None
    for chunk in tokens.split(4, dim=1):
        logits, state = stack(chunk[:, :-1], state)
        state = tuple(s.detach() for s in state)
        losses = vmap(nn.functional.cross_entropy)(logits.flatten(1, 2), chunk[:, 1:].flatten(1))
        optimizer.zero_grad()
        losses.sum().backward()
        optimizer.step()
    stack.write_back()
    for k, model in enumerate(singles):
        single_optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        single_state = None
        for chunk in tokens[k].split(4, dim=0):
            logits, single_state = model(chunk[:-1], single_state)
            single_state = tuple(s.detach() for s in single_state)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), chunk[1:].flatten())
            single_optimizer.zero_grad()
            loss.backward()
            single_optimizer.step()
        for (name, expected), got in zip(model.named_parameters(), models[k].parameters()):
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12, msg=name)


def test_vmap_over_stacked_rnnlab_weights_runs_the_batched_recurrence():
    """vmap over the weights of a module (PyTorch's ensembling recipe) and vmap nested in vmap."""
    torch.manual_seed(0)
    layers = [rnnlab.GRU(3, 4, dtype=torch.float64) for _ in range(6)]
    params, _ = torch.func.stack_module_state(layers)
    x = torch.randn(6, 5, 2, 3, dtype=torch.float64)
    one = lambda p, xx: functional_call(layers[0], p, (xx,))[0]
    flat = vmap(one)(params, x)
    nested = vmap(vmap(one))({k: v.unflatten(0, (2, 3)) for k, v in params.items()}, x.unflatten(0, (2, 3)))
    for k, layer in enumerate(layers):
        torch.testing.assert_close(flat[k], layer(x[k])[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(nested.flatten(0, 1), flat, rtol=1e-12, atol=1e-12)


def test_dropout_follows_the_randomness_setting():
    models = sequence_models("GRU", 2, num_layers=2, dropout=0.5)
    x = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="random"):
        StackedModels(models)(x)
    stack = StackedModels(models, randomness="different")
    assert stack(x).shape == (2, 4, 2, 2)
    stack.eval()
    torch.testing.assert_close(stack(x)[1], models[1].eval()(x[1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("models, error, words", [
    (lambda: rnnlab.GRU(3, 4), TypeError, "list"),
    (lambda: [], TypeError, "non-empty"),
    (lambda: [rnnlab.GRU(3, 4), rnnlab.LSTM(3, 4)], TypeError, "models\\[1\\] a LSTM"),
    (lambda: [rnnlab.GRU(3, 4), rnnlab.GRU(3, 5)], ValueError, "weight_ih_l0. is \\(12, 3\\).*but \\(15, 3\\)"),
    (lambda: [rnnlab.GRU(3, 4), rnnlab.GRU(3, 4).eval()], ValueError, "training"),
    (lambda: [rnnlab.GRU(3, 4), "GRU"], TypeError, "models\\[1\\]"),
])
def test_models_that_cannot_stack_are_refused_with_the_reason(models, error, words):
    with pytest.raises(error, match=words):
        StackedModels(models())


def test_select_and_in_dims_errors_name_the_argument():
    stack = StackedModels(sequence_models("RNN", 2))
    x = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="select"):
        stack(x, select=[2])
    with pytest.raises(ValueError, match="in_dims"):
        stack(x, in_dims=(0, 0))
    with pytest.raises(ValueError, match="randomness"):
        StackedModels(sequence_models("RNN", 2), randomness="some")

"""rnnlab.sizing against hand-counted parameter formulas and torch.nn's own modules.

The oracle of a layer's size is the formula of the torch.nn documentation: ``G`` gate
blocks, each ``H x I`` input weights, ``H x H`` recurrent weights and two bias vectors
of ``H`` (G = 1 for the vanilla RNN, 3 for the GRU, 4 for the LSTM); a read-out adds
``H x O + O``. The largest hidden size within a budget is then found by counting the
formula up from 1, without the code under test.
"""

import numpy as np
import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.sizing import hidden_size_for_budget, layer_weights, parameter_count

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def layer_formula(kind, inputs, hidden):
    return GATES[kind] * (hidden * inputs + hidden * hidden + 2 * hidden)


def model_formula(kind, inputs, hidden, outputs):
    return layer_formula(kind, inputs, hidden) + hidden * outputs + outputs


def largest_by_formula(kind, inputs, outputs, budget):
    """Count the formula up: the last size whose model fits, 0 if none."""
    hidden = 0
    while model_formula(kind, inputs, hidden + 1, outputs) <= budget:
        hidden += 1
    return hidden


class WithReadout(nn.Module):
    def __init__(self, layer, hidden, outputs):
        super().__init__()
        self.layer, self.head = layer, nn.Linear(hidden, outputs)


def torch_builder(kind, inputs, outputs, library=nn):
    return lambda hidden: WithReadout(getattr(library, kind)(inputs, hidden), hidden, outputs)


@pytest.mark.parametrize("kind", GATES)
@pytest.mark.parametrize("inputs, hidden", [(1, 1), (4, 5), (32, 128)])
def test_parameter_count_is_the_documented_formula(kind, inputs, hidden):
    assert parameter_count(getattr(nn, kind)(inputs, hidden)) == layer_formula(kind, inputs, hidden)
    assert parameter_count(getattr(rnnlab, kind)(inputs, hidden)) == layer_formula(kind, inputs, hidden)


def test_parameter_count_of_stacked_bidirectional_and_projected_layers():
    # layer 2 of a bidirectional stack reads both directions: 2H inputs
    two = nn.GRU(3, 7, num_layers=2, bidirectional=True)
    assert parameter_count(two) == 2 * layer_formula("GRU", 3, 7) + 2 * layer_formula("GRU", 14, 7)
    # proj_size P: the recurrent weights are 4H x P, plus a P x H projection
    projected = nn.LSTM(3, 8, proj_size=2)
    assert parameter_count(projected) == 4 * (8 * 3 + 8 * 2 + 2 * 8) + 2 * 8


def test_parameter_count_skips_frozen_and_counts_a_shared_parameter_once():
    embedding = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight            # tied weights, as in language models
    model = nn.ModuleList([embedding, head])
    assert parameter_count(model) == 40
    embedding.weight.requires_grad_(False)
    assert parameter_count(model) == 0


def test_parameter_count_names_its_argument():
    with pytest.raises(TypeError, match="module"):
        parameter_count([torch.zeros(3)])


@pytest.mark.parametrize("kind", GATES)
@pytest.mark.parametrize("inputs, outputs, budget",
                         [(1, 1, 10), (2, 1, 650), (3, 2, 2000), (89, 89, 60_000)])
def test_largest_hidden_size_within_the_budget(kind, inputs, outputs, budget):
    expected = largest_by_formula(kind, inputs, outputs, budget)
    if expected == 0:
        with pytest.raises(ValueError, match="budget"):
            hidden_size_for_budget(torch_builder(kind, inputs, outputs), budget)
        return
    for library in (nn, rnnlab):
        assert hidden_size_for_budget(torch_builder(kind, inputs, outputs, library), budget) == expected


@pytest.mark.parametrize("kind", GATES)
@pytest.mark.parametrize("hidden", [1, 2, 3, 17, 64])
def test_a_budget_exactly_met_fits_and_one_less_does_not(kind, hidden):
    build = torch_builder(kind, 5, 3)
    exact = model_formula(kind, 5, hidden, 3)
    assert hidden_size_for_budget(build, exact) == hidden
    assert hidden_size_for_budget(build, exact + 1) == hidden
    if hidden > 1:
        assert hidden_size_for_budget(build, exact - 1) == hidden - 1


def test_at_one_budget_the_gru_gets_more_units_than_the_lstm():
    gru = hidden_size_for_budget(lambda h: nn.GRU(10, h), 10_000)
    lstm = hidden_size_for_budget(lambda h: nn.LSTM(10, h), 10_000)
    assert layer_formula("GRU", 10, gru) <= 10_000 < layer_formula("GRU", 10, gru + 1)
    assert layer_formula("LSTM", 10, lstm) <= 10_000 < layer_formula("LSTM", 10, lstm + 1)
    assert gru > lstm


def test_the_search_leaves_the_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    hidden_size_for_budget(lambda h: nn.LSTM(4, h), 5_000)
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.parametrize("budget, error", [(0, ValueError), (-5, ValueError), (True, TypeError),
                                           (2.5, TypeError), ("100", TypeError), (None, TypeError)])
def test_a_wrong_budget_is_named(budget, error):
    with pytest.raises(error, match="budget"):
        hidden_size_for_budget(lambda h: nn.GRU(2, h), budget)


def test_a_budget_below_size_one_says_what_size_one_costs():
    with pytest.raises(ValueError, match=r"budget.*\b9\b.*\b12\b"):   # RNN(9, 1): 9 + 1 + 2
        hidden_size_for_budget(lambda h: nn.RNN(9, h), 9)


def test_a_wrong_build_is_named():
    with pytest.raises(TypeError, match="build"):
        hidden_size_for_budget(nn.GRU(2, 3), 100)
    with pytest.raises(TypeError, match=r"build\(1\)"):
        hidden_size_for_budget(lambda h: h * h, 100)
    with pytest.raises(ValueError, match="does not grow"):
        hidden_size_for_budget(lambda h: nn.Linear(3, 3), 100)


@pytest.mark.parametrize("kind", GATES)
def test_layer_weights_are_torch_parameters_without_the_layer_suffix(kind):
    module = getattr(nn, kind)(3, 4)
    weights = layer_weights(module)
    assert sorted(weights) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
    for name, array in weights.items():
        assert isinstance(array, np.ndarray)
        np.testing.assert_array_equal(array, getattr(module, name + "_l0").detach().numpy())
    assert sorted(layer_weights(getattr(nn, kind)(3, 4, bias=False))) == ["weight_hh", "weight_ih"]
    cell = getattr(nn, kind + "Cell")(3, 4)           # torch.nn's cells name them without _l0
    for name, array in layer_weights(cell).items():
        np.testing.assert_array_equal(array, getattr(cell, name).detach().numpy())


@pytest.mark.parametrize("options", [dict(num_layers=2), dict(bidirectional=True)])
def test_layer_weights_refuse_what_four_names_cannot_hold(options):
    with pytest.raises(ValueError, match="one layer in one direction"):
        layer_weights(nn.GRU(3, 4, **options))
    with pytest.raises(ValueError, match="weight_hr_l0"):
        layer_weights(nn.LSTM(3, 4, proj_size=2))

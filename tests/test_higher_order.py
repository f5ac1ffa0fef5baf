"""Derivatives beyond the first: double backward, forward mode and the torch.func transforms.

The first-order backward pass of rnnlab's modules is BPTT written by hand; these tests check
that differentiating *through* it (create_graph=True) and forward-mode differentiation give
what torch.nn gives, and what finite differences give (gradcheck, gradgradcheck, float64).
The gradient-penalty and torch.func cases come from public reports: pytorch/pytorch#5261,
#26660 (a WGAN-GP critic that is an RNN), #103161, #110422 (jacrev over a recurrent model).
"""

import pytest
import torch
from torch.autograd import forward_ad
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vmap

from module_pairs import MODES, make_pair

CONFIGS = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "bias": False}),
    ("GRU", {}),
    ("GRU", {"bias": False, "batch_first": True}),
    ("LSTM", {}),
    ("LSTM", {"bias": False}),
    ("GRU", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
]
IDS = [f"{mode}-{'-'.join(f'{k}={v}' for k, v in options.items()) or 'default'}" for mode, options in CONFIGS]


def functional(model, names):
    """``f(x, *parameters)`` running ``model`` with the named parameters given (gradcheck
    perturbs them) and its own values for the others."""
    return lambda x, *params: functional_call(model, dict(zip(names, params)), (x,), strict=False)[0]


def inputs_for(model, steps=4, batch=2):
    shape = (batch, steps, model.input_size) if model.batch_first else (steps, batch, model.input_size)
    return torch.randn(shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("mode,options", CONFIGS, ids=IDS)
def test_double_backward_and_forward_mode_agree_with_finite_differences(mode, options):
    _, model = make_pair(mode, 0, input_size=2, hidden_size=3, **options)
    # stacks are checked through their last layer's reverse direction (the first layer and
    # the forward direction are the single-layer cases): every input is a costly column
    last = "_l1_reverse" if options.get("bidirectional") else ""
    names = [name for name, _ in model.named_parameters() if name.endswith(last)]
    inputs = (inputs_for(model, steps=3), *(model.get_parameter(name) for name in names))
    assert torch.autograd.gradgradcheck(functional(model, names), inputs)
    assert torch.autograd.gradcheck(functional(model, names), inputs, check_forward_ad=True,
                                    check_backward_ad=False, check_undefined_grad=False, check_batched_grad=False)


def gradient_penalty_gradients(model, x):
    """d/dθ of a WGAN-GP penalty ((‖∂D/∂x‖ − 1)²), D the sum of the last output."""
    x = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(model(x)[0][-1].sum(), x, create_graph=True)
    penalty = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return torch.autograd.grad(penalty, list(model.parameters()), allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("mode,options", CONFIGS, ids=IDS)
def test_gradient_penalty_gradients_match_torch_nn(mode, options):
    """The field case: torch.nn gives these second derivatives; a hand-written backward that
    autograd cannot see through would give other numbers without an error."""
    reference, ours = make_pair(mode, 1, input_size=2, hidden_size=4, **options)
    x = torch.randn(6, 3, 2, dtype=torch.float64)
    if options.get("batch_first"):
        x = x.transpose(0, 1)
    for expected, got in zip(gradient_penalty_gradients(reference, x), gradient_penalty_gradients(ours, x)):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_torch_func_grad_jacrev_jacfwd_hessian_and_jvp_match_torch_nn(mode):
    reference, ours = make_pair(mode, 2, input_size=3, hidden_size=4)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    results = []
    for model in (reference, ours):
        params = {name: p.detach() for name, p in model.named_parameters()}
        loss = lambda p: functional_call(model, p, (x,))[0].pow(2).sum()
        last_output = lambda xx: model(xx)[0][-1]
        with_weight_hh = lambda w: functional_call(model, {**params, "weight_hh_l0": w}, (x,))[0].pow(2).sum()
        tangent = torch.ones_like(x)
        results.append({
            "grad": grad(loss)(params),
            "jacrev": jacrev(last_output)(x),
            "jacfwd": jacfwd(last_output)(x),
            "hessian": hessian(with_weight_hh)(params["weight_hh_l0"]),
            "jvp": jvp(last_output, (x,), (tangent,))[1],
        })
    expected, got = results
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_vmap_of_grad_gives_per_example_gradients(mode):
    """Per-example gradients, each checked against torch.nn on that example alone."""
    reference, ours = make_pair(mode, 3, input_size=3, hidden_size=4)
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    params = {name: p.detach() for name, p in ours.named_parameters()}
    one_example = lambda p, xi: functional_call(ours, p, (xi.unsqueeze(1),))[0].pow(2).sum()
    per_example = vmap(grad(one_example), in_dims=(None, 1))(params, x)
    for b in range(x.shape[1]):
        reference.zero_grad()
        reference(x[:, b:b + 1])[0].pow(2).sum().backward()
        for name, p in reference.named_parameters():
            torch.testing.assert_close(per_example[name][b], p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["GRU", "LSTM"])
def test_forward_over_reverse_without_create_graph_is_exact(mode):
    """Tangents pushed through an ordinary backward pass (no create_graph): the gates kept
    from the forward pass carry no tangent, so the backward pass must recompute them."""
    results = []
    for model in make_pair(mode, 4, input_size=2, hidden_size=3):
        x = torch.randn(4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        weight = model.weight_hh_l0.detach()
        with forward_ad.dual_level():
            dual = forward_ad.make_dual(weight.clone().requires_grad_(), torch.ones_like(weight))
            output = functional_call(model, {**dict(model.named_parameters()), "weight_hh_l0": dual}, (x,))[0]
            (g,) = torch.autograd.grad(output.pow(2).sum(), dual)
            results.append(forward_ad.unpack_dual(g).tangent)
    torch.testing.assert_close(results[1], results[0], rtol=1e-10, atol=1e-12)

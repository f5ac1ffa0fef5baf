"""rnnlab.RNN/GRU/LSTM are drop-in replacements for torch.nn.RNN/GRU/LSTM."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import rnnlab
from module_pairs import MODES, WITH_CELL_STATE, make_pair



def scalar_loss(result):
    """A loss that touches the output and the final state(s) with different weights."""
    output, state = result
    output = output.data if isinstance(output, PackedSequence) else output
    states = state if isinstance(state, tuple) else (state,)
    return (output ** 2).sum() + sum((k + 2) * s.sin().sum() for k, s in enumerate(states))


configs = st.fixed_dictionaries({
    "mode": st.sampled_from(MODES),
    "input_size": st.integers(1, 4),
    "hidden_size": st.integers(1, 5),
    "num_layers": st.integers(1, 3),
    "bias": st.booleans(),
    "batch_first": st.booleans(),
    "bidirectional": st.booleans(),
    "steps": st.integers(1, 6),
    "batch": st.integers(1, 3),
    "unbatched": st.booleans(),
    "initial_state": st.booleans(),
    "relu": st.booleans(),
    "proj_size": st.integers(0, 4),
    "packed": st.sampled_from([None, "sorted", "unsorted"]),
    "seed": st.integers(0, 2**16),
})


@settings(max_examples=100, deadline=None)
@given(configs)
def test_modules_match_torch_nn_outputs_states_and_all_gradients(cfg):
    """Every constructor option, unbatched, packed (sorted or not) and projected inputs,
    with and without initial states: outputs, final states and every gradient as torch.nn."""
    mode = cfg["mode"]
    options = {k: cfg[k] for k in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional")}
    if mode == "RNN" and cfg["relu"]:
        options["nonlinearity"] = "relu"
    if mode == "LSTM" and cfg["proj_size"] < cfg["hidden_size"]:
        options["proj_size"] = cfg["proj_size"]
    reference, ours = make_pair(mode, cfg["seed"], **options)
    directions = 2 if cfg["bidirectional"] else 1
    features = options.get("proj_size") or cfg["hidden_size"]
    packed = cfg["packed"] if not cfg["unbatched"] else None
    if cfg["unbatched"]:
        shape, batch = (cfg["steps"], cfg["input_size"]), ()
    else:
        shape = (cfg["batch"], cfg["steps"], cfg["input_size"]) if cfg["batch_first"] and not packed else \
                (cfg["steps"], cfg["batch"], cfg["input_size"])
        batch = (cfg["batch"],)
    x = torch.randn(shape, dtype=torch.float64)
    layers = cfg["num_layers"] * directions
    states = [torch.randn((layers, *batch, size), dtype=torch.float64)
              for size in ([features, cfg["hidden_size"]] if mode in WITH_CELL_STATE else [features])]
    lengths = torch.randint(1, cfg["steps"] + 1, batch or (1,), generator=torch.Generator().manual_seed(cfg["seed"]))
    if packed == "sorted":
        lengths = lengths.sort(descending=True).values

    def run(module):
        x_ = x.clone().requires_grad_()
        states_ = [s.clone().requires_grad_() for s in states]
        hx = None
        if cfg["initial_state"]:
            hx = tuple(states_) if mode in WITH_CELL_STATE else states_[0]
        inputs = pack_padded_sequence(x_, lengths, enforce_sorted=packed == "sorted") if packed else x_
        result = module(inputs, hx)
        leaves = [x_, *(states_ if cfg["initial_state"] else []), *module.parameters()]
        return result, torch.autograd.grad(scalar_loss(result), leaves)

    (out_ref, state_ref), grads_ref = run(reference)
    (out_ours, state_ours), grads_ours = run(ours)
    if packed:
        assert isinstance(out_ours, PackedSequence)
        for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
            mine, theirs = getattr(out_ours, name), getattr(out_ref, name)
            assert (mine is theirs is None) or torch.equal(mine, theirs), name
        out_ours, out_ref = out_ours.data, out_ref.data
    torch.testing.assert_close(out_ours, out_ref, rtol=0, atol=1e-10)
    for ours_s, ref_s in zip(state_ours if mode in WITH_CELL_STATE else (state_ours,),
                             state_ref if mode in WITH_CELL_STATE else (state_ref,)):
        torch.testing.assert_close(ours_s, ref_s, rtol=0, atol=1e-10)
    assert len(grads_ours) == len(grads_ref)
    for g_ours, g_ref in zip(grads_ours, grads_ref):
        torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-10)


ATTRIBUTE_CASES = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("GRU", {"bias": False}), ("LSTM", {}),
                   ("LSTM", {"proj_size": 2})]


@pytest.mark.parametrize("mode,extra", ATTRIBUTE_CASES, ids=[f"{m}-{e}" for m, e in ATTRIBUTE_CASES])
def test_parameters_and_rnnbase_attributes_match_torch_nn(mode, extra):
    """Names, shapes and order of the parameters, and what torch.nn.RNNBase exposes about
    them: mode, proj_size, _flat_weights_names, _flat_weights, all_weights, flatten_parameters()."""
    options = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, **extra)
    reference = getattr(torch.nn, mode)(**options)
    ours = getattr(rnnlab, mode)(**options)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
           [(n, tuple(p.shape)) for n, p in reference.named_parameters()]
    assert (ours.mode, ours.proj_size) == (reference.mode, reference.proj_size)
    assert ours._flat_weights_names == reference._flat_weights_names
    assert all(a is b for a, b in zip(ours._flat_weights, ours.parameters()))
    assert [[tuple(w.shape) for w in group] for group in ours.all_weights] == \
           [[tuple(w.shape) for w in group] for group in reference.all_weights]
    assert ours.all_weights[1][0] is ours.weight_ih_l0_reverse
    assert ours.flatten_parameters() is None


def test_rnn_takes_nonlinearity_as_its_fourth_positional_argument_as_torch_nn():
    ours, reference = rnnlab.RNN(2, 3, 1, "relu", False), torch.nn.RNN(2, 3, 1, "relu", False)
    assert (ours.nonlinearity, ours.mode, ours.bias) == (reference.nonlinearity, reference.mode, reference.bias)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnnlab.RNN(2, 3, 1, "sigmoid")
    with pytest.raises(ValueError, match="proj_size"):
        rnnlab.GRU(2, 3, proj_size=1)
    with pytest.raises(ValueError, match="proj_size must be smaller than hidden_size"):
        rnnlab.LSTM(2, 3, proj_size=3)


@pytest.mark.parametrize("mode", MODES)
def test_outputs_may_be_edited_in_place_before_backward_as_with_torch_nn(mode):
    reference, ours = make_pair(mode, 3, input_size=2, hidden_size=3)
    x = torch.randn(4, 2, 2, dtype=torch.float64)
    grads = []
    for module in (reference, ours):
        output, state = module(x)
        output.mul_(2)                              # a user's in-place edit of the returned tensors
        (state[0] if mode in WITH_CELL_STATE else state).add_(1)
        grads.append(torch.autograd.grad(output.sum(), list(module.parameters())))
    for expected, got in zip(*grads):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_batch_gives_empty_outputs_as_torch_nn(mode):
    reference, ours = make_pair(mode, 4, input_size=2, hidden_size=3, num_layers=2)
    x = torch.zeros(5, 0, 2, dtype=torch.float64)
    for expected, got in zip(torch.utils._pytree.tree_leaves(reference(x)), torch.utils._pytree.tree_leaves(ours(x))):
        assert got.shape == expected.shape


@pytest.mark.parametrize("mode", ["RNN", "GRU"])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_cpu_bfloat16_autocast_follows_torch_nn(mode, input_dtype):
    """Under CPU autocast torch.nn runs the RNN in bfloat16 and the GRU in its input's dtype."""
    reference, ours = make_pair(mode, 6, input_size=3, hidden_size=4)
    reference, ours = reference.float(), ours.float()
    x = torch.randn(5, 2, 3).to(input_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = reference(x), ours(x)
    for e, g in zip(expected, got):
        assert g.dtype == e.dtype
        torch.testing.assert_close(g, e, rtol=2e-2, atol=2e-2)


def test_cpu_bfloat16_autocast_runs_the_lstm_in_bfloat16():
    """torch.nn's LSTM goes to oneDNN, in bfloat16 where the processor has it (and fails
    where it has not); rnnlab computes in bfloat16 everywhere."""
    torch.manual_seed(0)
    model = rnnlab.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, (h_n, c_n) = model(x)
    assert output.dtype == h_n.dtype == c_n.dtype == torch.bfloat16
    torch.testing.assert_close(output.float(), model(x)[0], rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("mode", MODES)
def test_default_initialisation_draws_the_same_numbers_as_torch_nn(mode):
    # torch.nn draws every parameter uniform in [-1/sqrt(H), 1/sqrt(H)], in registration
    # order; with the same seed an exact drop-in draws exactly the same numbers.
    torch.manual_seed(11)
    reference = getattr(torch.nn, mode)(5, 6, num_layers=2)
    torch.manual_seed(11)
    ours = getattr(rnnlab, mode)(5, 6, num_layers=2)
    for (name, p_ours), p_ref in zip(ours.named_parameters(), reference.parameters()):
        assert torch.equal(p_ours, p_ref), name
    assert all(p.abs().max() <= 1 / 6 ** 0.5 for p in ours.parameters())


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_moves_both_ways(mode):
    torch.manual_seed(0)
    ours = getattr(rnnlab, mode)(3, 4, num_layers=2, bias=False)
    reference = getattr(torch.nn, mode)(3, 4, num_layers=2, bias=False)
    reference.load_state_dict(ours.state_dict())       # rnnlab -> torch.nn (strict)
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(reference(x)[0], ours(x)[0], rtol=0, atol=1e-6)
    fresh = getattr(rnnlab, mode)(3, 4, num_layers=2, bias=False)
    fresh.load_state_dict(reference.state_dict())       # torch.nn -> rnnlab (strict)
    torch.testing.assert_close(fresh(x)[0], reference(x)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_float32_training_step_matches_torch_nn(mode):
    reference, ours = make_pair(mode, 5, input_size=8, hidden_size=16, num_layers=2)
    reference, ours = reference.float(), ours.float()
    x = torch.randn(30, 4, 8)
    for module in (reference, ours):
        module(x)[0].pow(2).mean().backward()
    torch.testing.assert_close(ours(x)[0], reference(x)[0], rtol=1e-5, atol=1e-6)
    for p_ours, p_ref in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_dropout_is_inert_in_eval_mode(mode):
    reference, ours = make_pair(mode, 2, input_size=3, hidden_size=4, num_layers=3, dropout=0.5)
    reference.eval(), ours.eval()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], reference(x)[0], rtol=0, atol=1e-10)


def test_dropout_between_layers_zeroes_and_rescales_as_documented():
    # Layer 0 (ReLU, positive bias, zero weights) outputs a known positive constant a;
    # layer 1 copies its input (W_ih = I, W_hh = 0, no bias). So layer 1 outputs
    # relu(dropout(a)): 0 with probability p, a / (1 - p) otherwise.
    p, hidden = 0.3, 50
    model = rnnlab.RNN(1, hidden, num_layers=2, dropout=p, nonlinearity="relu").double()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.zero_()
        model.bias_ih_l0.fill_(0.7)
        model.weight_ih_l1.copy_(torch.eye(hidden))
    model.train()
    torch.manual_seed(0)
    output = model(torch.zeros(40, 25, 1, dtype=torch.float64))[0]
    dropped = (output == 0).double().mean().item()
    kept = output[output != 0]
    assert abs(dropped - p) < 0.02, f"fraction dropped {dropped:.3f}, expected {p}"
    torch.testing.assert_close(kept, torch.full_like(kept, 0.7 / (1 - p)))
    model.eval()
    assert torch.all(model(torch.zeros(3, 2, 1, dtype=torch.float64))[0] == 0.7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("mode", MODES)
def test_modules_run_on_cuda_and_match_torch_nn(mode):
    reference, ours = make_pair(mode, 4, input_size=3, hidden_size=8, num_layers=2, bidirectional=True)
    reference, ours = reference.cuda(), ours.cuda()
    x = torch.randn(7, 2, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    out_ref, out_ours = reference(x)[0], ours(x)[0]
    torch.testing.assert_close(out_ours, out_ref, rtol=0, atol=1e-10)
    g_ref = torch.autograd.grad(out_ref.sum(), x)[0]
    g_ours = torch.autograd.grad(out_ours.sum(), x)[0]
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-10)


def test_repr_reads_like_torch_nn():
    assert repr(rnnlab.GRU(3, 4, num_layers=2, batch_first=True)) == "GRU(3, 4, num_layers=2, batch_first=True)"
    assert repr(rnnlab.LSTM(3, 4, proj_size=2, num_layers=2)) == repr(torch.nn.LSTM(3, 4, proj_size=2, num_layers=2))
    assert repr(rnnlab.RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4, nonlinearity='relu')"


@pytest.mark.parametrize("mode", MODES)
def test_packed_batch_first_bidirectional_sequences_end_at_their_own_last_step(mode):
    """The field case of pack_padded_sequence (variable lengths, unsorted, batch-first,
    bidirectional): h_n holds each sequence's state after its own last real step, as
    torch.nn gives it; running the padded tensor instead would not."""
    reference, ours = make_pair(mode, 7, input_size=3, hidden_size=4, batch_first=True, bidirectional=True)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([6, 2, 4]), batch_first=True, enforce_sorted=False)
    (out_ref, state_ref), (out_ours, state_ours) = reference(packed), ours(packed)
    torch.testing.assert_close(out_ours.data, out_ref.data, rtol=0, atol=1e-12)
    for got, expected in zip(torch.utils._pytree.tree_leaves(state_ours), torch.utils._pytree.tree_leaves(state_ref)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    padded_state = torch.utils._pytree.tree_leaves(ours(x)[1])[0]
    assert (padded_state - torch.utils._pytree.tree_leaves(state_ref)[0]).abs().max() > 1e-3

"""PyTorch's own module tests for nn.RNN, nn.GRU and nn.LSTM, run on rnnlab's classes too.

"Drop-in" is measured by what PyTorch checks on its own classes. The installed torch ships
the data of those checks: the ``ModuleInfo`` entries of ``module_db`` in
``torch.testing._internal.common_modules``, with their sample inputs (every combination of
``bias``, ``batch_first``, ``bidirectional``, ``nonlinearity`` and ``proj_size`` on two
stacked layers, unbatched inputs, initial states, and for the RNN and the GRU packed
sequences) and their error inputs. The test bodies live in PyTorch's repository
(test/test_modules.py ``TestModule``, and the recurrent-module tests of test/test_nn.py),
not in the wheel; the checks below are ours, written for the same properties, and run on
each torch.nn class as the control and on its rnnlab twin, with the same samples.

Properties, as in ``TestModule``: forward against the sample's reference (an unbatched
input equals the batched one with a batch of 1) and, beyond it, against torch.nn with the
same weights; factory arguments (device, dtype); repr; pickling of the whole module;
non-contiguous inputs; first and second derivatives (gradcheck, gradgradcheck, float64,
with every parameter and then with each parameter alone); memory format (contiguous
outputs and gradients); training flag; construction under ``torch.device("meta")``;
``to_empty`` and ``to`` (with and without swapping tensors, with gradients set); error
types with the argument named. From test_nn.py: argument checks, zero initial states,
weight normalisation of each parameter, retained graphs.

Not run, with the reason: ``test_cpu_gpu_parity`` and ``test_multiple_device_transfer``
need CUDA (tests/test_modules.py runs rnnlab on CUDA against torch.nn where a GPU exists);
``test_check_inplace`` applies to modules with an ``inplace`` argument only. Error
messages are compared by the argument they name, not by torch's wording (rnnlab's
messages say what was expected and what came). To keep the suite within its time budget,
the gradient checks use gradcheck's fast mode (a random projection of the Jacobian instead
of all of it) on the few samples that together cover every option (two for second
derivatives), where TestModule runs the full check on every sample. With these, every
check that torch.nn passes on a CPU, rnnlab passes.
"""

import io
import pickle
import re
from itertools import product

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence
from torch.testing._internal.common_modules import ModuleErrorEnum, module_db
from torch.utils._pytree import tree_flatten, tree_map

import rnnlab
from module_pairs import MODES, WITH_CELL_STATE, one_thread  # noqa: F401  (one_thread: a fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

INFOS = {info.module_cls.__name__: info for info in module_db
         if info.module_cls in [getattr(torch.nn, mode, None) for mode in MODES]}
NAMES = sorted(INFOS)
LIBRARIES = {"torch.nn": torch.nn, "rnnlab": rnnlab}


def module_class(library, name):
    return getattr(LIBRARIES[library], name)


def samples(name, dtype=torch.float64, requires_grad=False, training=True, device="cpu"):
    """The ModuleInfo's sample inputs, packed sequences included for the RNN and the GRU."""
    info = INFOS[name]
    return info.module_inputs_func(info, device=device, dtype=dtype, requires_grad=requires_grad,
                                   training=training, with_packed_sequence=name != "LSTM")


def build(cls, sample, dtype=torch.float64, training=True):
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    return cls(*args, **kwargs).to(dtype).train(training)


def forward_args(sample):
    return sample.forward_input.args, sample.forward_input.kwargs


def tensors(value):
    """The floating tensors in a nested input or output (a PackedSequence's data)."""
    flat = tree_flatten(value, is_leaf=lambda v: isinstance(v, PackedSequence))[0]
    return [leaf.data if isinstance(leaf, PackedSequence) else leaf for leaf in flat
            if isinstance(leaf, (torch.Tensor, PackedSequence))]


def assert_same(got, expected, **tolerance):
    """Equal outputs, a packed output's batch sizes and orderings included."""
    packed = lambda v: [leaf for leaf in tree_flatten(v, is_leaf=lambda x: isinstance(x, PackedSequence))[0]
                        if isinstance(leaf, PackedSequence)]
    for g, e in zip(packed(got), packed(expected)):
        for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
            a, b = getattr(g, field), getattr(e, field)
            assert (a is b is None) or torch.equal(a, b), field
    got, expected = tensors(got), tensors(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, **tolerance)


def covering(sample_list, count=None):
    """A few samples that together show every option value of the whole list at least once
    (bias, batch_first, bidirectional, nonlinearity, proj_size, an initial state, packing):
    the gradient checks cost seconds each, so they run on these."""
    def features(sample):
        kwargs = sample.constructor_input.kwargs
        args = sample.forward_input.args
        return {*((k, v) for k, v in kwargs.items() if k not in ("input_size", "hidden_size", "num_layers")),
                ("initial state", len(args) > 1), ("packed", isinstance(args[0], PackedSequence))}
    wanted, chosen = set().union(*(features(s) for s in sample_list)), []
    while wanted and (count is None or len(chosen) < count):
        best = max(sample_list, key=lambda s: len(features(s) & wanted))
        chosen.append(best)
        wanted -= features(best)
    return chosen


both = pytest.mark.parametrize("library", list(LIBRARIES))
each_module = pytest.mark.parametrize("name", NAMES)
modes = pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])


# --- TestModule ---------------------------------------------------------------------------


@each_module
@both
@modes
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_forward_matches_the_reference_and_torch_nn(name, library, training, dtype):
    for sample in samples(name, dtype, training=training):
        args, kwargs = forward_args(sample)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = build(module_class(library, name), sample, dtype, training)
            outputs = module(*args, **kwargs)
            if sample.reference_fn is not None and not isinstance(args[0], PackedSequence):
                # the references are for unbatched inputs; packed samples have torch.nn only
                assert_same(outputs, sample.reference_fn(module, *args, **kwargs))
        control = build(module_class("torch.nn", name), sample, dtype, training)
        control.load_state_dict(module.state_dict())
        assert_same(outputs, control(*args, **kwargs))
        (module.float() if dtype == torch.float32 else module.double())(*args, **kwargs)
        assert all(p.dtype == dtype and p.device.type == "cpu" for p in module.parameters())


@each_module
@both
def test_factory_arguments_reach_every_parameter(name, library):
    for sample in samples(name, torch.float64):
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        module = module_class(library, name)(*args, **kwargs, device="cpu", dtype=torch.float64)
        assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in module.parameters())


@each_module
@both
def test_repr_and_str(name, library):
    for sample in samples(name):
        module = build(module_class(library, name), sample)
        assert repr(module).startswith(f"{name}(") and str(module) == repr(module)


@each_module
@both
def test_pickled_module_gives_the_same_outputs(name, library):
    for sample in samples(name, torch.float32):
        module = build(module_class(library, name), sample, torch.float32)
        args, kwargs = forward_args(sample)
        buffer = io.BytesIO()
        torch.save(module, buffer)
        buffer.seek(0)
        copy_ = torch.load(buffer, weights_only=False)
        assert_same(copy_(*args, **kwargs), module(*args, **kwargs))
        assert_same(pickle.loads(pickle.dumps(module))(*args, **kwargs), module(*args, **kwargs))


def non_contiguous(value):
    """Every tensor of ``value`` as a non-contiguous copy with equal values (TestModule's way)."""
    def make(t):
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            return t
        out = torch.repeat_interleave(t, 2, dim=-1)[..., ::2].detach()
        out.requires_grad = t.requires_grad
        return out
    if isinstance(value, PackedSequence):
        return value._replace(data=make(value.data))
    return tree_map(make, value)


def leaves_of(args):
    return [t for t in tensors(args) if t.requires_grad]


@each_module
@both
def test_non_contiguous_inputs_and_output_gradients_give_the_same_results(name, library):
    for sample in samples(name, torch.float64, requires_grad=True):
        module = build(module_class(library, name), sample)
        args, kwargs = forward_args(sample)
        outputs = module(*args, **kwargs)
        grad_outputs = [torch.randn_like(t) for t in tensors(outputs)]
        reference = torch.autograd.grad(tensors(outputs), [*leaves_of(args), *module.parameters()], grad_outputs)
        for in_args, grads in product([args, tuple(non_contiguous(a) for a in args)],
                                      [grad_outputs, [non_contiguous(g) for g in grad_outputs]]):
            out = module(*in_args, **kwargs)
            assert_same(out, outputs)
            got = torch.autograd.grad(tensors(out), [*leaves_of(in_args), *module.parameters()], grads)
            for g, e in zip(got, reference):
                torch.testing.assert_close(g, e, atol=1e-10, rtol=0)


def checked_function(module, args):
    """``f(*flat)`` for gradcheck, and ``flat``: the inputs that require gradients, then the
    parameters that do."""
    inputs = leaves_of(args)
    names, parameters = zip(*[(n, p) for n, p in module.named_parameters() if p.requires_grad])

    def replace(value, new):
        if isinstance(value, PackedSequence):
            return value._replace(data=new.pop(0)) if value.data.requires_grad else value
        if isinstance(value, torch.Tensor):
            return new.pop(0) if value.requires_grad else value
        if isinstance(value, tuple):
            return tuple(replace(v, new) for v in value)
        return value

    def run(*flat):
        new_inputs = list(flat[:len(inputs)])
        new_args = tuple(replace(a, new_inputs) for a in args)
        params = dict(zip(names, flat[len(inputs):]))
        return tuple(tensors(torch.func.functional_call(module, params, new_args, strict=False)))

    return run, [*inputs, *parameters]


@each_module
@both
@pytest.mark.parametrize("order", [1, 2], ids=["grad", "gradgrad"])
def test_first_and_second_derivatives_agree_with_finite_differences(name, library, order):
    """gradcheck / gradgradcheck over every input and parameter at once, on samples that
    cover every option (two for second derivatives); then, on the first, over the inputs
    with each parameter alone (the others not requiring gradients)."""
    check = torch.autograd.gradcheck if order == 1 else torch.autograd.gradgradcheck
    chosen = covering(samples(name, torch.float64, requires_grad=True), count=None if order == 1 else 2)
    for index, sample in enumerate(chosen):
        module = build(module_class(library, name), sample)
        args, _ = forward_args(sample)
        run, inputs = checked_function(module, args)
        assert check(run, inputs, fast_mode=True)
        if index == 0 and order == 1:
            parameters = list(module.parameters())
            for p in parameters:
                p.requires_grad_(False)
            for p in parameters:
                p.requires_grad_(True)
                assert check(*checked_function(module, args), fast_mode=True)
                p.requires_grad_(False)


@each_module
@both
def test_outputs_and_gradients_are_contiguous(name, library):
    for sample in samples(name, torch.float32, requires_grad=True):
        module = build(module_class(library, name), sample, torch.float32)
        args, kwargs = forward_args(sample)
        outputs = tensors(module(*args, **kwargs))
        assert all(o.is_contiguous() for o in outputs)
        grads = torch.autograd.grad([o for o in outputs if o.requires_grad],
                                    [*leaves_of(args), *module.parameters()],
                                    [torch.rand_like(o) for o in outputs if o.requires_grad])
        assert all(g.is_contiguous() for g in grads)


@each_module
@both
def test_the_training_flag_is_read_only_by_modules_whose_entry_says_so(name, library):
    """TestModule deletes ``training`` and runs forward: reading it is allowed only if the
    ModuleInfo says train and eval modes differ (they do for these modules: dropout)."""
    for sample in samples(name, torch.float32):
        module = build(module_class(library, name), sample, torch.float32)
        del module.training
        try:
            module(*forward_args(sample)[0])
        except AttributeError as error:
            assert "'training'" in str(error) and INFOS[name].train_and_eval_differ


@each_module
@both
def test_construction_on_the_meta_device_gives_the_same_metadata(name, library):
    for sample in samples(name, torch.float32):
        cls = module_class(library, name)
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        on_cpu = cls(*args, **kwargs)
        with torch.device("meta"):
            on_meta = cls(*args, **kwargs)
        for (name_meta, p_meta), (name_cpu, p_cpu) in zip(on_meta.named_parameters(), on_cpu.named_parameters()):
            assert p_meta.is_meta and name_meta == name_cpu
            assert (p_meta.shape, p_meta.stride(), p_meta.dtype, p_meta.requires_grad) == \
                   (p_cpu.shape, p_cpu.stride(), p_cpu.dtype, p_cpu.requires_grad)


@pytest.fixture(params=[False, True], ids=["assign", "swap"])
def swap(request):
    before = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(request.param)
    yield request.param
    torch.__future__.set_swap_module_params_on_conversion(before)


@each_module
@both
def test_to_empty_moves_meta_parameters_to_the_cpu(name, library, swap):
    for sample in samples(name, torch.float32):
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        with torch.device("meta"):
            module = module_class(library, name)(*args, **kwargs)
        ids, cdatas = [id(p) for p in module.parameters()], [p._cdata for p in module.parameters()]
        module.to_empty(device="cpu")
        assert all(isinstance(p, torch.nn.Parameter) and p.device.type == "cpu" for p in module.parameters())
        assert all(a != b for a, b in zip(cdatas, [p._cdata for p in module.parameters()]))
        assert ([id(p) for p in module.parameters()] == ids) == swap


@each_module
@both
@pytest.mark.parametrize("set_grad", [False, True], ids=["no-grad", "grad"])
def test_to_converts_parameters_and_gradients_in_place_or_by_swapping(name, library, swap, set_grad):
    for sample in samples(name, torch.float32):
        module = build(module_class(library, name), sample, torch.float32)
        if set_grad:
            for p in module.parameters():
                p.grad = torch.randn_like(p)
        if swap and not set_grad:                     # .to() after a forward and backward pass
            tensors(module(*forward_args(sample)[0]))[0].sum().backward()
            module.to(dtype=torch.half).to(dtype=torch.float32)
        for dtype in (torch.float32, torch.float64):
            ids, cdatas = [id(p) for p in module.parameters()], [p._cdata for p in module.parameters()]
            module.to(device="cpu", dtype=dtype)
            assert all(isinstance(p, torch.nn.Parameter) and p.dtype == dtype for p in module.parameters())
            if set_grad:
                assert all(p.grad.dtype == dtype for p in module.parameters())
            assert [id(p) for p in module.parameters()] == ids
            if not swap:
                assert [p._cdata for p in module.parameters()] == cdatas


def argument_named_by(pattern: str) -> str:
    """The argument torch's expected message is about, for checking that ours names it too."""
    for word in re.findall(r"[A-Za-z_]+", pattern):
        if word in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "proj_size",
                    "bidirectional", "nonlinearity", "input", "hx"):
            return word
    raise AssertionError(f"no argument name in torch's expected message {pattern!r}")


@each_module
@both
def test_errors_have_torchs_type_and_name_the_argument(name, library):
    info = INFOS[name]
    for error in info.module_error_inputs_func(info, device="cpu", dtype=torch.float32, requires_grad=False,
                                               training=True):
        sample = error.module_error_input
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        with pytest.raises(error.error_type) as raised:
            module = module_class(library, name)(*args, **kwargs)
            if error.error_on == ModuleErrorEnum.FORWARD_ERROR:
                module(*forward_args(sample)[0], **forward_args(sample)[1])
        if library == "torch.nn":
            assert re.search(error.error_regex, str(raised.value)), "the control raises torch's own message"
        assert argument_named_by(error.error_regex) in str(raised.value), str(raised.value)


# --- from test_nn.py ----------------------------------------------------------------------


with_projections = pytest.mark.parametrize("name, proj_size", [("GRU", 0), ("LSTM", 0), ("LSTM", 2), ("RNN", 0)])


@with_projections
@both
def test_wrong_input_or_state_sizes_raise_runtime_errors(name, library, proj_size):
    layers, batch, hidden = 2, 3, 5
    projection = {"proj_size": proj_size} if name == "LSTM" else {}
    module = module_class(library, name)(4, hidden, num_layers=layers, **projection)
    out_size = proj_size or hidden
    good_h, good_c = torch.zeros(layers, batch, out_size), torch.zeros(layers, batch, hidden)
    state = lambda h, c=good_c: (h, c) if name in WITH_CELL_STATE else h
    x = torch.randn(6, batch, 4)
    module(x, state(good_h))
    for bad_x, hx in [(torch.randn(6, batch, 5), state(good_h)),            # input size
                      (x, state(torch.zeros(layers + 1, batch, out_size))),  # layers
                      (x, state(torch.zeros(layers, batch + 1, out_size))),  # batch
                      (x, state(torch.zeros(layers, batch, out_size + 1)))]:  # hidden size
        with pytest.raises(RuntimeError):
            module(bad_x, hx)
    if name in WITH_CELL_STATE:
        with pytest.raises(RuntimeError):
            module(x, (good_h, torch.zeros(layers, batch, hidden + 1)))


@each_module
@both
def test_zero_initial_states_equal_no_initial_states(name, library):
    module = module_class(library, name)(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3)
    zeros = torch.zeros(4, 2, 4)
    assert_same(module(x), module(x, (zeros, zeros) if name in WITH_CELL_STATE else zeros), rtol=0, atol=0)


@with_projections
@both
def test_weight_norm_of_each_parameter(name, library, proj_size):
    for parameter in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"] + ["weight_hr_l0"] * bool(proj_size):
        torch.manual_seed(0)
        projection = {"proj_size": proj_size} if name == "LSTM" else {}
        module = module_class(library, name)(3, 4, **projection)
        control = module_class("torch.nn", name)(3, 4, **projection)
        control.load_state_dict(module.state_dict())
        count = len(module._flat_weights)
        module = torch.nn.utils.weight_norm(module, name=parameter)
        control = torch.nn.utils.weight_norm(control, name=parameter)
        assert sum(isinstance(p, torch.nn.Parameter) for p in module._flat_weights) == count - 1
        x = torch.randn(5, 2, 3)
        assert_same(module(x), control(x))
        module = torch.nn.utils.remove_weight_norm(module, name=parameter)
        assert sum(isinstance(p, torch.nn.Parameter) for p in module._flat_weights) == count
        assert parameter in module._parameters and f"{parameter}_g" not in module._parameters


@each_module
@both
def test_backward_twice_through_a_retained_graph_gives_the_same_gradients(name, library):
    module = module_class(library, name)(3, 4, num_layers=2)
    output = tensors(module(torch.randn(5, 2, 3)))[0]
    first = torch.autograd.grad(output.sum(), list(module.parameters()), retain_graph=True)
    second = torch.autograd.grad(output.sum(), list(module.parameters()))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_every_sample_and_error_input_of_pytorch_is_used():
    """The ModuleInfo entries are those of the installed torch: none missing, none empty."""
    assert NAMES == ["GRU", "LSTM", "RNN"]
    for name in NAMES:
        assert len(samples(name)) >= 16
        assert any(isinstance(s.forward_input.args[0], PackedSequence) for s in samples(name)) == (name != "LSTM")
        assert len(INFOS[name].module_error_inputs_func(INFOS[name], device="cpu", dtype=torch.float32,
                                                        requires_grad=False, training=True)) >= 10

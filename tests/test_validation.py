"""Bad input raises ValueError/TypeError naming the argument, the expected and the given value."""

import numpy as np
import pytest
import torch

import rnnlab
from rnnlab import DTypeError, ShapeError

rng = np.random.default_rng(0)
B, I, H = 2, 3, 4


def gru_args(**changes):
    args = dict(x=rng.normal(size=(B, I)), h=rng.normal(size=(B, H)),
                weight_ih=rng.normal(size=(3 * H, I)), weight_hh=rng.normal(size=(3 * H, H)),
                bias_ih=rng.normal(size=3 * H), bias_hh=rng.normal(size=3 * H))
    args.update(changes)
    return args


@pytest.mark.parametrize("changes,error,words", [
    (dict(x=rng.normal(size=(B, I, 1))), ShapeError, ["x", "1-D or 2-D", "(2, 3, 1)"]),
    (dict(x=rng.normal(size=I)), ShapeError, ["h", "1-D like x", "(2, 4)"]),
    (dict(h=rng.normal(size=(B + 1, H))), ShapeError, ["h", "batch size B = 2", "(3, 4)"]),
    (dict(h=rng.normal(size=(B, H + 1))), ShapeError, ["h", "hidden size H = 4", "weight_hh", "(2, 5)"]),
    (dict(x=rng.normal(size=(B, I + 1))), ShapeError, ["x", "input size I = 3", "weight_ih", "(2, 4)"]),
    (dict(weight_ih=rng.normal(size=(2 * H, I))), ShapeError, ["weight_ih", "12 rows", "r, z, n", "(8, 3)"]),
    (dict(weight_ih=rng.normal(size=(I, 3 * H))), ShapeError, ["weight_ih", "transposed", "(3, 12)"]),
    (dict(weight_hh=rng.normal(size=(3 * H, H + 1))), ShapeError, ["weight_hh", "3·H, H", "(12, 5)"]),
    (dict(weight_hh=rng.normal(size=(H, 3 * H))), ShapeError, ["weight_hh", "transposed", "(4, 12)"]),
    (dict(bias_ih=rng.normal(size=2 * H)), ShapeError, ["bias_ih", "12 rows", "(8,)"]),
    (dict(x=np.ones((B, I), dtype=np.int64)), DTypeError, ["x", "floating", "int64"]),
    (dict(x="not an array"), TypeError, ["x", "numpy array or a torch tensor", "str"]),
    (dict(weight_hh=torch.zeros(3 * H, H, dtype=torch.float64)), TypeError, ["weight_hh", "numpy array like x", "torch tensor"]),
    (dict(bias_hh=rng.normal(size=3 * H).astype(np.float32)), DTypeError, ["bias_hh", "dtype of x", "float32"]),
])
def test_gru_cell_names_the_bad_argument(changes, error, words):
    with pytest.raises(error) as info:
        rnnlab.gru_cell(**gru_args(**changes))
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_lstm_cell_wants_a_pair_of_states_of_equal_shape():
    x, h = rng.normal(size=(B, I)), rng.normal(size=(B, H))
    w_ih, w_hh = rng.normal(size=(4 * H, I)), rng.normal(size=(4 * H, H))
    with pytest.raises(TypeError, match=r"state must be a pair \(h, c\)"):
        rnnlab.lstm_cell(x, h, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"c must have the shape of h, \(2, 4\), got .*\(2, 5\)"):
        rnnlab.lstm_cell(x, (h, rng.normal(size=(B, H + 1))), w_ih, w_hh)
    with pytest.raises(ValueError, match=r"4·H = 16 rows \(the i, f, g, o blocks stacked\)"):
        rnnlab.lstm_cell(x, (h, h), rng.normal(size=(3 * H, I)), w_hh)


def test_rnn_cell_rejects_an_unknown_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        rnnlab.rnn_cell(rng.normal(size=(B, I)), rng.normal(size=(B, H)), rng.normal(size=(H, I)),
                        rng.normal(size=(H, H)), nonlinearity="sigmoid")


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(input_size=3, hidden_size=0), ValueError, ["hidden_size", "at least 1", "0"]),
    (dict(input_size=3, hidden_size=2.5), TypeError, ["hidden_size", "int", "2.5"]),
    (dict(input_size="3", hidden_size=2), TypeError, ["input_size", "int", "'3'"]),
    (dict(input_size=3, hidden_size=2, num_layers=0), ValueError, ["num_layers", "at least 1"]),
    (dict(input_size=3, hidden_size=2, dropout=1.5), ValueError, ["dropout", "[0, 1]", "1.5"]),
    (dict(input_size=3, hidden_size=2, batch_first="yes"), TypeError, ["batch_first", "True or False"]),
])
def test_module_constructor_names_the_bad_argument(kwargs, error, words):
    with pytest.raises(error) as info:
        rnnlab.GRU(**kwargs)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


@pytest.mark.parametrize("call,error,words", [
    (lambda m: m(torch.zeros(5, 2, 4)), ShapeError, ["input", "input_size = 3", "(5, 2, 4)"]),
    (lambda m: m(torch.zeros(5, 2, 3, 1)), ShapeError, ["input", "3-D", "(5, 2, 3, 1)"]),
    (lambda m: m(torch.zeros(5, 2, 3, dtype=torch.int64)), DTypeError, ["input", "dtype of the weights", "int64"]),
    (lambda m: m(torch.zeros(5, 2, 3, dtype=torch.float64)), DTypeError, ["input", "float32", "model.to"]),
    (lambda m: m(np.zeros((5, 2, 3))), TypeError, ["input", "torch tensor", "numpy array"]),
    (lambda m: m(torch.zeros(0, 2, 3)), ShapeError, ["input", "at least one time step"]),
    (lambda m: m(torch.zeros(5, 2, 3), torch.zeros(1, 3, 4)), ShapeError, ["hx", "(2, 2, 4)", "(1, 3, 4)"]),
    (lambda m: m(torch.zeros(5, 3), torch.zeros(2, 1, 4)), ShapeError, ["hx", "2-D", "unbatched"]),
    (lambda m: m(torch.zeros(5, 2, 3), torch.zeros(2, 4)), ShapeError, ["hx", "3-D", "batched"]),
    (lambda m: m(torch.zeros(5, 2, 3), torch.zeros(2, 2, 4, dtype=torch.float64)), DTypeError, ["hx", "dtype"]),
])
def test_module_forward_names_the_bad_argument(call, error, words):
    model = rnnlab.GRU(3, 4, num_layers=2)
    with pytest.raises(error) as info:
        call(model)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_lstm_forward_wants_a_pair_of_initial_states():
    model = rnnlab.LSTM(3, 4)
    with pytest.raises(TypeError, match=r"hx must be a pair \(h_0, c_0\)"):
        model(torch.zeros(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ShapeError, match=r"c_0 must have shape \(1, 2, 4\)"):
        model(torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 5)))


@pytest.mark.parametrize("call,error,words", [
    (lambda m: rnnlab.hidden_grad_norms("model", torch.zeros(5, 2, 3), torch.sum), TypeError, ["model", "str"]),
    (lambda m: rnnlab.hidden_grad_norms(m, torch.zeros(5, 3), torch.sum), ValueError, ["inputs", "3-D", "(5, 3)"]),
    (lambda m: rnnlab.hidden_grad_norms(m, torch.zeros(5, 2, 3), "sum"), TypeError, ["loss_fn", "callable"]),
    (lambda m: rnnlab.hidden_grad_norms(m, torch.zeros(5, 2, 3), lambda o: o), ValueError, ["loss_fn", "scalar"]),
    (lambda m: rnnlab.hidden_grad_norms(m, torch.zeros(5, 2, 3), torch.sum, state="c"), ValueError, ["state='c'", "LSTM"]),
    (lambda m: rnnlab.hidden_grad_norms(m, torch.zeros(5, 2, 2), torch.sum), ValueError, ["inputs", "input_size = 3"]),
])
def test_hidden_grad_norms_names_the_bad_argument(call, error, words):
    with pytest.raises(error) as info:
        call(rnnlab.GRU(3, 4))
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_error_classes_keep_rnnlab_and_torch_promises():
    """Code written for torch.nn catches RuntimeError (shapes) or ValueError (dtypes); code
    written for rnnlab catches ValueError (shapes) or TypeError (dtypes): both work."""
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, RuntimeError)
    assert all(issubclass(DTypeError, kind) for kind in (TypeError, ValueError, RuntimeError))
    model = rnnlab.LSTM(3, 4)
    with pytest.raises(RuntimeError):
        model(torch.zeros(5, 2, 2))
    with pytest.raises(ValueError):
        model(torch.zeros(5, 2, 3, dtype=torch.float64))

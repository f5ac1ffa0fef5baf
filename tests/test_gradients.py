"""hidden_grad_norms gives the total derivative dL/dh_t, checked by finite differences."""

import matplotlib
import numpy as np
import pytest
import torch

import rnnlab
from module_pairs import MODES, WITH_CELL_STATE

matplotlib.use("Agg")


def loss_of_outputs(output):
    """A loss that reads every step of the output, each with its own weight."""
    steps = output.shape[0]
    weights = torch.linspace(0.5, 1.5, steps, dtype=output.dtype).view(steps, *([1] * (output.dim() - 1)))
    return (weights * output).sin().sum()


def perturbed_loss(model, x, t, delta, state):
    """The loss when ``delta`` is added to the state at step t, using the model's own forward.

    Run the model on x[:t+1], add delta to h_t (or to c_t, which also changes
    h_t = o_t ⊙ tanh(c_t)), then run the model on from the perturbed state: an oracle
    built from the model's public forward pass, not from the recurrence under test.
    """
    head, (h_t, c_t) = _run(model, x[: t + 1])
    if state == "c":
        c_t = c_t + delta
        h_t = output_gate(model, x, t) * torch.tanh(c_t)
    else:
        h_t = h_t + delta
    head = torch.cat([head[:-1], h_t.unsqueeze(0)])          # the output at step t is h_t itself
    if t + 1 < x.shape[0]:
        hx = (h_t.unsqueeze(0), c_t.unsqueeze(0)) if c_t is not None else h_t.unsqueeze(0)
        head = torch.cat([head, model(x[t + 1:], hx)[0]])
    return loss_of_outputs(head)


def output_gate(model, x, t):
    """o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho) of a one-layer LSTM, written out here."""
    hidden = model.hidden_size
    h_prev = _run(model, x[:t])[1][0] if t > 0 else torch.zeros(x.shape[1], hidden, dtype=x.dtype)
    rows = slice(3 * hidden, 4 * hidden)
    pre = (x[t] @ model.weight_ih_l0[rows].T + model.bias_ih_l0[rows]
           + h_prev @ model.weight_hh_l0[rows].T + model.bias_hh_l0[rows])
    return torch.sigmoid(pre)


def _run(model, x):
    output, state = model(x)
    if isinstance(state, tuple):
        return output, (state[0][0], state[1][0])
    return output, (state[0], None)


@pytest.mark.parametrize("mode,state", [(mode, "h") for mode in MODES] + [(mode, "c") for mode in sorted(WITH_CELL_STATE)])
@pytest.mark.parametrize("library", [torch.nn, rnnlab])
def test_hidden_grad_norms_match_central_finite_differences(mode, state, library):
    torch.manual_seed(0)
    model = getattr(library, mode)(2, 3).double()
    x = torch.randn(6, 2, 2, dtype=torch.float64)
    norms = rnnlab.hidden_grad_norms(model, x, loss_of_outputs, state=state)
    assert norms.shape == (6,) and norms.dtype == np.float64
    eps = 1e-6
    with torch.no_grad():
        for t in range(6):
            grad = torch.zeros(2, 3, dtype=torch.float64)
            for index in np.ndindex(2, 3):
                bump = torch.zeros(2, 3, dtype=torch.float64)
                bump[index] = eps
                grad[index] = (perturbed_loss(model, x, t, bump, state) -
                               perturbed_loss(model, x, t, -bump, state)) / (2 * eps)
            assert norms[t] == pytest.approx(grad.norm().item(), rel=1e-6), f"step {t}"


def test_hidden_grad_norms_of_a_loss_on_the_last_step_only_carry_the_whole_chain():
    # With the loss on the last output only, dL/dh_t for t < T comes entirely from the
    # recurrence: a partial derivative would be zero there, the total one is not.
    torch.manual_seed(1)
    model = rnnlab.GRU(3, 4).double()
    x = torch.randn(8, 2, 3, dtype=torch.float64)
    norms = rnnlab.hidden_grad_norms(model, x, lambda out: out[-1].sum())
    assert np.all(norms > 0)
    assert norms[-1] == pytest.approx(np.sqrt(2 * 4))      # dL/dh_T is all ones: ||1|| over B*H entries


def test_hidden_grad_norms_respects_batch_first_and_stacked_layers():
    torch.manual_seed(2)
    a = rnnlab.LSTM(3, 4, num_layers=2).double()
    b = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    norms_a = rnnlab.hidden_grad_norms(a, x, loss_of_outputs)
    norms_b = rnnlab.hidden_grad_norms(b, x.transpose(0, 1), lambda out: loss_of_outputs(out.transpose(0, 1)))
    np.testing.assert_allclose(norms_a, norms_b, rtol=1e-12)


def test_plot_grad_norms_draws_log_scale_labelled_curves_with_a_band_for_seeds():
    curves = {"RNN": np.exp(-np.arange(10.0)), "GRU": np.vstack([np.ones(10), 2 * np.ones(10), 4 * np.ones(10)])}
    ax = rnnlab.plot_grad_norms(curves, title="test")
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "RNN" and labels[1].startswith("GRU")
    median = ax.get_lines()[1].get_ydata()
    np.testing.assert_allclose(median, 2 * np.ones(10))     # median over the three seeds
    assert len(ax.collections) == 1                          # the min-max band of the seeds


def test_plot_grad_norms_rejects_bad_curves():
    with pytest.raises(ValueError, match=r"curves\['x'\]"):
        rnnlab.plot_grad_norms({"x": np.zeros((2, 3, 4))})
    with pytest.raises(ValueError, match="curves"):
        rnnlab.plot_grad_norms({})


def test_hidden_grad_norms_of_an_lstm_with_projections():
    """h_t = W_hr (o_t ⊙ tanh c_t): the last state reaches the loss only through the last
    output, so its gradient norm is that of dL/doutput_T, computed here by autograd."""
    torch.manual_seed(0)
    model = rnnlab.LSTM(3, 5, proj_size=2).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    norms = rnnlab.hidden_grad_norms(model, x, loss_of_outputs)
    output = model(x)[0].detach().requires_grad_()
    (direct,) = torch.autograd.grad(loss_of_outputs(output), output)
    assert norms.shape == (6,)
    assert norms[-1] == pytest.approx(direct[-1].norm().item(), rel=1e-10)
    assert np.all(norms > 0)

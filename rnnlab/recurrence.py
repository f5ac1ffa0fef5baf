"""The recurrence of one layer in one direction, with backpropagation through time by hand.

The modules in :mod:`rnnlab.modules` compute the input projections of all time steps in
one matrix product, ``gi = x W_ih^T + b_ih`` of shape (T, B, G*H), and hand them to one
of the ``torch.autograd.Function`` classes below, which run the recurrence step by step
with the equations of :mod:`rnnlab.cells`.

Going forward, a Function keeps every hidden state and gate value. Going back, it walks
the steps in reverse and carries ``dh`` = dL/dh_t, the *total* derivative: the gradient
that reaches ``h_t`` directly from the loss (``grad_hs[t]``) plus the one that comes back
through ``h_{t+1}``. Each step costs one matrix product, ``dgh_t @ W_hh``. The weight
gradients are then one matrix product each over all steps at once:
``dL/dW_hh = sum_t dgh_t^T h_{t-1}``. This is the BPTT that the book derives, and it is
also as fast as torch.nn on a CPU (benchmarks/modules.py), where an autograd graph of
every small operation is not.
"""

from __future__ import annotations

import torch

from .cells import gru_step, lstm_step, project, rnn_step


def _previous(states, initial):
    """The states h_{t-1} for t = 0..T-1: the initial state, then all but the last."""
    return torch.cat([initial.unsqueeze(0), states[:-1]])


def _weight_grad(d_pre, h_prev):
    """dL/dW_hh = sum over t and batch of dpre_t^T h_{t-1}: one matrix product for all steps."""
    return d_pre.flatten(0, -2).T @ h_prev.flatten(0, -2)


def _stack3(d):
    """[d, d, d] along the features: one gradient broadcast to three gate blocks."""
    return torch.cat([d, d, d], dim=-1)


class RNNRecurrence(torch.autograd.Function):
    """Elman recurrence: ``hs = RNNRecurrence.apply(gi, h0, weight_hh, nonlinearity)``.

    ``gi = x W_ih^T + b_ih + b_hh`` (T, B, H) already holds both biases.
    """

    @staticmethod
    def forward(ctx, gi, h0, weight_hh, nonlinearity):
        hs = gi.new_empty((gi.shape[0], *h0.shape))
        h = h0
        for t in range(gi.shape[0]):
            h = hs[t] = rnn_step(torch.addmm(gi[t], h, weight_hh.T), nonlinearity)
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(h0, hs, weight_hh)
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        h0, hs, weight_hh = ctx.saved_tensors
        # derivative of the nonlinearity, written with its output: 1 − h² for tanh, [h > 0] for ReLU
        slope = 1 - hs * hs if ctx.nonlinearity == "tanh" else (hs > 0).to(hs.dtype)
        d_pre = torch.empty_like(hs)
        dh = torch.zeros_like(h0)
        for t in reversed(range(hs.shape[0])):
            d_pre[t] = (dh + grad_hs[t]) * slope[t]      # dL/d(pre-activation at t)
            dh = d_pre[t] @ weight_hh                     # dL/dh_{t-1} through h_t
        d_weight = _weight_grad(d_pre, _previous(hs, h0)) if ctx.needs_input_grad[2] else None
        return d_pre, dh, d_weight, None


class GRURecurrence(torch.autograd.Function):
    """GRU recurrence (torch.nn form): ``hs = GRURecurrence.apply(gi, h0, weight_hh, bias_hh)``.

    ``gi = x W_ih^T + b_ih`` (T, B, 3H); ``bias_hh`` stays apart (or None) because r_t
    multiplies ``W_hn h + b_hn``.
    """

    @staticmethod
    def forward(ctx, gi, h0, weight_hh, bias_hh):
        steps = gi.shape[0]
        hs = gi.new_empty((steps, *h0.shape))
        ns = gi.new_empty((steps, *h0.shape))
        rzs = gi.new_empty((steps, *h0.shape[:-1], 2 * h0.shape[-1]))
        ghs = gi.new_empty(gi.shape)
        h = h0
        for t in range(steps):
            gh = ghs[t] = h @ weight_hh.T if bias_hh is None else torch.addmm(bias_hh, h, weight_hh.T)
            h, rzs[t], ns[t] = gru_step(gi[t], gh, h)
            hs[t] = h
        ctx.save_for_backward(h0, hs, rzs, ns, ghs, weight_hh)
        ctx.has_bias = bias_hh is not None
        return hs

    @staticmethod
    def backward(ctx, grad_hs):
        h0, hs, rzs, n, ghs, weight_hh = ctx.saved_tensors
        hidden = h0.shape[-1]
        r, z = rzs[..., :hidden], rzs[..., hidden:]
        h_prev = _previous(hs, h0)
        # How dL/dh_t reaches each pre-activation, for all steps at once (chain rule through
        # h_t = (1 − z) n + z h_{t−1}, n = tanh(· + r ⊙ hn), and the sigmoids of r and z):
        to_n = (1 - z) * (1 - n * n)                                   # ∂h_t/∂(pre-activation of n)
        to_r = to_n * ghs[..., 2 * hidden:] * r * (1 - r)              # ... of r, through hn = W_hn h + b_hn
        to_z = (h_prev - n) * z * (1 - z)                              # ... of z
        to_gh = torch.cat([to_r, to_z, to_n * r], dim=-1)              # ∂h_t/∂gh_t, blocks r, z, n
        dh_total = torch.empty_like(hs)
        dh = torch.zeros_like(h0)
        for t in reversed(range(hs.shape[0])):
            dh = dh_total[t] = dh + grad_hs[t]                         # total dL/dh_t
            d_gh = _stack3(dh) * to_gh[t]
            dh = torch.addmm(dh * z[t], d_gh, weight_hh)              # to h_{t−1}: direct path z ⊙ dh plus through gh
        d_gh = _stack3(dh_total) * to_gh
        d_gi = _stack3(dh_total) * torch.cat([to_r, to_z, to_n], dim=-1)
        d_weight = _weight_grad(d_gh, h_prev) if ctx.needs_input_grad[2] else None
        d_bias = d_gh.flatten(0, -2).sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return d_gi, dh, d_weight, d_bias


class LSTMRecurrence(torch.autograd.Function):
    """LSTM recurrence: ``hs, c_last = LSTMRecurrence.apply(gi, h0, c0, weight_hh)``.

    ``gi = x W_ih^T + b_ih + b_hh`` (T, B, 4H) already holds both biases. Returns every
    hidden state (T, B, H) and the last cell state (B, H).
    """

    @staticmethod
    def forward(ctx, gi, h0, c0, weight_hh):
        steps = gi.shape[0]
        hs = gi.new_empty((steps, *h0.shape))
        cs = gi.new_empty((steps, *h0.shape))
        gates = gi.new_empty(gi.shape)                           # i, f, g, o at every step
        h, c = h0, c0
        for t in range(steps):
            h, c, gates[t] = lstm_step(torch.addmm(gi[t], h, weight_hh.T), c)
            hs[t], cs[t] = h, c
        ctx.save_for_backward(h0, c0, hs, cs, gates, weight_hh)
        return hs, cs[-1].clone()

    @staticmethod
    def backward(ctx, grad_hs, grad_c_last):
        h0, c0, hs, cs, gates, weight_hh = ctx.saved_tensors
        i, f, g, o = gates.chunk(4, dim=-1)
        tanh_c = torch.tanh(cs)
        # Local derivatives of all steps at once: ∂h_t/∂c_t through tanh; and how dL/dc_t
        # (for i, f, g) and dL/dh_t (for o) reach the four pre-activations.
        dh_dc = o * (1 - tanh_c * tanh_c)
        to_pre = torch.cat([g * i * (1 - i),                          # c_t = … + i ⊙ g, σ'
                            _previous(cs, c0) * f * (1 - f),           # c_t = f ⊙ c_{t−1} + …, σ'
                            i * (1 - g * g),                           # tanh'
                            tanh_c * o * (1 - o)], dim=-1)             # h_t = o ⊙ tanh(c_t), σ'
        d_pre = torch.empty_like(gates)
        dh = torch.zeros_like(h0)
        dc = grad_c_last.clone()
        for t in reversed(range(hs.shape[0])):
            dh = dh + grad_hs[t]                                       # total dL/dh_t
            dc = torch.addcmul(dc, dh, dh_dc[t])                       # total dL/dc_t
            torch.mul(torch.cat([_stack3(dc), dh], dim=-1), to_pre[t], out=d_pre[t])
            dc = dc * f[t]                                             # the additive path to c_{t−1}
            dh = d_pre[t] @ weight_hh
        d_weight = _weight_grad(d_pre, _previous(hs, h0)) if ctx.needs_input_grad[3] else None
        return d_pre, dh, dc, d_weight


def run_layer(mode, x, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0=None, nonlinearity="tanh", reverse=False):
    """Run one layer in one direction over the sequence ``x`` (T, B, I).

    The input projections of all steps come first, in one matrix product; for the RNN and
    the LSTM both biases join them there, since they only add. Returns ``(hs, h_last,
    c_last)``: all hidden states (T, B, H) in the input's time order, the last state the
    direction produced, and for the LSTM its last cell state (else None).
    """
    if mode == "GRU" or bias_ih is None:
        gi = project(x, weight_ih, bias_ih)
    else:
        gi = project(x, weight_ih, bias_ih + bias_hh)
    if reverse:
        gi = gi.flip(0)
    c_last = None
    if mode == "LSTM":
        hs, c_last = LSTMRecurrence.apply(gi, h0, c0, weight_hh)
    elif mode == "GRU":
        hs = GRURecurrence.apply(gi, h0, weight_hh, bias_hh)
    else:
        hs = RNNRecurrence.apply(gi, h0, weight_hh, nonlinearity)
    return (hs.flip(0) if reverse else hs), hs[-1], c_last

"""The recurrence of one layer in one direction, with backpropagation through time by hand.

The modules in :mod:`rnnlab.modules` compute the input projections of all time steps in
one matrix product, ``gi = x W_ih^T + b_ih`` of shape (T, B, G*H), and hand them to one
of the ``torch.autograd.Function`` classes below, which run the recurrence step by step
with the equations of :mod:`rnnlab.cells`.

Going forward, a Function keeps every hidden state and gate value. Going back, it walks
the steps in reverse and carries ``dh`` = dL/dh_t, the *total* derivative: the
gradient that reaches ``h_t`` directly from the loss (``grad_hs[t]``) plus the one that
comes back through ``h_{t+1}``. Each step costs one matrix product, ``dgh_t @ W_hh``. The
weight gradients sum over the steps: ``dL/dW_hh = sum_t dgh_t^T h_{t-1}``, one matrix
product over all steps for one model (for a stack of models, a share added at each step,
while its tensors are still in the processor's cache). This is the BPTT that the book
derives. It is plain PyTorch tensor code, one operation at a time, so it does not match
the fused kernels torch.nn can call (oneDNN's LSTM on a CPU, cuDNN on a GPU);
``benchmarks/modules.py`` prints the ratio of times on your machine, and the README gives
the figures we measured.

What else the Functions support, and how:

* **Higher derivatives.** The backward pass is written with ordinary differentiable tensor
  operations. The gate values kept from the forward pass carry no autograd graph, so when
  autograd records the backward pass (``create_graph=True``, ``torch.func.grad`` of a
  gradient, Hessians, forward-mode tangents through it) the gates are first recomputed
  from the saved inputs and hidden states, all steps in one matrix product (``h_{t-1}
  W_hh^T`` no longer depends on the step before once every ``h_{t-1}`` is known). The
  second derivatives are then exact, as with ``torch.nn``; first-order training pays
  nothing for this.
* **Forward mode.** Each Function has a ``jvp``: the same local derivatives carried
  forward in time (``torch.func.jvp``, ``torch.func.jacfwd``, ``torch.autograd.forward_ad``).
* **A stack of S models.** Every Function also accepts the weights of S models stacked
  along a new first axis: ``weight_hh`` (S, G*H, H), ``h0`` (S, B, H), ``gi``
  (T, S, B, G*H); each step is then one ``torch.baddbmm`` for all S models. Their
  ``vmap`` rule maps ``torch.func.vmap`` onto this form (or, when only the data are
  batched, onto a larger batch B), so ``vmap`` over stacked parameters runs the same
  hand-written BPTT instead of a per-operation batched loop (see :mod:`rnnlab.stacking`).

``KINDS`` is the one table of cell kinds, keyed by torch.nn's ``mode``: for each, the
gate count, the autograd Function, one step in plain autograd operations, whether it keeps
a cell state, its nonlinearity, and the two torch.nn conventions that differ between kinds.
:mod:`rnnlab.modules` and :func:`rnnlab.hidden_grad_norms` read it instead of comparing the
kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.autograd import forward_ad

from .cells import gru_step, lstm_step, rnn_step

# --- products that serve one model (2-D weights) and a stack of S models (3-D) ----------


def _times(x, matrix, add=None):
    """``add + x @ matrix`` for one step: x (B, K) with matrix (K, N), or a stack (S, B, K)
    with (S, K, N); ``add`` broadcasts to the result."""
    if add is None:
        return x @ matrix
    if matrix.dim() == 2:
        return torch.addmm(add, x, matrix)
    return torch.baddbmm(add, x, matrix)


def _bias_row(bias, weight):
    """A bias (N,) or (S, N) shaped to broadcast over the batch rows of a step."""
    return bias if bias is None or weight.dim() == 2 else bias.unsqueeze(-2)


def _all_steps(x, weight, bias=None):
    """``x W^T + b`` for all steps in one product: x (T, B, K) with W (N, K), or
    x (T, S, B, K) with a stack W (S, N, K). Returns (T, B, N) or (T, S, B, N)."""
    if weight.dim() == 2:
        out = x @ weight.T
        return out if bias is None else out + bias
    steps, stack, batch, _ = x.shape
    rows = x.transpose(0, 1).reshape(stack, steps * batch, x.shape[-1])
    out = _times(rows, weight.mT, None if bias is None else bias.unsqueeze(1))
    return out.reshape(stack, steps, batch, -1).transpose(0, 1)


def _weight_grad(d_pre, inputs):
    """dL/dW = sum over steps and batch of ``d_pre^T inputs``, for ``pre = inputs W^T``, as
    one matrix product over all steps: (T, B, G*H) and (T, B, K) give (G*H, K)."""
    return d_pre.flatten(0, -2).T @ inputs.flatten(0, -2)


def _previous(states, initial):
    """The states h_{t-1} for t = 0..T-1: the initial state, then all but the last."""
    return torch.cat([initial.unsqueeze(0), states[:-1]])


def _previous_steps(states, initial):
    """h_{t-1} for t = T-1 down to 0, one tensor per step: the order of a backward pass."""
    return [*states.unbind(0)[-2::-1], initial]


def _repeat(d, blocks):
    """``[d, d, ...]`` along the features: one gradient broadcast to ``blocks`` gate blocks."""
    return torch.cat([d] * blocks, dim=-1)


def _sum_blocks(x, blocks):
    """Sum of the ``blocks`` gate blocks of the last axis (the transpose of :func:`_repeat`)."""
    return x.unflatten(-1, (blocks, -1)).sum(-2)


def _per_step(gi, features):
    """An empty (T, ..., features) tensor shaped like ``gi`` but for its last axis, which a
    forward pass fills step by step (it always runs on plain tensors: a vmap over it
    goes through the ``vmap`` rule)."""
    return gi.new_empty((*gi.shape[:-1], features))


def _local_steps(local_derivatives, *sequences, budget=2 ** 22):
    """``local_derivatives(*sequences)`` for each step, the last step first, as tuples.

    The local derivatives are element-wise, so they can be computed on all steps at once
    or on one step's slices. All at once (fewer, larger operations) while the sequences
    hold at most ``budget`` numbers (16 MB in float32); step by step, as the backward pass
    reaches each step, beyond that (a stack of models: each step's tensors stay in the
    processor's cache instead of going through memory several times).
    """
    if sum(s.numel() for s in sequences) <= budget:
        return zip(*(d.unbind(0)[::-1] for d in local_derivatives(*sequences)))
    return (local_derivatives(*step) for step in zip(*(s.unbind(0)[::-1] for s in sequences)))


def _zeros_or(tensor, like):
    return torch.zeros_like(like) if tensor is None else tensor


def _first_order_only(saved):
    """True when nothing differentiates the backward pass itself: autograd is not recording
    it (no ``create_graph``) and no saved tensor carries a forward-mode tangent. Only then
    may the gates kept from the forward pass, which have no graph, stand in for the gates."""
    if torch.is_grad_enabled():
        return False
    return all(t is None or forward_ad.unpack_dual(t).tangent is None for t in saved)


# --- the vanilla RNN ------------------------------------------------------------------


def _slope(hs, nonlinearity):
    """The nonlinearity's derivative written with its output: 1 − h² for tanh, [h > 0] for ReLU."""
    return 1 - hs * hs if nonlinearity == "tanh" else (hs > 0).to(hs.dtype)


class RNNRecurrence(torch.autograd.Function):
    """Elman recurrence: ``hs = RNNRecurrence.apply(gi, h0, weight_hh, nonlinearity)``.

    ``gi = x W_ih^T + b_ih + b_hh`` (T, B, H) already holds both biases; ``h0`` (B, H);
    ``weight_hh`` (H, H). Returns every hidden state, (T, B, H). Stacked: (T, S, B, H),
    (S, B, H), (S, H, H).
    """

    @staticmethod
    def forward(gi, h0, weight_hh, nonlinearity):
        hs, h = _per_step(gi, h0.shape[-1]), h0
        for t, gi_t in enumerate(gi.unbind(0)):
            h = hs[t] = rnn_step(_times(h, weight_hh.mT, gi_t), nonlinearity)
        return hs

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, h0, weight_hh, ctx.nonlinearity = inputs
        ctx.save_for_backward(h0, weight_hh, output)
        ctx.save_for_forward(h0, weight_hh, output)

    @staticmethod
    def backward(ctx, grad_hs):
        h0, weight_hh, hs = ctx.saved_tensors
        stacked = weight_hh.dim() == 3          # see LSTMRecurrence.backward on the weight gradient
        d_pres, dh = [], torch.zeros_like(h0)
        d_weight = torch.zeros_like(weight_hh) if stacked else None
        slopes = _local_steps(lambda h: (_slope(h, ctx.nonlinearity),), hs)
        for grad_t, (slope_t,), h_prev in zip(grad_hs.unbind(0)[::-1], slopes, _previous_steps(hs, h0)):
            d_pre = (dh + grad_t) * slope_t                          # dL/d(pre-activation at t)
            if stacked:
                d_weight = _times(d_pre.mT, h_prev, d_weight)        # dL/dW_hh += dpre_t^T h_{t-1}
            dh = d_pre @ weight_hh                                   # dL/dh_{t-1} through h_t
            d_pres.append(d_pre)
        d_pre = torch.stack(d_pres[::-1])
        if not stacked and ctx.needs_input_grad[2]:
            d_weight = _weight_grad(d_pre, _previous(hs, h0))
        return d_pre, dh, d_weight if ctx.needs_input_grad[2] else None, None

    @staticmethod
    def jvp(ctx, gi_dot, h0_dot, weight_dot, _):
        h0, weight_hh, hs = ctx.saved_tensors
        slope = _slope(hs, ctx.nonlinearity)
        drive = _zeros_or(gi_dot, hs)                   # what moves pre_t apart from h_{t-1}
        if weight_dot is not None:
            drive = drive + _all_steps(_previous(hs, h0), weight_dot)
        dhs, dh = [], _zeros_or(h0_dot, h0)
        for drive_t, slope_t in zip(drive.unbind(0), slope.unbind(0)):
            dh = slope_t * _times(dh, weight_hh.mT, drive_t)
            dhs.append(dh)
        return torch.stack(dhs)

    @staticmethod
    def vmap(info, in_dims, gi, h0, weight_hh, nonlinearity):
        return _vmap_rule(RNNRecurrence, info, in_dims, (gi, h0, weight_hh, nonlinearity),
                          ("sequence", "state", "weight", None))


# --- the GRU ----------------------------------------------------------------------------


def _gru_gates(gi, h_prev, weight_hh, bias_hh):
    """Recompute the gates of all steps in one product: ``(rz, n, hn)``, with hn = W_hn h + b_hn."""
    gh = _all_steps(h_prev, weight_hh, bias_hh)
    _, rz, n = gru_step(gi, gh, h_prev)
    return rz, n, gh[..., 2 * h_prev.shape[-1]:]


def _gru_local_derivatives(rz, n, hn, h_prev):
    """How h_t depends on gi_t, on gh_t = W_h h_{t-1} + b_h, and directly on h_{t-1}.

    The chain rule through h_t = (1 − z) n + z h_{t−1}, n = tanh(· + r ⊙ hn) and the
    sigmoids of r and z, element-wise (for one step or all at once). Returns ``(to_gi,
    to_gh, z)``: ∂h_t/∂gi_t and ∂h_t/∂gh_t as three (r, z, n) blocks of element-wise
    factors, and z_t, the factor of the direct path to h_{t−1}.
    """
    hidden = h_prev.shape[-1]
    r, z = rz[..., :hidden], rz[..., hidden:]
    to_n = (1 - z) * (1 - n * n)                                   # ... of the pre-activation of n
    to_r = to_n * hn * r * (1 - r)                                 # ... of r, through hn = W_hn h + b_hn
    to_z = (h_prev - n) * z * (1 - z)                              # ... of z
    return torch.cat([to_r, to_z, to_n], -1), torch.cat([to_r, to_z, to_n * r], -1), z


class GRURecurrence(torch.autograd.Function):
    """GRU recurrence (torch.nn form): ``hs, *gates = GRURecurrence.apply(gi, h0, weight_hh, bias_hh)``.

    ``gi = x W_ih^T + b_ih`` (T, B, 3H); ``bias_hh`` (3H,) stays apart (or None) because
    r_t multiplies ``W_hn h + b_hn``. Returns every hidden state, (T, B, H), then the gate
    values the backward pass keeps (r and z (T, B, 2H), n and hn (T, B, H); not
    differentiable). Stacked: gi (T, S, B, 3H), h0 (S, B, H), weight_hh (S, 3H, H),
    bias_hh (S, 3H).
    """

    @staticmethod
    def forward(gi, h0, weight_hh, bias_hh):
        hidden = h0.shape[-1]
        hs, rzs, ns, hns = (_per_step(gi, size) for size in (hidden, 2 * hidden, hidden, hidden))
        bias, h = _bias_row(bias_hh, weight_hh), h0
        for t, gi_t in enumerate(gi.unbind(0)):
            gh = _times(h, weight_hh.mT, bias)
            h, rzs[t], ns[t] = gru_step(gi_t, gh, h)
            hs[t], hns[t] = h, gh[..., 2 * hidden:]
        return hs, rzs, ns, hns

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(*output[1:])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs, *output)
        ctx.save_for_forward(*inputs, output[0])

    @staticmethod
    def backward(ctx, grad_hs, *_):
        gi, h0, weight_hh, bias_hh, hs, *gates = ctx.saved_tensors
        if not _first_order_only((gi, h0, weight_hh, bias_hh, hs)):
            gates = _gru_gates(gi, _previous(hs, h0), weight_hh, bias_hh)
        grad_hs = _zeros_or(grad_hs, hs)
        stacked = weight_hh.dim() == 3          # see LSTMRecurrence.backward on the weight gradient
        d_gis, d_ghs, dh = [], [], torch.zeros_like(h0)
        d_weight = torch.zeros_like(weight_hh) if stacked else None
        d_bias = torch.zeros(weight_hh.shape[:-1], dtype=h0.dtype, device=h0.device) if stacked else None
        h_prev = _previous(hs, h0)
        local = _local_steps(_gru_local_derivatives, *gates, h_prev)
        for grad_t, (to_gi, to_gh, z), h_prev_t in zip(grad_hs.unbind(0)[::-1], local, h_prev.unbind(0)[::-1]):
            dh = dh + grad_t                                   # total dL/dh_t
            dh_3 = _repeat(dh, 3)
            d_gh = dh_3 * to_gh                                # dL/dgh_t, gh_t = W_h h_{t−1} + b_h
            d_gis.append(dh_3 * to_gi)                         # dL/dgi_t, gi_t = W_i x_t + b_i
            if stacked:
                d_weight = _times(d_gh.mT, h_prev_t, d_weight)  # dL/dW_hh += dgh_t^T h_{t−1}
                d_bias = d_bias + d_gh.sum(-2)
            else:
                d_ghs.append(d_gh)
            dh = _times(d_gh, weight_hh, dh * z)              # to h_{t−1}: through gh_t, and directly z ⊙ dh
        if not stacked:
            d_gh = torch.stack(d_ghs[::-1])
            d_weight = _weight_grad(d_gh, h_prev) if ctx.needs_input_grad[2] else None
            d_bias = d_gh.sum(dim=(0, 1)) if bias_hh is not None else None
        return (torch.stack(d_gis[::-1]), dh, d_weight if ctx.needs_input_grad[2] else None,
                d_bias if bias_hh is not None and ctx.needs_input_grad[3] else None)

    @staticmethod
    def jvp(ctx, gi_dot, h0_dot, weight_dot, bias_dot):
        gi, h0, weight_hh, bias_hh, hs = ctx.saved_tensors
        h_prev = _previous(hs, h0)
        to_gi, to_gh, z = _gru_local_derivatives(*_gru_gates(gi, h_prev, weight_hh, bias_hh), h_prev)
        drive = torch.zeros_like(hs)                    # what moves h_t apart from h_{t-1}
        if gi_dot is not None:
            drive = drive + _sum_blocks(to_gi * gi_dot, 3)
        if weight_dot is not None or bias_dot is not None:
            gh_dot = (_all_steps(h_prev, weight_dot) if weight_dot is not None else 0) + (
                _bias_row(bias_dot, weight_hh) if bias_dot is not None else 0)
            drive = drive + _sum_blocks(to_gh * gh_dot, 3)
        dhs, dh = [], _zeros_or(h0_dot, h0)
        for drive_t, to_gh_t, z_t in zip(drive.unbind(0), to_gh.unbind(0), z.unbind(0)):
            dh = drive_t + z_t * dh + _sum_blocks(to_gh_t * _times(dh, weight_hh.mT), 3)
            dhs.append(dh)
        return torch.stack(dhs), None, None, None

    @staticmethod
    def vmap(info, in_dims, gi, h0, weight_hh, bias_hh):
        return _vmap_rule(GRURecurrence, info, in_dims, (gi, h0, weight_hh, bias_hh),
                          ("sequence", "state", "weight", "bias"))


# --- the LSTM ---------------------------------------------------------------------------


def _lstm_gates(gi, h_prev, c_prev, weight_hh):
    """Recompute the gates i, f, g, o of all steps in one product, (.., 4H)."""
    return lstm_step(_all_steps(h_prev, weight_hh) + gi, c_prev)[2]


def _lstm_local_derivatives(gates, c_prev, cs):
    """The local derivatives, element-wise (for one step or all at once).

    Returns ``(to_pre, f, dm_dc, m)``: ``to_pre`` (.., 4H) holds how dL/dc_t reaches the
    pre-activations of i, f, g and how dL/dm_t reaches that of o, where m_t = o_t ⊙ tanh c_t
    is the unprojected output; ``f`` the forget gate (the additive path to c_{t−1});
    ``dm_dc`` = ∂m_t/∂c_t; ``m`` = m_t.
    """
    i, f, g, o = gates.chunk(4, dim=-1)
    tanh_c = torch.tanh(cs)
    to_pre = torch.cat([g * i * (1 - i),                           # c_t = … + i ⊙ g, σ'
                        c_prev * f * (1 - f),                      # c_t = f ⊙ c_{t−1} + …, σ'
                        i * (1 - g * g),                           # tanh'
                        tanh_c * o * (1 - o)], dim=-1)             # m_t = o ⊙ tanh(c_t), σ'
    return to_pre, f, o * (1 - tanh_c * tanh_c), o * tanh_c


class LSTMRecurrence(torch.autograd.Function):
    """LSTM recurrence: ``hs, cs, gates = LSTMRecurrence.apply(gi, h0, c0, weight_hh, weight_hr)``.

    ``gi = x W_ih^T + b_ih + b_hh`` (T, B, 4H) already holds both biases; ``c0`` (B, H).
    Without projection (``weight_hr`` None) ``h0`` is (B, H) and ``weight_hh`` (4H, H);
    with one, ``h_t = W_hr (o_t ⊙ tanh c_t)`` has P features: ``weight_hr`` (P, H), ``h0``
    (B, P), ``weight_hh`` (4H, P). Returns every hidden state (T, B, H or P), every cell
    state (T, B, H) and the gate values i, f, g, o that the backward pass keeps (T, B, 4H;
    not differentiable). Stacked: a leading S on every argument after T.
    """

    @staticmethod
    def forward(gi, h0, c0, weight_hh, weight_hr):
        hs, cs, gates = _per_step(gi, h0.shape[-1]), _per_step(gi, c0.shape[-1]), _per_step(gi, gi.shape[-1])
        h, c = h0, c0
        for t, gi_t in enumerate(gi.unbind(0)):
            m, c, gates[t] = lstm_step(_times(h, weight_hh.mT, gi_t), c)
            h = m if weight_hr is None else _times(m, weight_hr.mT)
            hs[t], cs[t] = h, c
        return hs, cs, gates

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(output[2])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs, *output)
        ctx.save_for_forward(*inputs, *output[:2])

    @staticmethod
    def backward(ctx, grad_hs, grad_cs, _):
        gi, h0, c0, weight_hh, weight_hr, hs, cs, gates = ctx.saved_tensors
        if not _first_order_only((gi, h0, c0, weight_hh, weight_hr, hs, cs)):
            gates = _lstm_gates(gi, _previous(hs, h0), _previous(cs, c0), weight_hh)
        grad_hs = _zeros_or(grad_hs, hs)
        grad_cs = [None] * hs.shape[0] if grad_cs is None else grad_cs.unbind(0)[::-1]   # None: c_n unused
        # A stack of models adds each step's share to the weight gradients as it goes (its
        # tensors are still in cache); one model gets them in one product over all steps.
        stacked = weight_hh.dim() == 3
        d_weight_hh = torch.zeros_like(weight_hh) if stacked else None
        d_weight_hr = torch.zeros_like(weight_hr) if stacked and weight_hr is not None else None
        d_pres, totals, ms = [], [], []
        dh, dc = torch.zeros_like(h0), torch.zeros_like(c0)
        h_prev = _previous(hs, h0)
        local = _local_steps(_lstm_local_derivatives, gates, _previous(cs, c0), cs)
        for grad_h, grad_c, (to_pre, f, dm_dc, m), h_prev_t in zip(grad_hs.unbind(0)[::-1], grad_cs, local,
                                                                   h_prev.unbind(0)[::-1]):
            dh = dh + grad_h                                           # total dL/dh_t
            if weight_hr is None:
                dm = dh                                                # h_t = m_t = o ⊙ tanh(c_t)
            else:                                                      # h_t = W_hr m_t
                if stacked:
                    d_weight_hr = _times(dh.mT, m, d_weight_hr)
                else:
                    totals.append(dh)
                    ms.append(m)
                dm = dh @ weight_hr
            if grad_c is not None:
                dc = dc + grad_c
            dc = torch.addcmul(dc, dm, dm_dc)                          # total dL/dc_t
            d_pre = torch.cat([_repeat(dc, 3), dm], dim=-1) * to_pre  # dL/dpre_t, blocks i, f, g, o
            d_pres.append(d_pre)
            if stacked:
                d_weight_hh = _times(d_pre.mT, h_prev_t, d_weight_hh)  # dL/dW_hh += dpre_t^T h_{t−1}
            dc = dc * f                                                # the additive path to c_{t−1}
            dh = d_pre @ weight_hh
        d_pre = torch.stack(d_pres[::-1])
        if not stacked:
            d_weight_hh = _weight_grad(d_pre, h_prev)
            if weight_hr is not None:
                d_weight_hr = _weight_grad(torch.stack(totals[::-1]), torch.stack(ms[::-1]))
        return (d_pre, dh, dc, d_weight_hh if ctx.needs_input_grad[3] else None,
                d_weight_hr if weight_hr is not None and ctx.needs_input_grad[4] else None)

    @staticmethod
    def jvp(ctx, gi_dot, h0_dot, c0_dot, weight_hh_dot, weight_hr_dot):
        gi, h0, c0, weight_hh, weight_hr, hs, cs = ctx.saved_tensors
        h_prev, c_prev = _previous(hs, h0), _previous(cs, c0)
        gates = _lstm_gates(gi, h_prev, c_prev, weight_hh)
        to_pre, f, dm_dc, m = _lstm_local_derivatives(gates, c_prev, cs)
        drive = _zeros_or(gi_dot, gi)                   # what moves pre_t apart from h_{t-1}
        if weight_hh_dot is not None:
            drive = drive + _all_steps(h_prev, weight_hh_dot)
        projected = None
        if weight_hr is not None and weight_hr_dot is not None:
            projected = _all_steps(m, weight_hr_dot)   # what moves h_t apart from m_t
        hidden = c0.shape[-1]
        dhs, dcs = [], []
        dh, dc = _zeros_or(h0_dot, h0), _zeros_or(c0_dot, c0)
        for t, (drive_t, to_pre_t, f_t, dm_dc_t) in enumerate(
                zip(drive.unbind(0), to_pre.unbind(0), f.unbind(0), dm_dc.unbind(0))):
            d_pre = _times(dh, weight_hh.mT, drive_t) * to_pre_t
            dc = _sum_blocks(d_pre[..., :3 * hidden], 3) + f_t * dc
            dm = d_pre[..., 3 * hidden:] + dm_dc_t * dc
            dh = dm if weight_hr is None else _times(dm, weight_hr.mT, None if projected is None else projected[t])
            dhs.append(dh)
            dcs.append(dc)
        return torch.stack(dhs), torch.stack(dcs), None

    @staticmethod
    def vmap(info, in_dims, gi, h0, c0, weight_hh, weight_hr):
        return _vmap_rule(LSTMRecurrence, info, in_dims, (gi, h0, c0, weight_hh, weight_hr),
                          ("sequence", "state", "state", "weight", "weight"))


# --- torch.func.vmap ----------------------------------------------------------------------


def _vmap_rule(function, info, in_dims, args, roles):
    """Run ``function`` once for a whole ``torch.func.vmap`` batch of V calls.

    ``roles`` says what each argument is: ``"sequence"`` (T, *S, B, ·), ``"state"``
    (*S, B, ·), ``"weight"`` (*S, ·, ·), ``"bias"`` (*S, ·), or None (not a tensor). When
    vmap maps over any weight, the V calls are V models: they join the stack axis S
    (created if the call had none), so one ``baddbmm`` per step serves them all. When only
    sequences and states are mapped (per-example gradients, shared weights), the V calls
    join the batch axis B instead. Each output is a sequence (T, ·, B, ·).
    """
    size = info.batch_size
    weights = [(arg, dim) for arg, dim, role in zip(args, in_dims, roles)
               if role in ("weight", "bias") and arg is not None]
    first, first_dim = weights[0]
    depth = first.dim() - (first_dim is not None) - 2      # 1 if the call already has a stack axis S
    over_models = any(dim is not None for _, dim in weights)

    def place(arg, dim, role):
        if arg is None or role is None or (not over_models and role in ("weight", "bias")):
            return arg
        if over_models:
            axis = 1 if role == "sequence" else 0           # the stack axis S of this argument
        else:
            axis = depth + (role == "sequence")             # the batch axis B of this argument
        if dim is None:
            arg = arg.unsqueeze(axis).expand(*arg.shape[:axis], size, *arg.shape[axis:])
        else:
            arg = arg.movedim(dim, axis)
        joins = over_models and depth == 1 or not over_models
        return arg.flatten(axis, axis + 1) if joins else arg

    placed = [place(arg, dim, role) for arg, dim, role in zip(args, in_dims, roles)]
    outputs = function.apply(*placed)
    axis = 1 if over_models else 1 + depth
    splits = over_models and depth == 1 or not over_models

    def unplace(output):
        return output.unflatten(axis, (size, -1)) if splits else output

    if isinstance(outputs, tuple):
        return tuple(unplace(o) for o in outputs), (axis,) * len(outputs)
    return unplace(outputs), axis


# --- the table of cell kinds ----------------------------------------------------------------
# Each kind passes its own arguments to its Function, and steps once in plain autograd
# operations (the equations of rnnlab.cells, as the Function's forward runs them).


def _rnn_arguments(gi, h0, c0, weight_hh, bias_hh, weight_hr, nonlinearity):
    return gi, h0, weight_hh, nonlinearity


def _rnn_step(gi_t, h, c, weight_hh, bias_hh, weight_hr, nonlinearity):
    return rnn_step(_times(h, weight_hh.mT, gi_t), nonlinearity), None


def _gru_arguments(gi, h0, c0, weight_hh, bias_hh, weight_hr, nonlinearity):
    return gi, h0, weight_hh, bias_hh


def _gru_step(gi_t, h, c, weight_hh, bias_hh, weight_hr, nonlinearity):
    return gru_step(gi_t, _times(h, weight_hh.mT, _bias_row(bias_hh, weight_hh)), h)[0], None


def _lstm_arguments(gi, h0, c0, weight_hh, bias_hh, weight_hr, nonlinearity):
    return gi, h0, c0, weight_hh, weight_hr


def _lstm_step(gi_t, h, c, weight_hh, bias_hh, weight_hr, nonlinearity):
    m, c, _ = lstm_step(_times(h, weight_hh.mT, gi_t), c)
    return (m if weight_hr is None else _times(m, weight_hr.mT)), c          # h_t = W_hr (o_t ⊙ tanh c_t)


@dataclass(frozen=True)
class CellKind:
    """One kind of recurrent cell, as torch.nn's ``mode`` names it.

    ``name`` is the module's class name (``"RNN"``, ``"GRU"``, ``"LSTM"``); ``gates`` the
    number G of gate blocks stacked in every weight (G·H rows); ``function`` the
    ``torch.autograd.Function`` that runs a layer with its hand-written BPTT; ``cell_state``
    whether the kind carries a cell state c_t beside h_t (the module then takes and returns
    ``(h, c)``); ``nonlinearity`` the Elman RNN's ``'tanh'`` or ``'relu'`` (None for the
    gated cells); ``sums_biases`` whether ``b_hh`` only adds, so ``gi`` holds both biases
    (the GRU keeps ``b_hh`` apart: r_t multiplies ``W_hn h + b_hn``);
    ``autocast_lower_precision`` whether torch.nn computes the kind in autocast's lower
    precision on a CPU (the RNN, and the LSTM through oneDNN) rather than in its input's
    dtype (the GRU). ``arguments`` and ``step`` adapt the kind's own calling conventions
    to the one ``run`` and ``unroll`` share.
    """

    mode: str
    name: str
    gates: int
    function: type[torch.autograd.Function]
    cell_state: bool
    nonlinearity: str | None
    sums_biases: bool
    autocast_lower_precision: bool
    arguments: Callable
    step: Callable

    def run(self, gi, h0, weight_hh, bias_hh=None, c0=None, weight_hr=None):
        """Run one layer in one direction over the input projections ``gi`` (T, B, G*H).

        ``gi`` holds both biases when ``sums_biases`` (else ``bias_hh`` comes apart);
        ``c0`` (B, H) for a kind with a cell state; ``weight_hr`` (P, H) for an LSTM that
        projects. Returns ``(hs, cs)``: every hidden state (T, B, H or P), and every cell
        state (T, B, H) or None. Stacked weights (a leading S) work the same way.
        """
        outputs = self.function.apply(*self.arguments(gi, h0, c0, weight_hh, bias_hh, weight_hr,
                                                      self.nonlinearity))
        if isinstance(outputs, torch.Tensor):
            return outputs, None
        return outputs[0], outputs[1] if self.cell_state else None

    def unroll(self, gi, h0, weight_hh, bias_hh=None, c0=None, weight_hr=None):
        """What :meth:`run` computes, one step at a time in plain autograd operations, so that
        every state is a node of the graph (slower; no hand-written backward). Returns the
        lists ``[h_0', ..., h_{T-1}']`` and ``[c_0', ...]`` (Nones without a cell state)."""
        hs, cs, h, c = [], [], h0, c0
        for gi_t in gi.unbind(0):
            h, c = self.step(gi_t, h, c, weight_hh, bias_hh, weight_hr, self.nonlinearity)
            hs.append(h)
            cs.append(c)
        return hs, cs


def _elman(nonlinearity):
    return CellKind(f"RNN_{nonlinearity.upper()}", "RNN", 1, RNNRecurrence, cell_state=False,
                    nonlinearity=nonlinearity, sums_biases=True, autocast_lower_precision=True,
                    arguments=_rnn_arguments, step=_rnn_step)


KINDS: dict[str, CellKind] = {kind.mode: kind for kind in (
    _elman("tanh"),
    _elman("relu"),
    CellKind("GRU", "GRU", 3, GRURecurrence, cell_state=False, nonlinearity=None, sums_biases=False,
             autocast_lower_precision=False, arguments=_gru_arguments, step=_gru_step),
    CellKind("LSTM", "LSTM", 4, LSTMRecurrence, cell_state=True, nonlinearity=None, sums_biases=True,
             autocast_lower_precision=True, arguments=_lstm_arguments, step=_lstm_step),
)}
"""The cell kinds by torch.nn's ``mode``: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"GRU"``, ``"LSTM"``."""

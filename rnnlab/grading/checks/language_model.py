"""The checks of assignment char_lm: bits per character, and sampling with a temperature.

``check_bits_per_char`` compares a student's ``bits_per_char(logits, targets)`` with
``torch.nn.functional.cross_entropy`` divided by ln 2 on seeded cases, and names the usual
mistakes (natural log, targets not shifted, a sum for a mean, ...) by recomputing them on
the same inputs, as the other checks do (:mod:`rnnlab.grading.checks.mistakes`).

``check_sample`` cannot compare samples with fixed expected values: any correct sampler
that draws with the generator it is given must pass, whichever way it draws. It runs the
student's ``sample(model, prefix, temperature, generator, steps)`` on a small model whose
next-character probabilities are known exactly (:class:`~rnnlab.grading.checks.cases.KeyedTableLM`) and checks three
things: the same generator state gives the same samples and another gives others (the
seed is used); the samples follow ``softmax(logits / temperature)`` along the sequence
they form (their mean surprisal is within 5 standard errors of its expected value); and
no usual mistake explains them better. When the samples fit a mistake (temperature
applied after the softmax, prefix not fed, state not carried, samples not fed back) and
not the right distribution, that mistake is named. Each case draws thousands of
characters, so a correct sampler fails by chance with a probability far below 1e-6, and
its inputs are seeded, so a given answer always gets the same verdict.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from . import mistakes as M
from .calling import CheckFailed, hidden_inputs, run_answer
from .cases import SampleCase, TextCase
from .mistakes import LN2
from .recurrent import Wrong, as_array, close
Z_LIMIT = 5.0   # standard errors of the mean surprisal that a correct sampler stays within


# --- bits per character ---------------------------------------------------------------------


BITS_VISIBLE = (
    TextCase(seed=31, steps=6, batch=3, vocabulary=5),
    TextCase(seed=32, steps=9, batch=2, vocabulary=7, dtype="float64"),
)


def reference_bits_per_char(logits, targets) -> float:
    """Bits per character by ``torch.nn.functional.cross_entropy`` (nats) / ln 2, in float64.

    ``logits[t]`` predicts ``targets[t + 1]``: the last step predicts past the end of the
    text and is not scored. The oracle of :func:`check_bits_per_char`.
    """
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    nats = torch.nn.functional.cross_entropy(logits[:-1].reshape(-1, logits.shape[-1]), targets[1:].reshape(-1))
    return float(nats) / LN2


def _as_number(value, name):
    """A returned value as one float; ``Wrong`` for anything that is not one number."""
    array = as_array(value, f"the value {name} returned")
    if array.size != 1:
        raise Wrong(f"{name} returned an array of shape {array.shape}; expected one number, the mean over every "
                    "predicted character (reduce with .mean(), not per step or per sequence)")
    return float(array.reshape(()))


def _chosen_cases(answer, name, visible, hidden_name, hidden):
    """The cases a check runs: the visible ones, and the hidden ones when ``hidden``."""
    if not callable(answer):
        raise CheckFailed(f"{name} must be a function; it is {type(answer).__name__}")
    return visible + (hidden_inputs(hidden_name) if hidden else ())


def check_bits_per_char(bits_per_char, hidden=False):
    """``bits_per_char(logits, targets)`` against ``cross_entropy(logits[:-1], targets[1:]) / ln 2``."""
    __tracebackhide__ = True  # IPython leaves this frame out of the student's traceback
    chosen = _chosen_cases(bits_per_char, "bits_per_char", BITS_VISIBLE, "BITS_HIDDEN", hidden)
    for case in chosen:
        logits, targets = case.draw()
        args = (torch.from_numpy(logits.astype(case.dtype)), torch.from_numpy(targets))
        result = run_answer(bits_per_char, "bits_per_char", ("logits", "targets"), args, case.describe())
        try:
            got = _as_number(result, "bits_per_char")
        except Wrong as exc:
            raise CheckFailed(f"{exc} (inputs {case.describe()})") from None
        expected = reference_bits_per_char(logits, targets)
        if not math.isfinite(got):
            raise CheckFailed(
                f"bits_per_char returned {got} on the inputs {case.describe()}: the probabilities overflowed. "
                "exp of a large logit is inf in float32; torch.log_softmax (or cross_entropy) subtracts the "
                "largest logit first and stays finite.")
        if close(np.array(got), np.array(expected)):
            continue
        message = (f"bits_per_char returned {got:.6g} on the inputs {case.describe()}; expected {expected:.6g} "
                   "(torch.nn.functional.cross_entropy(logits[:-1], targets[1:]) / ln 2, flattened over time "
                   "and batch).")
        for mistake in M.singles_then_pairs(M.BITS_MISTAKES):
            value = M.bits_per_char(logits, targets, **mistake.flags)
            if close(np.array(got), np.array(value)) and not close(np.array(value), np.array(expected)):
                raise CheckFailed(f"{message}\n{mistake.line()}")
        ratio = got / expected if expected else float("nan")
        raise CheckFailed(f"{message}\nYour value is {ratio:.4g} × the expected one; it matches none of the usual "
                          "mistakes the tests know: compare your code with the formula above, one step at a time.")
    print(f"OK: bits_per_char agrees with torch.nn.functional.cross_entropy / ln 2 on {len(chosen)} cases"
          f"{', the hidden ones included' if hidden else ''}.")


# --- sampling --------------------------------------------------------------------------------


SAMPLE_VISIBLE = (
    SampleCase(seed=51, prefix_length=4, batch=50, vocabulary=6, temperature=0.5, steps=40),
    SampleCase(seed=52, prefix_length=3, batch=40, vocabulary=5, temperature=2.0, steps=50),
)


def reference_sample(model, prefix, temperature, generator, steps):
    """Feed ``prefix`` (P, B), then draw ``steps`` characters from softmax(logits / temperature).

    Returns the drawn characters, (steps, B) int64; ``torch.multinomial`` draws with
    ``generator``. The check compares a student's samples with this one's distribution,
    not with its exact values.
    """
    with torch.no_grad():
        logits, state = model(prefix, None)
        drawn = []
        for _ in range(steps):
            probabilities = torch.softmax(logits[-1] / temperature, dim=-1)
            nxt = torch.multinomial(probabilities, 1, generator=generator).view(1, -1)
            drawn.append(nxt)
            logits, state = model(nxt, state)
    return torch.cat(drawn)


def _surprisal_z(log_p, drawn):
    """How many standard errors the mean surprisal of ``drawn`` lies from its expected value under ``log_p``."""
    picked = -np.take_along_axis(log_p, drawn[..., None], axis=-1)[..., 0]
    p = np.exp(log_p)
    entropy = -(p * np.where(p > 0, log_p, 0.0)).sum(-1)
    second = (p * np.where(p > 0, log_p, 0.0) ** 2).sum(-1)
    variance = np.maximum(second - entropy ** 2, 0.0).sum()
    excess = float((picked - entropy).sum())
    if variance < 1e-12:  # (almost) deterministic: any draw off the sure path is impossible
        return 0.0 if excess < 1e-6 else math.inf
    return excess / math.sqrt(variance)


def _greedy(model, prefix, steps):
    with torch.no_grad():
        logits, state = model(prefix, None)
        drawn = []
        for _ in range(steps):
            nxt = logits[-1].argmax(-1).view(1, -1)
            drawn.append(nxt)
            logits, state = model(nxt, state)
    return torch.cat(drawn).numpy()


def _read_samples(value, case):
    array = as_array(value, "the value sample returned")
    expected = (case.steps, case.batch)
    if array.shape != expected:
        hint = ""
        if array.shape == (case.prefix_length + case.steps, case.batch):
            hint = " It holds the prefix too: return only the characters drawn after it."
        elif array.shape == expected[::-1]:
            hint = " It looks transposed: time first, (steps, B)."
        elif array.shape == (case.steps, 1, case.batch) or array.shape == (case.steps, case.batch, 1):
            hint = " Remove the extra axis of size 1 (torch.cat of (1, B) pieces, or .view(steps, B))."
        raise Wrong(f"sample returned an array of shape {array.shape}; expected {expected}, one character per step "
                    f"and sequence.{hint}")
    if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise Wrong("sample returned values that are not whole numbers: return character indices (int64)")
    if array.min() < 0 or array.max() >= case.vocabulary:
        raise Wrong(f"sample returned indices from {int(array.min())} to {int(array.max())}; the vocabulary has "
                    f"{case.vocabulary} characters, indices 0 to {case.vocabulary - 1}")
    return array.astype(np.int64)


def _call_sample(answer, case, model, prefix, seed):
    generator = torch.Generator().manual_seed(seed)
    args = (model, prefix, case.temperature, generator, case.steps)
    result = run_answer(answer, "sample", ("model", "prefix", "temperature", "generator", "steps"), args,
                        case.describe())
    try:
        return _read_samples(result, case)
    except Wrong as exc:
        raise CheckFailed(f"{exc} (inputs {case.describe()})") from None


def _sample_verdict(case, model, prefix, drawn):
    """None when ``drawn`` follows softmax(logits / temperature), otherwise the message saying why not."""
    table, prefix_array = model.table.numpy(), prefix.numpy()
    right = M.sample_log_p(table, prefix_array, drawn, case.temperature)
    mistaken = {m.name: M.sample_log_p(table, prefix_array, drawn, case.temperature, **m.flags)
                for m in M.SAMPLE_MISTAKES if m.found is None}
    picked = lambda log_p: float(np.take_along_axis(log_p, drawn[..., None], axis=-1).sum())  # noqa: E731
    z = _surprisal_z(right, drawn)
    best = picked(right)
    # Mistakes that coincide with the right sampler on this case (temperature 1, a prefix of
    # one character) are no alternative: leave them out.
    rivals = {name: log_p for name, log_p in mistaken.items() if not np.allclose(log_p, right, atol=1e-9)}
    if abs(z) <= Z_LIMIT and all(best >= picked(log_p) for log_p in rivals.values()):
        return None
    bits = -best / drawn.size / LN2
    expected = float(-(np.exp(right) * right).sum(-1).mean()) / LN2
    message = (f"sample's characters do not follow softmax(logits / temperature) on the inputs {case.describe()}: "
               f"their mean surprisal under it is {bits:.3f} bits per character, where a correct sampler gives "
               f"{expected:.3f} on average ({z:+.1f} standard errors away).")
    fitting = [(picked(log_p), name) for name, log_p in rivals.items() if abs(_surprisal_z(log_p, drawn)) <= Z_LIMIT]
    if fitting:
        best_fit = max(fitting)[1]
        return f"{message}\n" + next(m for m in M.SAMPLE_MISTAKES if m.name == best_fit).line()
    return (f"{message}\nThey match none of the usual mistakes the tests know: feed the prefix, then at each step "
            "divide the last logits by the temperature, softmax, draw one character with the generator, and feed "
            "it back with the state.")


class _Draws:
    """What a sampler draws on one case, each call made when a mistake's predicate first asks:
    ``first`` and ``again`` with generators in the same state, ``other`` with another,
    and ``greedy``, the most likely characters (:data:`~rnnlab.grading.checks.mistakes.SAMPLE_MISTAKES`)."""

    def __init__(self, sample, case, model, prefix):
        self._sample, self._case, self._model, self._prefix = sample, case, model, prefix
        self.temperature = case.temperature

    @functools.cached_property
    def first(self):
        return _call_sample(self._sample, self._case, self._model, self._prefix, self._case.seed)

    @functools.cached_property
    def again(self):
        return _call_sample(self._sample, self._case, self._model, self._prefix, self._case.seed)

    @functools.cached_property
    def greedy(self):
        return _greedy(self._model, self._prefix, self._case.steps)

    @functools.cached_property
    def other(self):
        return _call_sample(self._sample, self._case, self._model, self._prefix, self._case.seed + 1000)


def check_sample(sample, hidden=False):
    """``sample(model, prefix, temperature, generator, steps)``: seeded, and distributed as softmax(logits / T)."""
    __tracebackhide__ = True  # IPython leaves this frame out of the student's traceback
    chosen = _chosen_cases(sample, "sample", SAMPLE_VISIBLE, "SAMPLE_HIDDEN", hidden)
    for case in chosen:
        model, prefix = case.draw()
        draws = _Draws(sample, case, model, prefix)
        shown = M.first_found(M.SAMPLE_MISTAKES, draws)
        if shown is not None:
            mistake, _ = shown
            details = {"inputs": case.describe(), "count": draws.first.size}
            raise CheckFailed(f"{mistake.seen.format(**details)}\n{mistake.line()}")
        first = draws.first
        message = _sample_verdict(case, model, prefix, first)
        if message:
            raise CheckFailed(message)
    print(f"OK: sample draws from softmax(logits / temperature) with its generator on {len(chosen)} cases"
          f"{', the hidden ones included' if hidden else ''}.")

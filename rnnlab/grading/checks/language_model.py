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

import math
import numpy as np
import torch

from .recurrent import Wrong, as_array, close
from .mistakes import Mistake, singles_then_pairs
from ..messages import named
from .calling import CheckFailed, hidden_inputs, run_answer
from .cases import SampleCase, TextCase

LN2 = math.log(2.0)
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


def _log_softmax(values, axis):
    shifted = values - values.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def mistaken_bits_per_char(logits, targets, *, natural_log=False, shift=1, total=False, count_all=False,
                           axis=-1, raw_logits=False) -> float:
    """Bits per character in numpy float64, and the usual mistakes (one keyword flag each).

    With no flag it is the correct value; ``shift`` 0 scores ``logits[t]`` against
    ``targets[t]``, -1 against ``targets[t - 1]``; ``axis`` is the axis of the softmax;
    ``raw_logits`` takes the logits as log-probabilities.
    """
    log_p = logits if raw_logits else _log_softmax(logits, axis)
    scored, wanted = {1: (log_p[:-1], targets[1:]), 0: (log_p, targets), -1: (log_p[1:], targets[:-1])}[shift]
    nats = -np.take_along_axis(scored, wanted[..., None], axis=-1).sum()
    value = nats if total else nats / (targets.size if count_all else wanted.size)
    return float(value if natural_log else value / LN2)


BITS_MISTAKES = [
    Mistake("natural_log", "the value is in nats: bits per character take the logarithm in base 2. Divide the "
            "natural-log loss by ln 2 (math.log(2)), or use torch.log2.", flags=dict(natural_log=True)),
    Mistake("targets_not_shifted", "the targets are not shifted by one: logits[t] was scored against targets[t], the "
            "character the model had just read. logits[t] predicts the next character: compare logits[:-1] "
            "with targets[1:].", flags=dict(shift=0)),
    Mistake("shifted_backwards", "the targets are shifted the wrong way: logits[t] predicts targets[t + 1], so compare "
            "logits[:-1] with targets[1:], not logits[1:] with targets[:-1].", flags=dict(shift=-1)),
    Mistake("total", "you returned the total number of bits: bits per character is their mean over the "
            "(T − 1)·B predicted characters.", flags=dict(total=True)),
    Mistake("count_all", "you divided by T·B, but only (T − 1)·B characters are predicted (the last step predicts "
            "past the end of the text): divide by (T − 1)·B.", flags=dict(count_all=True)),
    Mistake("raw_logits", "the logits were used as log-probabilities: normalise them first, "
            "torch.log_softmax(logits, dim=-1) (the logits minus their logsumexp).", flags=dict(raw_logits=True)),
    Mistake("softmax_over_time", "the softmax ran over dim=0, the time axis: the probabilities of the next character "
            "sum to one over the vocabulary, the last axis (dim=-1).", flags=dict(axis=0)),
    Mistake("softmax_over_batch", "the softmax ran over dim=1, the batch axis: the probabilities of the next "
            "character sum to one over the vocabulary, the last axis (dim=-1).", flags=dict(axis=1)),
]


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
        for mistake in singles_then_pairs(BITS_MISTAKES):
            value = mistaken_bits_per_char(logits, targets, **mistake.flags)
            if close(np.array(got), np.array(value)) and not close(np.array(value), np.array(expected)):
                raise CheckFailed(f"{message}\n" + named(mistake.message))
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


def _table_log_p(table, keys, inputs, temperature):
    """log softmax(table[keys, inputs] / temperature) in float64: (steps, B, V)."""
    return _log_softmax(table[keys, inputs].astype(np.float64) / temperature, -1)


def _hypotheses(table, prefix, drawn, temperature):
    """The log-probabilities (steps, B, V) of each next character under the right sampler and
    under each usual mistake, along the sequence the student drew."""
    first, last = prefix[0], prefix[-1]
    inputs = np.concatenate([last[None], drawn[:-1]])              # what the model reads before each draw
    keys = np.broadcast_to(first, inputs.shape)
    steps = len(drawn)
    right = _table_log_p(table, keys, inputs, temperature)
    stateless = _table_log_p(table, inputs, inputs, temperature)
    stateless[0] = right[0]                                        # the prefix was fed once, then the state dropped
    return right, {
        "temperature_after_softmax": _table_log_p(table, keys, inputs, 1.0),
        "temperature_multiplied": _table_log_p(table, keys, inputs, 1.0 / temperature),
        "prefix_not_fed": _table_log_p(table, np.broadcast_to(last, inputs.shape), inputs, temperature),
        "state_not_carried": stateless,
        "samples_not_fed_back": _table_log_p(table, keys, np.broadcast_to(last, (steps,) + last.shape), temperature),
    }


SAMPLE_MISTAKES = {
    "temperature_after_softmax": "the temperature was applied after the softmax: dividing probabilities by the "
    "temperature changes nothing once torch.multinomial normalises them. Divide the logits: "
    "torch.softmax(logits / temperature, dim=-1).",
    "temperature_multiplied": "the logits were multiplied by the temperature: divide them, "
    "softmax(logits / temperature), so that a temperature below 1 makes the samples less varied.",
    "prefix_not_fed": "the prefix was not fed to the model before sampling (only its last character was): run the "
    "model over the whole prefix first, logits, state = model(prefix, None), and draw the first character "
    "from logits[-1].",
    "state_not_carried": "the state was not carried from one step to the next: pass the state the model returned "
    "into the next call, logits, state = model(next_character, state).",
    "samples_not_fed_back": "the characters you drew were not fed back: each one is the model's next input, "
    "logits, state = model(next_character.view(1, -1), state).",
    "greedy": "you took the most likely character (argmax): sampling draws one at random from "
    "softmax(logits / temperature), e.g. torch.multinomial(probabilities, 1, generator=generator).",
    "seed_ignored": "the generator's seed is ignored: two calls with generators in the same state gave different "
    "samples. Draw with the generator you are given, torch.multinomial(probabilities, 1, generator=generator), "
    "not from torch's global random state.",
    "generator_unused": "your samples do not change when the generator does: draw with the generator you are given "
    "(torch.multinomial(probabilities, 1, generator=generator)), and do not seed anything inside the function.",
}


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
    right, mistaken = _hypotheses(table, prefix_array, drawn, case.temperature)
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
        return f"{message}\n" + named(SAMPLE_MISTAKES[max(fitting)[1]])
    return (f"{message}\nThey match none of the usual mistakes the tests know: feed the prefix, then at each step "
            "divide the last logits by the temperature, softmax, draw one character with the generator, and feed "
            "it back with the state.")


def check_sample(sample, hidden=False):
    """``sample(model, prefix, temperature, generator, steps)``: seeded, and distributed as softmax(logits / T)."""
    __tracebackhide__ = True  # IPython leaves this frame out of the student's traceback
    chosen = _chosen_cases(sample, "sample", SAMPLE_VISIBLE, "SAMPLE_HIDDEN", hidden)
    for case in chosen:
        model, prefix = case.draw()
        first = _call_sample(sample, case, model, prefix, case.seed)
        again = _call_sample(sample, case, model, prefix, case.seed)
        if not np.array_equal(first, again):
            raise CheckFailed(f"sample gave different characters on the inputs {case.describe()} for two "
                              f"generators seeded alike.\n" + named(SAMPLE_MISTAKES['seed_ignored']))
        if np.array_equal(first, _greedy(model, prefix, case.steps)) and case.temperature >= 0.5:
            raise CheckFailed(f"sample returned the most likely characters on the inputs {case.describe()}.\n"
                              + named(SAMPLE_MISTAKES["greedy"]))
        other = _call_sample(sample, case, model, prefix, case.seed + 1000)
        if np.array_equal(first, other) and case.temperature >= 0.5:
            raise CheckFailed(f"sample gave the same {first.size} characters on the inputs {case.describe()} "
                              f"for generators seeded differently.\n" + named(SAMPLE_MISTAKES['generator_unused']))
        message = _sample_verdict(case, model, prefix, first)
        if message:
            raise CheckFailed(message)
    print(f"OK: sample draws from softmax(logits / temperature) with its generator on {len(chosen)} cases"
          f"{', the hidden ones included' if hidden else ''}.")

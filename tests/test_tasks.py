"""Specification of rnnlab.tasks: every target is recomputed here from the inputs, by rules
read from the papers, never by the helpers of the module under test."""

import itertools
import math
import re

import numpy as np
import pytest
import torch

from rnnlab import tasks

# ----------------------------------------------------------------------------- seeds

GENERATORS = {
    "adding_problem": lambda seed: tasks.adding_problem(8, 30, seed=seed),
    "adding_problem_le2015": lambda seed: tasks.adding_problem_le2015(8, 12, seed=seed),
    "temporal_order": lambda seed: tasks.temporal_order(8, seed=seed),
    "embedded_reber": lambda seed: tasks.embedded_reber(8, seed=seed),
    "memorisation": lambda seed: tasks.memorisation(8, "ABCABBAC", window=5, seed=seed),
    "noisy_sines": lambda seed: tasks.noisy_sines(8, 20, seed=seed),
    "counting": lambda seed: tasks.counting(8, "anbncn", counts=(1, 30), seed=seed),
}


def same_batch(a, b):
    return all((x is None and y is None) or (x.shape == y.shape and torch.equal(x, y)) for x, y in zip(a, b))


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_gives_same_batch_and_different_seeds_differ(name):
    draw = GENERATORS[name]
    assert same_batch(draw(3), draw(3)), "same int seed must give the same batch"
    assert not same_batch(draw(3), draw(4)), "different seeds must give different batches"
    stream = np.random.default_rng(5)
    first, second = draw(stream), draw(stream)
    assert same_batch(first, draw(np.random.default_rng(5))), "a Generator seeded alike must give the same batch"
    assert not same_batch(first, second), "two draws from one Generator must differ"


@pytest.mark.parametrize("name", ["embedded_reber_strings", "reber_strings"])
def test_string_generators_are_seeded(name):
    generate = getattr(tasks, name)
    assert generate(20, seed=1) == generate(20, seed=1)
    assert generate(20, seed=1) != generate(20, seed=2)


def test_lzw_string_is_seeded():
    assert tasks.lzw_string(3, 12, seed=1) == tasks.lzw_string(3, 12, seed=1)
    assert len({tasks.lzw_string(3, 12, seed=s) for s in range(5)}) > 1


@pytest.mark.parametrize("seed, error", [(1.5, TypeError), (True, TypeError), ("0", TypeError), (-1, ValueError)])
def test_bad_seed_is_rejected_naming_seed(seed, error):
    with pytest.raises(error, match="seed"):
        tasks.adding_problem(2, 20, seed=seed)


# ----------------------------------------------------------------------------- adding problem (1997)

def test_adding_problem_follows_hochreiter_schmidhuber_1997():
    length = 40
    lengths = set()
    for seed in range(6):
        batch = tasks.adding_problem(400, length, seed=seed)
        inputs = batch.inputs.double().numpy()  # (T, N, 2)
        steps = inputs.shape[0]
        lengths.add(steps)
        assert length <= steps <= length + length // 10, "length must be uniform in [T, T + T/10]"
        assert inputs.dtype == np.float64 and batch.inputs.dtype == torch.float32
        values, markers = inputs[..., 0].T, inputs[..., 1].T  # (N, T)
        assert batch.targets.shape == (400, 1) and batch.targets.dtype == torch.float32
        assert np.all(np.abs(values) <= 1)
        for n in range(400):
            marked = np.flatnonzero(markers[n] == 1)
            assert len(marked) == 2, "exactly two marked steps"
            assert marked[0] < 10, "the first mark lies among the first 10 steps"
            assert marked[1] < length // 2, "the second mark lies in the first half"
            for end in (0, steps - 1):
                assert markers[n, end] == (1 if end in marked else -1), "ends carry -1 unless marked"
            others = np.setdiff1d(np.arange(steps), np.r_[marked, 0, steps - 1])
            assert np.all(markers[n, others] == 0)
            if marked[0] == 0:
                assert values[n, 0] == 0, "X1 is set to zero when the first step is marked"
            expected = 0.5 + (values[n, marked[0]] + values[n, marked[1]]) / 4.0
            assert batch.targets[n, 0].item() == pytest.approx(expected, abs=1e-6)
    assert len(lengths) > 1, "lengths vary between batches"


def test_adding_problem_marks_steps_with_the_papers_probabilities():
    # First mark uniform over steps 0..9, second uniform over the other 14 of steps 0..14:
    # P(step p marked) = 1/10 + (9/10)(1/14) for p < 10, and 1/14 for 10 <= p < 15.
    batch = tasks.adding_problem(4000, 30, seed=0, vary_length=False)
    assert batch.inputs.shape == (30, 4000, 2)
    frequency = (batch.inputs[..., 1] == 1).double().mean(1).numpy()
    expected = np.r_[np.full(10, 0.1 + 0.9 / 14), np.full(5, 1 / 14), np.zeros(15)]
    np.testing.assert_allclose(frequency, expected, atol=0.025)


def test_adding_problem_solved_uses_the_papers_tolerance():
    assert tasks.ADDING_PROBLEM_TOLERANCE == 0.04
    targets = torch.tensor([[0.5], [0.5], [0.5], [0.2]])
    predictions = torch.tensor([[0.53], [0.45], [0.539], [0.25]])  # errors 0.03, 0.05, 0.039, 0.05
    assert tasks.adding_problem_solved(predictions, targets).tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="same shape"):
        tasks.adding_problem_solved(predictions, targets[:, 0])


# ----------------------------------------------------------------------------- adding problem (2015)

def test_adding_problem_le2015_targets_are_the_sum_of_the_two_marked_values():
    batch = tasks.adding_problem_le2015(3000, 10, seed=0)
    values, markers = batch.inputs[..., 0].T.double(), batch.inputs[..., 1].T
    assert torch.all((values >= 0) & (values <= 1))
    assert torch.all((markers == 0) | (markers == 1)) and torch.all(markers.sum(1) == 2)
    expected = (values * markers).sum(1)
    torch.testing.assert_close(batch.targets[:, 0].double(), expected, atol=1e-6, rtol=0)
    # Markers anywhere: both in the same half happens (it could not if one sat in each half).
    positions = markers.nonzero()[:, 1].reshape(-1, 2)
    assert (positions >= 5).all(1).any() and (positions < 5).all(1).any()
    # Predicting 1 always costs the variance of a sum of two U[0, 1], 2/12.
    assert ((batch.targets - 1) ** 2).mean().item() == pytest.approx(1 / 6, abs=0.015)


# ----------------------------------------------------------------------------- temporal order

def test_temporal_order_follows_hochreiter_schmidhuber_1997():
    classes = {("X", "X"): "Q", ("X", "Y"): "R", ("Y", "X"): "S", ("Y", "Y"): "U"}
    batch = tasks.temporal_order(300, seed=0)
    steps = batch.inputs.shape[0]
    assert 100 <= steps <= 110 and batch.inputs.shape[2] == 8
    assert torch.all(batch.inputs.sum(-1) == 1), "inputs are one-hot"
    symbols = np.array(tasks.TEMPORAL_ORDER_SYMBOLS)[batch.inputs.argmax(-1).T.numpy()]  # (N, T)
    for row, label in zip(symbols, batch.targets.tolist()):
        assert row[0] == "E" and row[-1] == "B"
        relevant = [t for t, s in enumerate(row) if s in "XY"]
        assert len(relevant) == 2
        assert 10 <= relevant[0] + 1 <= 20 and 50 <= relevant[1] + 1 <= 60, "positions count from 1"
        assert set(np.delete(row, [0, steps - 1] + relevant)) <= set("abcd")
        assert tasks.TEMPORAL_ORDER_CLASSES[label] == classes[tuple(row[relevant])]
    assert set(batch.targets.tolist()) == {0, 1, 2, 3}


def test_temporal_order_rejects_overlapping_positions():
    with pytest.raises(ValueError, match="second_position"):
        tasks.temporal_order(2, seed=0, first_position=(10, 30), second_position=(20, 40))
    with pytest.raises(TypeError, match="length"):
        tasks.temporal_order(2, seed=0, length=100)


# ----------------------------------------------------------------------------- Reber grammars

# An independent oracle: the Reber grammar as a regular expression, derived by hand from
# the automaton (node 1 -T-> 2 with S loops -X-> 4; 1 -P-> 3 with T loops -V-> 5;
# 4 -X-> 3, 4 -S-> end; 5 -P-> 4, 5 -V-> end).
FROM_4 = "(XT*VP)*(S|XT*VV)"
REBER = f"B(TS*X{FROM_4}|PT*V(V|P{FROM_4}))E"
EMBEDDED = re.compile(f"B(T{REBER}T|P{REBER}P)E")


def test_generated_strings_belong_to_the_grammars():
    for text in tasks.reber_strings(200, seed=0):
        assert re.fullmatch(REBER, text) and tasks.is_reber(text), text
    strings = tasks.embedded_reber_strings(200, seed=0)
    for text in strings:
        assert EMBEDDED.fullmatch(text) and tasks.is_embedded_reber(text), text
    assert {text[1] for text in strings} == {"T", "P"}


def test_corrupted_embedded_reber_strings_are_rejected():
    for text in tasks.embedded_reber_strings(30, seed=1):
        wrong_end = text[:-2] + {"T": "P", "P": "T"}[text[-2]] + "E"
        for corrupted in (text[:-1], text[:-2], text[1:], wrong_end, text + "E"):
            assert not tasks.is_embedded_reber(corrupted), corrupted
        rejected = 0
        for t, symbol in itertools.product(range(len(text)), tasks.REBER_SYMBOLS):
            changed = text[:t] + symbol + text[t + 1:]
            if changed != text:
                expected = EMBEDDED.fullmatch(changed) is not None
                assert tasks.is_embedded_reber(changed) == expected, changed
                rejected += not expected
        assert rejected >= 5 * len(text), "almost every one-symbol change leaves the grammar"
    assert not tasks.is_embedded_reber("") and not tasks.is_reber("BTXSEE")
    with pytest.raises(TypeError, match="string"):
        tasks.is_embedded_reber(["B", "T"])


def multi_hot(*sets):
    return torch.tensor([[float(s in allowed) for s in "BTSXPVE"] for allowed in sets])


def test_next_symbols_of_hand_worked_strings():
    # After each prefix of BTBPVVETE: B->{T,P}, T->{B}, B->{T,P}, P->{T,V}, V->{P,V}, V->{E},
    # E->{T} (the symbol that opened), T->{E}, E->{} (end).
    first = multi_hot("TP", "B", "TP", "TV", "PV", "E", "T", "E", "")
    # BPBTSXSEPE: ..., T->{S,X}, S->{S,X}, X->{X,S}, S->{E}, E->{P}, P->{E}, E->{}.
    second = multi_hot("TP", "B", "TP", "SX", "SX", "SX", "E", "P", "E", "")
    allowed = tasks.embedded_reber_next_symbols(["BTBPVVETE", "BPBTSXSEPE"])
    assert allowed.shape == (10, 2, 7)
    torch.testing.assert_close(allowed[:9, 0], first)
    torch.testing.assert_close(allowed[9, 0], torch.zeros(7)), "padding is zero"
    torch.testing.assert_close(allowed[:, 1], second)
    with pytest.raises(ValueError, match="strings\\[0\\]"):
        tasks.embedded_reber_next_symbols(["BTBTXSEPE"])


def test_one_hot_pads_with_zeros_and_checks_symbols():
    codes = tasks.one_hot(["BT", "E"])
    expected = torch.zeros(2, 2, 7)
    expected[0, 0, 0] = expected[1, 0, 1] = expected[0, 1, 6] = 1
    torch.testing.assert_close(codes, expected)
    torch.testing.assert_close(tasks.one_hot(["BT", "E"], batch_first=True), expected.transpose(0, 1))
    with pytest.raises(ValueError, match="'Z'"):
        tasks.one_hot(["BZ"])
    with pytest.raises(TypeError, match="strings"):
        tasks.one_hot("BT")


def test_embedded_reber_batch_needs_the_second_symbol_at_the_last_step():
    batch = tasks.embedded_reber(64, seed=2)
    lengths = batch.mask.sum(0)
    for n in range(64):
        length = int(lengths[n])
        text = "".join("BTSXPVE"[k] for k in batch.inputs[:length, n].argmax(-1).tolist())
        assert tasks.is_embedded_reber(text + "E"), "inputs are a whole string without its final E"
        assert torch.all(batch.inputs[length:, n] == 0) and not batch.mask[length:, n].any()
        # Reading the inner string's E, only the symbol that came second may follow.
        torch.testing.assert_close(batch.targets[length - 2, n], multi_hot(text[1])[0])
        torch.testing.assert_close(batch.targets[length - 1, n], multi_hot("E")[0])
    assert len(set(lengths.tolist())) > 1


# ----------------------------------------------------------------------------- LZW complexity

@pytest.mark.parametrize("text, expected", [
    ("A", 1),               # A
    ("AAAA", 1),            # shortest period A: A
    ("ABA", 3),             # A | B | A
    ("ABAB", 2),            # shortest period AB: A | B
    ("ABCABC", 3),          # shortest period ABC: A | B | C
    ("AABAB", 4),           # A | A | B | AB          (dictionary grows AA, AB, BA)
    ("ABABABA", 4),         # A | B | AB | ABA        (AB, BA, ABA)
    ("AAAAAB", 4),          # A | AA | AA | B         (AA, AAA, AAB)
    ("ABCBBCBBABCC", 9),    # A | B | C | B | BC | BB | AB | C | C
])
def test_lzw_complexity_of_hand_worked_strings(text, expected):
    assert tasks.lzw_complexity(text) == expected


def reference_lzw_complexity(text):
    """A second, plain implementation: reduce to the period by regex, then cut phrases."""
    unit = re.fullmatch(r"(.+?)\1*", text).group(1)
    dictionary, phrases, start = list(set(unit)), [], 0
    while start < len(unit):
        end = start + 1
        while end < len(unit) and unit[start:end + 1] in dictionary:
            end += 1
        phrases.append(unit[start:end])
        if end < len(unit):
            dictionary.append(unit[start:end + 1])
        start = end
    return len(phrases)


def test_lzw_complexity_agrees_with_a_plain_implementation():
    rng = np.random.default_rng(0)
    for _ in range(300):
        text = "".join(rng.choice(list("ABC"), size=rng.integers(1, 40)))
        assert tasks.lzw_complexity(text) == reference_lzw_complexity(text), text


@pytest.mark.parametrize("alphabet_size, complexity", [(1, 1), (2, 2), (2, 15), (3, 9), (5, 30), (10, 12)])
def test_lzw_string_has_the_requested_complexity(alphabet_size, complexity):
    for seed in range(3):
        text = tasks.lzw_string(alphabet_size, complexity, seed=seed)
        assert reference_lzw_complexity(text) == complexity
        assert set(text) == set("ABCDEFGHIJ"[:alphabet_size])


@pytest.mark.parametrize("kwargs, error, name", [
    ({"alphabet_size": 3, "complexity": 2}, ValueError, "complexity"),
    ({"alphabet_size": 1, "complexity": 3}, ValueError, "complexity"),
    ({"alphabet_size": 27, "complexity": 30}, ValueError, "alphabet_size"),
    ({"alphabet_size": 2.0, "complexity": 3}, TypeError, "alphabet_size"),
])
def test_lzw_string_rejects_impossible_requests(kwargs, error, name):
    with pytest.raises(error, match=name):
        tasks.lzw_string(**kwargs, seed=0)


def test_memorisation_windows_come_from_the_repeated_string():
    text = "ABCAAB"
    batch = tasks.memorisation(500, text, window=8, seed=0, alphabet="ABCD")
    assert batch.inputs.shape == (8, 500, 4) and batch.targets.dtype == torch.int64
    decoded = ["".join("ABCD"[k] for k in column) for column in batch.inputs.argmax(-1).T.tolist()]
    offsets = set()
    for window, target in zip(decoded, batch.targets.tolist()):
        sequence = window + "ABCD"[target]
        starts = [o for o in range(len(text)) if (text * 4)[o:o + 9] == sequence]
        assert starts, f"{sequence} is not a piece of {text} repeated"
        offsets.update(starts)
    assert offsets == set(range(len(text))), "every offset is drawn"
    with pytest.raises(ValueError, match="alphabet"):
        tasks.memorisation(2, text, window=3, seed=0, alphabet="AB")


# ----------------------------------------------------------------------------- noisy sines

def test_clean_single_sine_obeys_its_recurrence_and_targets_are_shifted_inputs():
    f, horizon = 0.07, 3
    batch = tasks.noisy_sines(16, 40, seed=0, horizon=horizon, frequencies=(f,), noise_std=0.0)
    x = batch.inputs[..., 0].double()
    assert batch.inputs.shape == batch.targets.shape == (40, 16, 1)
    # sin(a + w) + sin(a - w) = 2 cos(w) sin(a), with w = 2 pi f
    torch.testing.assert_close(x[2:] + x[:-2], 2 * math.cos(2 * math.pi * f) * x[1:-1], atol=1e-6, rtol=0)
    assert x.abs().max() <= 1 and x.std() > 0.5
    torch.testing.assert_close(batch.targets[:-horizon], batch.inputs[horizon:])


def test_noise_has_the_requested_spread():
    noisy = tasks.noisy_sines(200, 30, seed=1, horizon=2, noise_std=0.3)
    torch.testing.assert_close(noisy.targets[:-2], noisy.inputs[2:])
    clean = tasks.noisy_sines(200, 30, seed=1, horizon=2, noise_std=0.3, clean_targets=True)
    torch.testing.assert_close(clean.inputs, noisy.inputs)
    residual = (clean.inputs[2:] - clean.targets[:-2]).double()
    assert residual.std().item() == pytest.approx(0.3, rel=0.05)
    assert residual.mean().abs().item() < 0.02


# ----------------------------------------------------------------------------- counting languages

@pytest.mark.parametrize("language, n, string", [
    ("anbn", 1, "ab"), ("anbn", 3, "aaabbb"), ("anbncn", 1, "abc"), ("anbncn", 2, "aabbcc"),
])
def test_counting_strings_are_the_hand_written_ones(language, n, string):
    assert tasks.counting_string(language, n) == string
    assert tasks.is_counting_string(language, string)


@pytest.mark.parametrize("language, string", [
    ("anbn", ""), ("anbn", "aab"), ("anbn", "abb"), ("anbn", "abab"), ("anbn", "ba"), ("anbn", "aabbc"),
    ("anbncn", "aabbc"), ("anbncn", "abcabc"), ("anbncn", "aabcbc"), ("anbncn", "ab"), ("anbncn", "aabbcca"),
])
def test_strings_off_by_one_or_out_of_order_are_not_counting_strings(language, string):
    assert not tasks.is_counting_string(language, string)


def decode(batch, column, alphabet):
    """The allowed next symbols of one sequence of a batch, as a list of strings (real steps)."""
    steps = batch.mask[:, column]
    return ["".join(symbol for symbol, on in zip(alphabet, row) if on)
            for row in batch.targets[steps, column].tolist()]


@pytest.mark.parametrize("language, n, read, allowed", [
    # reading S a a b b: after S only a; after a, aa: a or b; after aab: b; after aabb: the end
    ("anbn", 2, "Saabb", ["a", "ab", "ab", "b", "T"]),
    ("anbn", 1, "Sab", ["a", "ab", "T"]),
    ("anbncn", 2, "Saabbcc", ["a", "ab", "ab", "b", "c", "c", "T"]),
    ("anbncn", 3, "Saaabbbccc", ["a", "ab", "ab", "ab", "b", "b", "c", "c", "c", "T"]),
])
def test_counting_targets_of_hand_worked_strings(language, n, read, allowed):
    inputs_alphabet, outputs_alphabet = tasks.counting_symbols(language)
    batch = tasks.counting_batch(language, [n, 1])
    steps = batch.mask[:, 0]
    assert steps.sum() == len(read) and batch.mask[:, 1].sum() == len(inputs_alphabet)
    assert "".join(inputs_alphabet[k] for k in batch.inputs[steps, 0].argmax(-1).tolist()) == read
    assert batch.inputs[steps, 0].sum(-1).eq(1).all()
    assert decode(batch, 0, outputs_alphabet) == allowed
    assert batch.inputs[~batch.mask].abs().sum() == 0 and batch.targets[~batch.mask].abs().sum() == 0


def allowed_by_brute_force(language, prefix, longest):
    """Every symbol x such that prefix + x starts a string of the language, plus T if the prefix
    is itself one, found by listing the language's strings up to count ``longest``."""
    strings = [tasks.counting_string(language, n) for n in range(1, longest + 1)]
    allowed = {s[len(prefix)] for s in strings if s.startswith(prefix) and len(s) > len(prefix)}
    if tasks.is_counting_string(language, prefix):
        allowed.add("T")
    return allowed


@pytest.mark.parametrize("language", ["anbn", "anbncn"])
def test_counting_targets_agree_with_the_language_listed_by_brute_force(language):
    inputs_alphabet, outputs_alphabet = tasks.counting_symbols(language)
    batch = tasks.counting(40, language, counts=(1, 12), seed=3)
    for column in range(40):
        steps = batch.mask[:, column]
        read = "".join(inputs_alphabet[k] for k in batch.inputs[steps, column].argmax(-1).tolist())
        assert read[0] == "S" and tasks.is_counting_string(language, read[1:])
        for t, allowed in enumerate(decode(batch, column, outputs_alphabet)):
            assert set(allowed) == allowed_by_brute_force(language, read[1:t + 1], 40), (read, t)


def test_counting_draws_every_count_in_its_range_and_no_other():
    batch = tasks.counting(500, "anbn", counts=(3, 7), seed=0)
    lengths = batch.mask.sum(0)
    assert set(((lengths - 1) // 2).tolist()) == {3, 4, 5, 6, 7}
    assert batch.inputs.shape[0] == 2 * 7 + 1


def test_strings_predicted_needs_the_exact_set_at_every_real_step():
    batch = tasks.counting_batch("anbn", [3, 2, 4])
    perfect = 4 * batch.targets - 2                       # logit +2 where allowed, -2 elsewhere
    assert tasks.strings_predicted(perfect, batch).tolist() == [True, True, True]
    early_end = perfect.clone()
    early_end[5, 2, 2] = 2.0                              # string 2 (n = 4): T predicted after aaaab
    assert tasks.strings_predicted(early_end, batch).tolist() == [True, True, False]
    on_padding = perfect.clone()
    on_padding[7:, 1] = 5.0                               # string 1 (n = 2) has 5 real steps
    assert tasks.strings_predicted(on_padding, batch).tolist() == [True, True, True]
    first = tasks.counting_batch("anbn", [3, 2, 4], batch_first=True)
    assert tasks.strings_predicted(early_end.transpose(0, 1), first, batch_first=True).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="predictions"):
        tasks.strings_predicted(perfect[:-1], batch)


# ----------------------------------------------------------------------------- layout, tasks, errors

@pytest.mark.parametrize("generator, args", [
    (tasks.adding_problem, (4, 20)), (tasks.temporal_order, (4,)), (tasks.noisy_sines, (4, 10)),
    (tasks.embedded_reber, (4,)), (tasks.counting, (4, "anbn")),
])
def test_batch_first_transposes_the_per_step_tensors(generator, args):
    time_first, batch_first = generator(*args, seed=0), generator(*args, seed=0, batch_first=True)
    torch.testing.assert_close(batch_first.inputs, time_first.inputs.transpose(0, 1))
    if time_first.targets.ndim == 3:
        torch.testing.assert_close(batch_first.targets, time_first.targets.transpose(0, 1))
    if time_first.mask is not None:
        assert torch.equal(batch_first.mask, time_first.mask.T)


def test_tasks_describe_their_batches():
    for task in (tasks.adding_problem_task(30), tasks.adding_problem_le2015_task(10), tasks.temporal_order_task(),
                 tasks.embedded_reber_task(), tasks.memorisation_task("ABCA", window=3), tasks.noisy_sines_task(10),
                 tasks.counting_task("anbn"), tasks.counting_task("anbncn", counts=(2, 4))):
        batch = task.batch(3, seed=0)
        assert batch.inputs.shape[-1] == task.input_size
        assert task.readout in ("last", "all")
        assert same_batch(batch, task.batch(3, seed=0))


@pytest.mark.parametrize("call, error, name", [
    (lambda: tasks.adding_problem(0, 20, seed=0), ValueError, "batch_size"),
    (lambda: tasks.adding_problem(2, 19, seed=0), ValueError, "length"),
    (lambda: tasks.adding_problem(2, 20.0, seed=0), TypeError, "length"),
    (lambda: tasks.adding_problem(2, 20, seed=0, vary_length=1), TypeError, "vary_length"),
    (lambda: tasks.adding_problem_le2015(2, 1, seed=0), ValueError, "length"),
    (lambda: tasks.noisy_sines(2, 10, seed=0, frequencies=(0.6,)), ValueError, "frequencies\\[0\\]"),
    (lambda: tasks.noisy_sines(2, 10, seed=0, noise_std=-1), ValueError, "noise_std"),
    (lambda: tasks.noisy_sines(2, 10, seed=0, horizon=0), ValueError, "horizon"),
    (lambda: tasks.memorisation(2, "", window=3, seed=0), ValueError, "string"),
    (lambda: tasks.memorisation(2, "AB", window=0, seed=0), ValueError, "window"),
    (lambda: tasks.embedded_reber_strings(0, seed=0), ValueError, "count"),
    (lambda: tasks.lzw_complexity(""), ValueError, "string"),
    (lambda: tasks.adding_problem_task(length=5), ValueError, "length"),
    (lambda: tasks.noisy_sines_task(batch_first="yes"), TypeError, "batch_first"),
    (lambda: tasks.counting_batch("anbm", [2]), ValueError, "language"),
    (lambda: tasks.counting_batch("anbn", [2, 0]), ValueError, "counts\\[1\\]"),
    (lambda: tasks.counting_batch("anbn", 3), TypeError, "counts"),
    (lambda: tasks.counting_batch("anbn", []), ValueError, "counts"),
    (lambda: tasks.counting(2, "anbn", counts=(5, 2), seed=0), ValueError, "counts"),
    (lambda: tasks.counting_string("anbn", 0), ValueError, "n"),
])
def test_bad_arguments_raise_errors_naming_them(call, error, name):
    with pytest.raises(error, match=name):
        call()

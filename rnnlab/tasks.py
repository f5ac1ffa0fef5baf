"""Seeded synthetic sequence tasks, generated in memory.

Each generator draws one batch of a classic benchmark for recurrent networks and says in
its docstring where the task comes from and how we read the source. The same ``seed``
always gives the same batch; ``seed`` is an ``int`` or a ``numpy.random.Generator`` (pass
one Generator to draw many different batches from one seeded stream).

Layout, as in ``torch.nn``: inputs are float32 tensors of shape (T, N, I), time first,
or (N, T, I) with ``batch_first=True``. Targets are one per sequence, shape (N, 1) for
regression and (N,) int64 class indices for classification, or one per step, (T, N, ...)
or (N, T, ...), for next-step prediction. A generator returns a :class:`Batch`.

A :class:`Task` bundles a generator with its loss and accuracy for :func:`rnnlab.train`;
the ``*_task`` functions build one for each benchmark.
"""

from __future__ import annotations

import functools
import string as _string
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import (check_bool, check_int, check_number, check_positive_int, check_range, check_seed,
                      describe)

__all__ = [
    "Batch", "Task",
    "adding_problem", "adding_problem_le2015", "ADDING_PROBLEM_TOLERANCE", "adding_problem_solved",
    "temporal_order", "TEMPORAL_ORDER_SYMBOLS", "TEMPORAL_ORDER_CLASSES",
    "REBER_SYMBOLS", "reber_strings", "embedded_reber_strings", "is_reber", "is_embedded_reber",
    "one_hot", "embedded_reber_next_symbols", "embedded_reber",
    "lzw_complexity", "lzw_string", "memorisation",
    "noisy_sines",
    "COUNTING_LANGUAGES", "COUNTING_START", "COUNTING_END", "counting_symbols", "counting_string",
    "is_counting_string", "counting_batch", "counting", "strings_predicted",
    "adding_problem_task", "adding_problem_le2015_task", "temporal_order_task",
    "embedded_reber_task", "counting_task", "memorisation_task", "noisy_sines_task",
]


class Batch(NamedTuple):
    """One batch of a task: ``inputs``, ``targets`` and, where sequences differ in length,
    a boolean ``mask`` with the layout of the per-step targets (True on real steps)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None


# --------------------------------------------------------------------------- checks

def _generator(seed) -> np.random.Generator:
    """The random stream for ``seed``: an int seeds a new one, a Generator is used as is."""
    seed = check_seed("seed", seed, generator=True)
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _time_major(array: np.ndarray, batch_first: bool, dtype=torch.float32) -> torch.Tensor:
    """Turn a batch-major numpy array (N, T, ...) into a tensor in the requested layout."""
    tensor = torch.as_tensor(array, dtype=dtype)
    return tensor if batch_first else tensor.transpose(0, 1).contiguous()


# --------------------------------------------------------------------------- adding problem

ADDING_PROBLEM_TOLERANCE = 0.04
"""Hochreiter & Schmidhuber (1997) count a sequence of the adding problem as processed
correctly when the absolute error of the prediction at its end is below 0.04."""


def adding_problem(batch_size: int, length: int, *, seed, vary_length: bool = True,
                   batch_first: bool = False) -> Batch:
    """The adding problem of Hochreiter & Schmidhuber (1997), experiment 4.

    Every step carries a pair (value, marker). Values are uniform in [-1, 1]. Exactly two
    steps are marked with 1: the first is drawn uniformly among the first 10 steps (its
    value is X1), the second uniformly among the other steps of the first ``length // 2``
    (their number is the paper's "first T/2 - 1 still unmarked pairs"; its value is X2).
    Every other marker is 0, except at the first and the last step, which carry -1 when
    they are not marked. The target, given only at the end, is ``0.5 + (X1 + X2) / 4``,
    the sum rescaled to [0, 1]; :func:`adding_problem_solved` applies the paper's criterion
    (absolute error below :data:`ADDING_PROBLEM_TOLERANCE`).

    Our readings of the paper, stated so they can be checked:

    - ``length`` is the paper's minimal length T. With ``vary_length=True`` the sequences
      are T' steps long, T' uniform in [T, T + T // 10] as in the paper, but one T' is drawn
      per batch (the paper trained on one sequence at a time), so the batch stays a tensor.
      The second marker is drawn among the first ``T // 2`` steps of the minimal T.
    - The paper sets X1 to 0 "in the rare case where the first pair gets marked". We set
      the value of the first step to 0 whenever it is marked, by either draw; its marker
      is then 1.
    - ``length`` must be at least 20, so that the first 10 steps lie in the first half.

    Returns a :class:`Batch` with ``inputs`` (T', N, 2), value then marker, float32, and
    ``targets`` (N, 1), float32.

    Source: ``hochreiter1997long`` (references.bib).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    length = check_int("length", length, 20)
    check_bool("vary_length", vary_length)
    check_bool("batch_first", batch_first)
    rng = _generator(seed)
    steps = int(rng.integers(length, length + length // 10 + 1)) if vary_length else length
    rows = np.arange(batch_size)

    values = rng.uniform(-1.0, 1.0, size=(batch_size, steps)).astype(np.float32)
    first = rng.integers(0, 10, size=batch_size)
    second = rng.integers(0, length // 2 - 1, size=batch_size)
    second += second >= first  # skip the step already marked: uniform over the others
    markers = np.zeros((batch_size, steps), dtype=np.float32)
    markers[:, [0, -1]] = -1.0
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    values[markers[:, 0] == 1.0, 0] = 0.0

    total = values[rows, first].astype(np.float64) + values[rows, second]
    targets = torch.as_tensor(0.5 + total / 4.0, dtype=torch.float32).unsqueeze(1)
    inputs = _time_major(np.stack([values, markers], axis=-1), batch_first)
    return Batch(inputs, targets)


def adding_problem_solved(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Which sequences of the adding problem are processed correctly, after Hochreiter &
    Schmidhuber (1997): ``|prediction - target| < ADDING_PROBLEM_TOLERANCE``.

    ``predictions`` and ``targets`` have the same shape, (N, 1) or (N,); returns a bool
    tensor of shape (N,). Its mean is the fraction solved.
    """
    for name, value in (("predictions", predictions), ("targets", targets)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {describe(value)}")
    if predictions.shape != targets.shape or predictions.ndim not in (1, 2):
        raise ValueError("predictions and targets must have the same shape, (N, 1) or (N,), got "
                         f"{tuple(predictions.shape)} and {tuple(targets.shape)}")
    error = (predictions.detach() - targets).abs().reshape(len(targets), -1)
    return (error < ADDING_PROBLEM_TOLERANCE).all(dim=1)


def adding_problem_le2015(batch_size: int, length: int, *, seed, batch_first: bool = False) -> Batch:
    """The adding problem as posed by Le, Jaitly & Hinton (2015), a later variant.

    Every step carries a pair (value, marker); values are uniform in [0, 1]; the marker is
    1 at exactly two steps and 0 elsewhere (no -1 at the ends); the target is the plain sum
    of the two marked values. The paper places no further constraint on where the two
    markers fall, so we draw two distinct steps uniformly at random among all ``length``
    steps (some implementations instead put one marker in each half: not this one).
    Sequences all have ``length`` steps.

    Returns a :class:`Batch` with ``inputs`` (T, N, 2) float32 and ``targets`` (N, 1) float32.

    Source: ``le2015simple`` (references.bib).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    length = check_int("length", length, 2)
    check_bool("batch_first", batch_first)
    rng = _generator(seed)
    rows = np.arange(batch_size)

    values = rng.uniform(0.0, 1.0, size=(batch_size, length)).astype(np.float32)
    first = rng.integers(0, length, size=batch_size)
    second = rng.integers(0, length - 1, size=batch_size)
    second += second >= first
    markers = np.zeros((batch_size, length), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0

    total = values[rows, first].astype(np.float64) + values[rows, second]
    targets = torch.as_tensor(total, dtype=torch.float32).unsqueeze(1)
    return Batch(_time_major(np.stack([values, markers], axis=-1), batch_first), targets)


# --------------------------------------------------------------------------- temporal order

TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "B", "E", "X", "Y")
"""The alphabet of the temporal-order task, in the order of the one-hot input units."""

TEMPORAL_ORDER_CLASSES = ("Q", "R", "S", "U")
"""The classes of the temporal-order task: X,X -> Q; X,Y -> R; Y,X -> S; Y,Y -> U."""


def temporal_order(batch_size: int, *, seed, length: tuple[int, int] = (100, 110),
                   first_position: tuple[int, int] = (10, 20),
                   second_position: tuple[int, int] = (50, 60), batch_first: bool = False) -> Batch:
    """The temporal-order task of Hochreiter & Schmidhuber (1997), experiment 6a.

    A sequence starts with ``E``, ends with the trigger ``B``, and is otherwise made of
    distractors drawn uniformly from {a, b, c, d}, except at two positions t1 and t2 that
    hold ``X`` or ``Y`` (each uniformly). The class, to be given at the end, is the order of
    the two: X,X -> Q (0), X,Y -> R (1), Y,X -> S (2), Y,Y -> U (3). Symbols are one-hot
    over :data:`TEMPORAL_ORDER_SYMBOLS`.

    The defaults are the paper's: length uniform in [100, 110], t1 in [10, 20], t2 in
    [50, 60], all bounds inclusive and positions counted from 1 (``E`` is at position 1).
    As in :func:`adding_problem`, one length is drawn per batch. The paper trained with
    squared error on 4 output units; here the target is a class index, meant for
    cross-entropy.

    Returns a :class:`Batch` with ``inputs`` (T, N, 8) float32 and ``targets`` (N,) int64.

    Source: ``hochreiter1997long`` (references.bib).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    length, first_position, second_position = (
        check_range(name, value) for name, value in
        (("length", length), ("first_position", first_position), ("second_position", second_position)))
    if not (1 < first_position[0] and first_position[1] < second_position[0]
            and second_position[1] < length[0]):
        raise ValueError(
            "positions must satisfy 1 < first_position < second_position < length (E comes first, "
            f"B last), got first_position={first_position}, second_position={second_position}, "
            f"length={length}")
    check_bool("batch_first", batch_first)
    rng = _generator(seed)
    steps = int(rng.integers(length[0], length[1] + 1))
    rows = np.arange(batch_size)
    index = {symbol: i for i, symbol in enumerate(TEMPORAL_ORDER_SYMBOLS)}

    symbols = rng.integers(0, 4, size=(batch_size, steps))  # the distractors a, b, c, d
    symbols[:, 0], symbols[:, -1] = index["E"], index["B"]
    t1 = rng.integers(first_position[0], first_position[1] + 1, size=batch_size) - 1
    t2 = rng.integers(second_position[0], second_position[1] + 1, size=batch_size) - 1
    is_y = rng.integers(0, 2, size=(batch_size, 2))  # 0: X, 1: Y
    symbols[rows, t1] = index["X"] + is_y[:, 0]
    symbols[rows, t2] = index["X"] + is_y[:, 1]

    inputs = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype=np.float32)[symbols]
    targets = torch.as_tensor(2 * is_y[:, 0] + is_y[:, 1], dtype=torch.int64)
    return Batch(_time_major(inputs, batch_first), targets)


# --------------------------------------------------------------------------- Reber grammars

REBER_SYMBOLS = "BTSXPVE"
"""The seven symbols of the Reber grammar, in the order of the one-hot units."""

# Reber's grammar as a finite automaton, state -> {symbol: next state}. States 1-5 are the
# nodes of the usual drawing; 0 is before the initial B, 6 after the final S or V, 7 after E.
_REBER = {
    0: {"B": 1},
    1: {"T": 2, "P": 3},
    2: {"S": 2, "X": 4},
    3: {"T": 3, "V": 5},
    4: {"X": 3, "S": 6},
    5: {"P": 4, "V": 6},
    6: {"E": 7},
    7: {},
}


def _reber_successors(state):
    return _REBER[state]


def _embedded_reber_successors(state):
    """The embedded grammar: B, then T or P, then a whole Reber string, then the same
    T or P again, then E. A state is (stage, branch, state of the inner Reber string)."""
    stage, branch, inner = state
    if stage == "start":
        return {"B": ("branch", None, None)}
    if stage == "branch":
        return {symbol: ("inner", symbol, 0) for symbol in "TP"}
    if stage == "inner" and inner == 7:
        return {branch: ("close", branch, None)}
    if stage == "inner":
        return {symbol: ("inner", branch, nxt) for symbol, nxt in _REBER[inner].items()}
    if stage == "close":
        return {"E": ("done", None, None)}
    return {}


_EMBEDDED_START = ("start", None, None)


def _walk(successors, state, rng: np.random.Generator) -> str:
    """A random string of the grammar: from ``state``, take each allowed transition with
    equal probability until none is left."""
    symbols = []
    while options := successors(state):
        symbol = list(options)[rng.integers(len(options))]
        symbols.append(symbol)
        state = options[symbol]
    return "".join(symbols)


def _states(successors, state, string: str):
    """The states visited while reading ``string`` (one after each symbol), or None as soon
    as a symbol is not allowed."""
    visited = []
    for symbol in string:
        state = successors(state).get(symbol)
        if state is None:
            return None
        visited.append(state)
    return visited


def _accepts(successors, state, string) -> bool:
    if not isinstance(string, str):
        raise TypeError(f"string must be a str, got {describe(string)}")
    visited = _states(successors, state, string)
    return bool(visited) and not successors(visited[-1])


def reber_strings(count: int, *, seed) -> list[str]:
    """``count`` random strings of the Reber grammar (Reber, 1967), e.g. ``"BTXSE"``; at each
    node both outgoing transitions are taken with probability 1/2. Source: ``reber1967implicit``."""
    count = check_positive_int("count", count)
    rng = _generator(seed)
    return [_walk(_reber_successors, 0, rng) for _ in range(count)]


def embedded_reber_strings(count: int, *, seed) -> list[str]:
    """``count`` random strings of the embedded Reber grammar (Cleeremans et al., 1989), used
    by Hochreiter & Schmidhuber (1997, experiment 1): ``B``, then ``T`` or ``P`` (each with
    probability 1/2), then a Reber string, then the same ``T`` or ``P`` again, then ``E``,
    e.g. ``"BTBPVVETE"``. Predicting the second-to-last symbol needs the second one, which
    lies a whole Reber string earlier. Sources: ``cleeremans1989finite``, ``hochreiter1997long``."""
    count = check_positive_int("count", count)
    rng = _generator(seed)
    return [_walk(_embedded_reber_successors, _EMBEDDED_START, rng) for _ in range(count)]


def is_reber(string: str) -> bool:
    """Whether ``string`` is a complete string of the Reber grammar."""
    return _accepts(_reber_successors, 0, string)


def is_embedded_reber(string: str) -> bool:
    """Whether ``string`` is a complete string of the embedded Reber grammar."""
    return _accepts(_embedded_reber_successors, _EMBEDDED_START, string)


def one_hot(strings, alphabet: str = REBER_SYMBOLS, *, batch_first: bool = False) -> torch.Tensor:
    """One-hot codes of a list of strings, zero-padded at the end to the longest one.

    Returns a float32 tensor (T, N, A), T the longest length and A ``len(alphabet)``, or
    (N, T, A) with ``batch_first=True``; unit ``k`` stands for ``alphabet[k]``.
    """
    strings = _check_strings(strings)
    _check_alphabet(alphabet)
    check_bool("batch_first", batch_first)
    index = {symbol: k for k, symbol in enumerate(alphabet)}
    codes = np.zeros((len(strings), max(map(len, strings)), len(alphabet)), dtype=np.float32)
    for n, text in enumerate(strings):
        for t, symbol in enumerate(text):
            if symbol not in index:
                raise ValueError(f"strings[{n}] holds {symbol!r}, which is not in alphabet {alphabet!r}")
            codes[n, t, index[symbol]] = 1.0
    return _time_major(codes, batch_first)


def _check_alphabet(alphabet) -> str:
    if not isinstance(alphabet, str):
        raise TypeError(f"alphabet must be a str, got {describe(alphabet)}")
    if not alphabet or len(set(alphabet)) != len(alphabet):
        raise ValueError(f"alphabet must be a non-empty str of distinct symbols, got {alphabet!r}")
    return alphabet


def _check_strings(strings) -> list[str]:
    if isinstance(strings, str) or not isinstance(strings, (list, tuple)):
        raise TypeError(f"strings must be a list of str, got {describe(strings)}")
    if not strings or not all(isinstance(s, str) and s for s in strings):
        raise ValueError(f"strings must be a non-empty list of non-empty str, got {describe(strings)}")
    return list(strings)


def embedded_reber_next_symbols(strings, *, batch_first: bool = False) -> torch.Tensor:
    """The symbols the embedded Reber grammar allows next, after every prefix.

    Entry ``[t, n, k]`` is 1 when ``REBER_SYMBOLS[k]`` may follow ``strings[n][:t + 1]``. One or
    two symbols are allowed after each prefix, none after the final ``E`` and none on the
    padding. Returns a float32 tensor (T, N, 7), or (N, T, 7) with ``batch_first=True``.
    Raises ValueError if a string leaves the grammar.
    """
    strings = _check_strings(strings)
    check_bool("batch_first", batch_first)
    allowed = np.zeros((len(strings), max(map(len, strings)), len(REBER_SYMBOLS)), dtype=np.float32)
    for n, text in enumerate(strings):
        visited = _states(_embedded_reber_successors, _EMBEDDED_START, text)
        if visited is None:
            raise ValueError(f"strings[{n}] = {text!r} is not a prefix of an embedded Reber string")
        for t, state in enumerate(visited):
            for symbol in _embedded_reber_successors(state):
                allowed[n, t, REBER_SYMBOLS.index(symbol)] = 1.0
    return _time_major(allowed, batch_first)


def embedded_reber(batch_size: int, *, seed, batch_first: bool = False) -> Batch:
    """Next-symbol prediction on the embedded Reber grammar, as in Hochreiter & Schmidhuber
    (1997, experiment 1): read a string one symbol at a time and, at every step, predict
    the set of symbols the grammar allows next.

    ``inputs`` are the one-hot codes of each string without its final ``E`` (nothing
    follows it), (T, N, 7), zero-padded to the longest string in the batch. ``targets``
    (T, N, 7) mark the allowed next symbols (:func:`embedded_reber_next_symbols`), and
    ``mask`` (T, N) is True on the real steps. The step that needs long memory is the one
    reading the inner string's ``E``: only ``T`` or ``P``, whichever came second, may follow.

    Sources: ``cleeremans1989finite``, ``hochreiter1997long`` (references.bib).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    strings = embedded_reber_strings(batch_size, seed=seed)
    prefixes = [text[:-1] for text in strings]
    lengths = torch.tensor([len(p) for p in prefixes])
    mask = torch.arange(int(lengths.max())).unsqueeze(1) < lengths  # (T, N)
    return Batch(one_hot(prefixes, batch_first=batch_first),
                 embedded_reber_next_symbols(prefixes, batch_first=batch_first),
                 mask.T.contiguous() if batch_first else mask)


# --------------------------------------------------------------------------- counting languages

COUNTING_LANGUAGES = {"anbn": "ab", "anbncn": "abc"}
"""The counting languages by name, each with its letters: a^n b^n and a^n b^n c^n."""

COUNTING_START, COUNTING_END = "S", "T"
"""The start symbol read before each string and the end symbol predicted after it
(Gers and Schmidhuber 2001 mark both ends of their strings the same way)."""


def _check_language(language) -> str:
    if language not in COUNTING_LANGUAGES:
        raise ValueError(f"language must be one of {sorted(COUNTING_LANGUAGES)}, got {describe(language)}")
    return COUNTING_LANGUAGES[language]


def counting_symbols(language: str) -> tuple[str, str]:
    """(input alphabet, output alphabet) of a counting language: the network reads
    ``S`` and the letters, and predicts the letters and ``T``; e.g. ``("Sab", "abT")``."""
    letters = _check_language(language)
    return COUNTING_START + letters, letters + COUNTING_END


def counting_string(language: str, n: int) -> str:
    """The string of ``language`` with count ``n``: ``"aaabbb"`` for ("anbn", 3),
    ``"aabbcc"`` for ("anbncn", 2)."""
    letters = _check_language(language)
    n = check_positive_int("n", n)
    return "".join(letter * n for letter in letters)


def is_counting_string(language: str, string: str) -> bool:
    """Whether ``string`` is a^n b^n (or a^n b^n c^n) for some n >= 1."""
    letters = _check_language(language)
    if not isinstance(string, str):
        raise TypeError(f"string must be a str, got {describe(string)}")
    n, remainder = divmod(len(string), len(letters))
    return n >= 1 and remainder == 0 and string == "".join(letter * n for letter in letters)


def _counting_allowed(letters: str, n: int) -> list[str]:
    """The symbols that may follow each prefix S, S x1, ..., S x1 ... xL of the string
    x1 ... xL of count ``n``, each as a string of allowed symbols (L + 1 of them).

    After S only ``a`` may come (n >= 1). While a's are read the count is open, so after
    a^k (k = 1 .. n) both ``a`` and ``b`` may follow. From the first ``b`` on n is known
    and every symbol is determined: n - 1 more b's, then (a^n b^n c^n) a ``c`` and n - 1
    more c's, then the end T."""
    allowed = [letters[0]] + [letters[:2]] * n
    for k in range(1, len(letters)):
        following = letters[k + 1] if k + 1 < len(letters) else COUNTING_END
        allowed += [letters[k]] * (n - 1) + [following]
    return allowed


def counting_batch(language: str, counts, *, batch_first: bool = False) -> Batch:
    """Next-symbol prediction on the strings of ``language`` with the given counts n.

    Sequence k reads ``S`` followed by the string of count ``counts[k]``, one-hot over the
    input alphabet of :func:`counting_symbols`; at every step the target marks the symbols
    that may come next, over the output alphabet (after the last letter: only ``T``). A network
    that predicts exactly the allowed set at every step knows where the a's end only by
    counting them: it must predict the last b (or c) and the end T at the right step.
    Sequences are zero-padded to the longest; ``mask`` is True on real steps.

    Returns a :class:`Batch`: ``inputs`` (T, N, 3 or 4) float32, ``targets`` (T, N, 3 or 4)
    float32, ``mask`` (T, N) bool; T = len(letters) * max(counts) + 1; batch-first with
    ``batch_first=True``.

    Sources: Gers and Schmidhuber (2001) (``gers2001lstm``), who posed the task this way
    (predict the set of possible next symbols); Weiss, Goldberg and Yahav (2018)
    (``weiss2018practical``), who compared the LSTM and the GRU on it.
    """
    letters = _check_language(language)
    if isinstance(counts, (int, np.integer)) or not isinstance(counts, (list, tuple, range, np.ndarray)):
        raise TypeError(f"counts must be a list of ints (one n per sequence), got {describe(counts)}")
    counts = [check_positive_int(f"counts[{k}]", n) for k, n in enumerate(counts)]
    if not counts:
        raise ValueError("counts must hold at least one n, got an empty list")
    check_bool("batch_first", batch_first)
    inputs_alphabet, outputs_alphabet = counting_symbols(language)
    steps = len(letters) * max(counts) + 1
    inputs = np.zeros((len(counts), steps, len(inputs_alphabet)), dtype=np.float32)
    targets = np.zeros((len(counts), steps, len(outputs_alphabet)), dtype=np.float32)
    mask = np.zeros((len(counts), steps), dtype=bool)
    for k, n in enumerate(counts):
        read = COUNTING_START + "".join(letter * n for letter in letters)
        for t, (symbol, allowed) in enumerate(zip(read, _counting_allowed(letters, n))):
            inputs[k, t, inputs_alphabet.index(symbol)] = 1.0
            targets[k, t, [outputs_alphabet.index(a) for a in allowed]] = 1.0
        mask[k, :len(read)] = True
    return Batch(_time_major(inputs, batch_first), _time_major(targets, batch_first),
                 _time_major(mask, batch_first, dtype=torch.bool))


def counting(batch_size: int, language: str, *, counts: tuple[int, int] = (1, 10), seed,
             batch_first: bool = False) -> Batch:
    """A batch of :func:`counting_batch` with each n drawn uniformly from ``counts``
    (``(low, high)``, both inclusive): the training distribution. Weiss et al. (2018)
    trained on every n below 100 (a^n b^n) and 50 (a^n b^n c^n); the defaults here are
    smaller, so that a page can afford them; test on larger n with
    :func:`counting_batch`."""
    batch_size = check_positive_int("batch_size", batch_size)
    low, high = check_range("counts", counts)
    rng = _generator(seed)
    return counting_batch(language, rng.integers(low, high + 1, size=batch_size).tolist(),
                          batch_first=batch_first)


# --------------------------------------------------------------------------- LZW complexity

def _shortest_period(text: str) -> str:
    """The shortest ``u`` with ``text == u * k`` for a whole number ``k``."""
    n = len(text)
    for period in range(1, n // 2 + 1):
        if n % period == 0 and text[:period] * (n // period) == text:
            return text[:period]
    return text


def lzw_complexity(string: str) -> int:
    """The LZW complexity of a string, as used by Cahuantzi, Chen & Güttel (2021).

    Definition. First reduce the string to its shortest repeating unit (``"ABAB"`` becomes
    ``"AB"``): Cahuantzi et al. train on a seed string repeated many times, so a string and
    its repetitions count as equally complex (their published code does this reduction).
    Then parse the unit as the LZW compressor of Welch (1984) does: start from a dictionary
    holding every single symbol; repeatedly take the longest prefix of the rest of the
    string that is in the dictionary as the next phrase, and add that phrase extended by
    the symbol after it to the dictionary. The complexity is the number of phrases, i.e.
    the number of codes LZW writes.

    Example: ``"AABAB"`` parses as A | A | B | AB, complexity 4. A string over k distinct
    symbols has complexity at least k, since a symbol's first occurrence is a phrase.

    Sources: ``cahuantzi2021comparison``, ``welch1984technique`` (references.bib).
    """
    if not isinstance(string, str):
        raise TypeError(f"string must be a str, got {describe(string)}")
    if not string:
        raise ValueError("string must be non-empty, got ''")
    unit = _shortest_period(string)
    dictionary = set(unit)
    phrases, phrase = 0, ""
    for symbol in unit:
        if phrase + symbol in dictionary:
            phrase += symbol
        else:
            dictionary.add(phrase + symbol)
            phrases += 1
            phrase = symbol
    return phrases + 1  # the phrase still open at the end


def lzw_string(alphabet_size: int, complexity: int, *, seed) -> str:
    """A random string over the first ``alphabet_size`` capital letters whose
    :func:`lzw_complexity` is exactly ``complexity``, after Cahuantzi, Chen & Güttel (2021).

    As in their generator, we start from the whole alphabet in a random order (complexity
    ``alphabet_size``) and append uniformly random symbols until the complexity reaches the
    target. Appending a symbol adds at most one LZW phrase, so the target is met exactly,
    unless the string happens to be periodic at that moment (its unit is then simpler): in
    that case we start again from a new random order.

    Source: ``cahuantzi2021comparison`` (references.bib).
    """
    alphabet_size = check_int("alphabet_size", alphabet_size, 1)
    if alphabet_size > 26:
        raise ValueError(f"alphabet_size must be at most 26 (capital letters), got {alphabet_size}")
    complexity = check_positive_int("complexity", complexity)
    if complexity < alphabet_size or (alphabet_size == 1 and complexity > 1):
        raise ValueError(
            f"complexity must be at least alphabet_size = {alphabet_size} (every symbol appears), and 1 "
            f"for a one-symbol alphabet, got complexity={complexity}")
    rng = _generator(seed)
    letters = _string.ascii_uppercase[:alphabet_size]
    while True:
        text = "".join(rng.permutation(list(letters)))
        while (current := lzw_complexity(text)) < complexity:
            text += letters[rng.integers(alphabet_size)]
        if current == complexity:
            return text


def _memorisation_alphabet(string, alphabet) -> str:
    """Check ``string`` and return the alphabet of its one-hot code (default: its symbols, sorted)."""
    if not isinstance(string, str):
        raise TypeError(f"string must be a str, got {describe(string)}")
    if not string:
        raise ValueError("string must be non-empty, got ''")
    if alphabet is None:
        return "".join(sorted(set(string)))
    _check_alphabet(alphabet)
    if missing := set(string) - set(alphabet):
        raise ValueError(f"alphabet {alphabet!r} lacks the symbols {''.join(sorted(missing))!r} of string")
    return alphabet


def memorisation(batch_size: int, string: str, *, window: int, seed, alphabet: str | None = None,
                 batch_first: bool = False) -> Batch:
    """Windows of a symbol string repeated forever, each followed by the symbol to predict.

    After Cahuantzi, Chen & Güttel (2021), who train a network to memorise a seed string
    (see :func:`lzw_string`) repeated many times, predicting each symbol from the
    ``window`` symbols before it. Each sequence of the batch starts at a uniformly random
    offset of the infinite repetition ``string string string ...``.

    ``alphabet`` fixes the one-hot units (default: the sorted symbols of ``string``).
    Returns a :class:`Batch` with ``inputs`` (window, N, A) float32 and ``targets`` (N,) int64,
    the index in ``alphabet`` of the symbol that follows each window.

    Source: ``cahuantzi2021comparison`` (references.bib).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    alphabet = _memorisation_alphabet(string, alphabet)
    window = check_positive_int("window", window)
    check_bool("batch_first", batch_first)
    rng = _generator(seed)
    codes = np.array([alphabet.index(symbol) for symbol in string])
    positions = rng.integers(0, len(string), size=(batch_size, 1)) + np.arange(window + 1)
    symbols = codes[positions % len(string)]  # (N, window + 1)
    inputs = np.eye(len(alphabet), dtype=np.float32)[symbols[:, :-1]]
    return Batch(_time_major(inputs, batch_first), torch.as_tensor(symbols[:, -1], dtype=torch.int64))


# --------------------------------------------------------------------------- noisy sines

def noisy_sines(batch_size: int, length: int, *, seed, horizon: int = 1,
                frequencies=(0.05, 0.11), noise_std: float = 0.1, clean_targets: bool = False,
                batch_first: bool = False) -> Batch:
    """Noisy sums of sine waves, for predicting the value ``horizon`` steps ahead.

    Each sequence is the series ``x_t = s_t + noise_std * e_t`` for t = 0, 1, ..., with the
    clean signal ``s_t = mean_k sin(2 pi f_k t + phi_k)`` over the given ``frequencies`` f_k
    (in cycles per step, each in (0, 0.5)), a phase phi_k uniform in [0, 2 pi) drawn for
    every sequence and every k, and e_t standard Gaussian noise. ``inputs`` hold
    x_0 ... x_{T-1}; ``targets`` at step t hold x_{t + horizon}, the same noisy series
    shifted, or the clean s_{t + horizon} with ``clean_targets=True``. With noisy targets the
    best possible mean squared error is about ``noise_std ** 2``. A generic warm-up task,
    from no particular paper.

    Returns a :class:`Batch` with ``inputs`` and ``targets`` both (T, N, 1) float32.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    length = check_positive_int("length", length)
    horizon = check_positive_int("horizon", horizon)
    if isinstance(frequencies, (int, float)) or not isinstance(frequencies, (tuple, list)) or not frequencies:
        raise TypeError(f"frequencies must be a non-empty tuple of numbers, got {describe(frequencies)}")
    frequencies = np.array([check_number(f"frequencies[{k}]", f, 0.0, 0.5, open_low=True)
                            for k, f in enumerate(frequencies)])
    noise_std = check_number("noise_std", noise_std, 0.0)
    check_bool("clean_targets", clean_targets)
    check_bool("batch_first", batch_first)
    rng = _generator(seed)

    steps = np.arange(length + horizon)
    phases = rng.uniform(0.0, 2 * np.pi, size=(batch_size, len(frequencies), 1))
    clean = np.sin(2 * np.pi * frequencies[:, None] * steps + phases).mean(axis=1)  # (N, T + h)
    noisy = clean + noise_std * rng.standard_normal(clean.shape)
    target_series = clean if clean_targets else noisy
    inputs = _time_major(noisy[:, :length, None], batch_first)
    targets = _time_major(target_series[:, horizon:, None], batch_first)
    return Batch(inputs, targets)


# --------------------------------------------------------------------------- tasks for train()

@dataclass(frozen=True)
class Task:
    """A task for :func:`rnnlab.train`: how to draw a batch and how to score predictions.

    ``sample(batch_size, seed=...)`` returns a :class:`Batch`. ``loss(predictions, batch)``
    returns a scalar tensor to minimise; ``accuracy(predictions, batch)``, if the task has
    one, a number in [0, 1]. ``input_size`` and ``output_size`` size the model, and
    ``readout`` says what it must predict: ``"last"``, one output per sequence (from the
    last step), or ``"all"``, one output per step; see :class:`rnnlab.SequenceModel`.
    """

    name: str
    sample: Callable[..., Batch]
    loss: Callable[[torch.Tensor, Batch], torch.Tensor]
    accuracy: Callable[[torch.Tensor, Batch], torch.Tensor] | None = None
    input_size: int | None = None
    output_size: int | None = None
    readout: str = "last"

    def batch(self, batch_size: int, seed) -> Batch:
        """One batch of ``batch_size`` sequences drawn with ``seed``."""
        return self.sample(batch_size, seed=seed)


def _mean_squared_error(predictions, batch):
    return F.mse_loss(predictions, batch.targets)


def _cross_entropy(predictions, batch):
    return F.cross_entropy(predictions, batch.targets)


def _fraction_classified(predictions, batch):
    return (predictions.argmax(dim=-1) == batch.targets).float().mean()


def _fraction_adding_solved(predictions, batch):
    return adding_problem_solved(predictions, batch.targets).float().mean()


def _masked_binary_cross_entropy(predictions, batch):
    """Each output unit says whether its symbol may come next (a sigmoid of its logit)."""
    per_unit = F.binary_cross_entropy_with_logits(predictions, batch.targets, reduction="none")
    return per_unit[batch.mask].mean()


def strings_predicted(predictions: torch.Tensor, batch: Batch, *, batch_first: bool = False) -> torch.Tensor:
    """Which strings of a next-symbol task are predicted right: at every real step the
    units with a positive logit (a sigmoid above 1/2) are exactly the allowed next symbols.

    ``predictions`` are logits with the layout of ``batch.targets``, (T, N, K) or (N, T, K);
    returns a bool tensor (N,). Our criterion for the embedded Reber grammar and the
    counting languages; it asks for the whole set of allowed symbols, as Gers and
    Schmidhuber (2001) did, where Weiss et al. (2018) only checked that each symbol that
    came had probability above a threshold.
    """
    if not isinstance(predictions, torch.Tensor) or predictions.shape != batch.targets.shape:
        raise ValueError(f"predictions must be a tensor shaped like the targets {tuple(batch.targets.shape)}, "
                         f"got {describe(predictions)}")
    wrong = ((predictions > 0) != (batch.targets > 0.5)).any(dim=-1) & batch.mask
    return ~wrong.any(dim=1 if batch_first else 0)


def _fraction_strings_predicted(predictions, batch, *, batch_first):
    return strings_predicted(predictions, batch, batch_first=batch_first).float().mean()


def _make_task(name, generator, *, input_size, output_size, readout, loss, accuracy=None, **options) -> Task:
    """A :class:`Task` drawing from ``generator`` with ``options``; one batch is drawn at
    once so that bad options fail here, not in the middle of training."""
    task = Task(name, functools.partial(generator, **options), loss, accuracy, input_size, output_size, readout)
    task.batch(1, seed=0)
    return task


def adding_problem_task(length: int = 100, *, vary_length: bool = True, batch_first: bool = False) -> Task:
    """:func:`adding_problem` as a task: mean squared error, and as accuracy the fraction of
    sequences solved (:func:`adding_problem_solved`)."""
    return _make_task(f"adding problem, T={length}", adding_problem, input_size=2, output_size=1,
                      readout="last", loss=_mean_squared_error, accuracy=_fraction_adding_solved,
                      length=length, vary_length=vary_length, batch_first=batch_first)


def adding_problem_le2015_task(length: int = 100, *, batch_first: bool = False) -> Task:
    """:func:`adding_problem_le2015` as a task: mean squared error, as Le et al. report it."""
    return _make_task(f"adding problem (Le et al.), T={length}", adding_problem_le2015, input_size=2,
                      output_size=1, readout="last", loss=_mean_squared_error,
                      length=length, batch_first=batch_first)


def temporal_order_task(*, batch_first: bool = False, **positions) -> Task:
    """:func:`temporal_order` as a task: cross-entropy over the 4 classes, accuracy the
    fraction classified correctly. ``positions`` (``length``, ``first_position``,
    ``second_position``) are passed on."""
    return _make_task("temporal order", temporal_order, input_size=len(TEMPORAL_ORDER_SYMBOLS),
                      output_size=len(TEMPORAL_ORDER_CLASSES), readout="last", loss=_cross_entropy,
                      accuracy=_fraction_classified, batch_first=batch_first, **positions)


def embedded_reber_task(*, batch_first: bool = False) -> Task:
    """:func:`embedded_reber` as a task: per-symbol binary cross-entropy on the real steps,
    accuracy the fraction of strings whose allowed next symbols are all predicted."""
    return _make_task("embedded Reber grammar", embedded_reber, input_size=len(REBER_SYMBOLS),
                      output_size=len(REBER_SYMBOLS), readout="all", loss=_masked_binary_cross_entropy,
                      accuracy=functools.partial(_fraction_strings_predicted, batch_first=batch_first),
                      batch_first=batch_first)


def counting_task(language: str, *, counts: tuple[int, int] = (1, 10), batch_first: bool = False) -> Task:
    """:func:`counting` as a task: per-symbol binary cross-entropy on the real steps, accuracy
    the fraction of strings predicted right at every step (:func:`strings_predicted`)."""
    inputs_alphabet, outputs_alphabet = counting_symbols(language)
    return _make_task(f"{language}, n in {list(counts)}", counting, input_size=len(inputs_alphabet),
                      output_size=len(outputs_alphabet), readout="all", loss=_masked_binary_cross_entropy,
                      accuracy=functools.partial(_fraction_strings_predicted, batch_first=batch_first),
                      language=language, counts=counts, batch_first=batch_first)


def memorisation_task(string: str, *, window: int = 10, alphabet: str | None = None,
                      batch_first: bool = False) -> Task:
    """:func:`memorisation` of ``string`` as a task: cross-entropy, accuracy the fraction of
    next symbols predicted correctly."""
    alphabet = _memorisation_alphabet(string, alphabet)
    return _make_task(f"memorise {string!r}", memorisation, input_size=len(alphabet),
                      output_size=len(alphabet), readout="last", loss=_cross_entropy,
                      accuracy=_fraction_classified, string=string, window=window, alphabet=alphabet,
                      batch_first=batch_first)


def noisy_sines_task(length: int = 50, *, horizon: int = 1, frequencies=(0.05, 0.11),
                     noise_std: float = 0.1, clean_targets: bool = False, batch_first: bool = False) -> Task:
    """:func:`noisy_sines` as a task: predict at every step, mean squared error."""
    return _make_task(f"noisy sines, horizon {horizon}", noisy_sines, input_size=1, output_size=1,
                      readout="all", loss=_mean_squared_error, length=length, horizon=horizon,
                      frequencies=frequencies, noise_std=noise_std, clean_targets=clean_targets,
                      batch_first=batch_first)

"""The seeded inputs every check runs a student's function on.

A :class:`Case` names its sizes and seed so that a failure message can say on which
inputs an answer went wrong, and the same case gives the same arrays in the notebook,
in a grading process and in the tests. The cells' checks draw a :class:`Case`; the
checks of assignment char_lm a :class:`TextCase` (logits and a text) or a
:class:`SampleCase` (a :class:`KeyedTableLM` and a prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .calling import hidden_inputs


@dataclass(frozen=True)
class Case:
    """Sizes, seed, scale and dtype of one set of inputs.

    ``scale`` multiplies the weights: at 4 most units saturate and a naive
    ``1 / (1 + np.exp(-a))`` overflows, which correct code must survive.
    """

    seed: int
    batch: int
    input_size: int
    hidden_size: int
    steps: int = 1
    scale: float = 1.0
    dtype: str = "float64"

    def describe(self, sequence=False) -> str:
        """The case in words, for messages; ``sequence`` adds the number of steps T."""
        sizes = f"B = {self.batch}, I = {self.input_size}, H = {self.hidden_size}"
        if sequence:
            sizes += f", T = {self.steps}"
        extra = f", weights × {self.scale:g}" if self.scale != 1.0 else ""
        return f"{sizes}, {self.dtype}{extra} (seed {self.seed})"

    def draw(self, gates: int) -> dict:
        """The arrays of this case for a cell with ``gates`` stacked gates, as float64.

        Values are rounded to the case's dtype first, so references computed in float64
        from them are exact for the inputs a float32 answer receives.
        """
        rng = np.random.default_rng(self.seed)
        batch, inputs, hidden = self.batch, self.input_size, self.hidden_size
        rows = gates * hidden
        arrays = {
            "weight_ih": rng.normal(0.0, self.scale / np.sqrt(inputs), (rows, inputs)),
            "weight_hh": rng.normal(0.0, self.scale / np.sqrt(hidden), (rows, hidden)),
            "bias_ih": rng.normal(0.0, 0.5 * self.scale, rows),
            "bias_hh": rng.normal(0.0, 0.5 * self.scale, rows),
            "x": rng.normal(0.0, 1.0, (batch, inputs)),
            "h": rng.uniform(-0.9, 0.9, (batch, hidden)),
            "c": rng.normal(0.0, 1.0, (batch, hidden)),
            "xs": rng.normal(0.0, 1.0, (self.steps, batch, inputs)),
            "target": rng.uniform(-1.0, 1.0, (batch, hidden)),
        }
        return {name: value.astype(self.dtype).astype(np.float64) for name, value in arrays.items()}


# Sizes are chosen so that I ≠ H ≠ G·H in most cases (a transposed weight cannot slip
# through by luck), and one case is square (I = H, where an untransposed vanilla-RNN
# weight still runs and can be recognised by its values). The hidden cases
# (rnnlab.grading.checks.hidden) add a batch of one, float32 inputs and saturating weights.
VISIBLE = (
    Case(seed=11, batch=3, input_size=4, hidden_size=4, steps=5),
    Case(seed=12, batch=2, input_size=3, hidden_size=5, steps=4),
)


def cases(hidden: bool) -> tuple[Case, ...]:
    """The visible cases, followed by the hidden ones when grading the hidden tests.

    Hidden tests rerun the visible cases first so that a mistake is named on the inputs
    where it shows most clearly.
    """
    if not hidden:
        return VISIBLE
    return VISIBLE + hidden_inputs("CASES")


# --- assignment char_lm: bits per character, and sampling -------------------------------


@dataclass(frozen=True)
class TextCase:
    """Seeded logits (T, B, V) and the text (T, B) a model read while producing them.

    ``scale`` is the spread of the logits: at 40, ``exp`` of a logit overflows float32,
    so a softmax written as ``exp(l) / exp(l).sum()`` gives NaN where ``log_softmax`` is fine.
    """

    seed: int
    steps: int
    batch: int
    vocabulary: int
    scale: float = 2.0
    dtype: str = "float32"

    def describe(self) -> str:
        extra = f", logits × {self.scale:g}" if self.scale > 10 else ""
        return f"T = {self.steps}, B = {self.batch}, V = {self.vocabulary}, {self.dtype}{extra} (seed {self.seed})"

    def draw(self):
        """(logits, targets): float64 logits rounded to the case's dtype, int64 targets."""
        rng = np.random.default_rng(self.seed)
        logits = rng.normal(0.0, self.scale, (self.steps, self.batch, self.vocabulary))
        targets = rng.integers(0, self.vocabulary, (self.steps, self.batch))
        return logits.astype(self.dtype).astype(np.float64), targets.astype(np.int64)


class KeyedTableLM(torch.nn.Module):
    """A character model for the tests whose next-character probabilities are known exactly.

    Like a tune whose key signature holds to the end, its state is the first character it
    ever read (the "key", kept for good); its logits after reading ``x_t`` are
    ``table[key, x_t]``, a (V,) row of a fixed (V, V, V) table. It is called as the
    models of the chapter are: ``logits, state = model(x, state)`` with ``x`` of shape
    (T, B), int64, and ``state`` None at the start; ``logits`` is (T, B, V), float32.
    """

    def __init__(self, table):
        super().__init__()
        table = torch.as_tensor(table, dtype=torch.float32)
        if table.dim() != 3 or len({*table.shape}) != 1:
            raise ValueError(f"table must have shape (V, V, V), got {tuple(table.shape)}")
        self.register_buffer("table", table)

    @property
    def vocabulary_size(self) -> int:
        return self.table.shape[0]

    def forward(self, x, state=None):
        size = self.vocabulary_size
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"the model reads x as a torch tensor of character indices, got {type(x).__name__}")
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"the model reads x as integer character indices (int64), got {x.dtype}")
        if x.dim() != 2 or x.shape[0] < 1:
            raise ValueError(f"the model reads x of shape (T, B), time first (T ≥ 1); got shape {tuple(x.shape)}. "
                             "One character per sequence is x of shape (1, B): next_character.view(1, -1).")
        if int(x.min()) < 0 or int(x.max()) >= size:
            raise ValueError(f"character indices must lie in [0, {size}); got values from {int(x.min())} to {int(x.max())}")
        x = x.long()
        if state is None:
            key = x[0]
        elif isinstance(state, torch.Tensor) and state.shape == (x.shape[1],):
            key = state.long()
        else:
            shape = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"state must be None or the state this model returned, shape ({x.shape[1]},); got {shape}")
        logits = self.table[key.unsqueeze(0).expand_as(x), x]
        return logits, key.clone()


@dataclass(frozen=True)
class SampleCase:
    """A model, a prefix (P, B), a temperature, a generator seed and a number of steps."""

    seed: int
    prefix_length: int
    batch: int
    vocabulary: int
    temperature: float
    steps: int
    scale: float = 2.0

    def describe(self) -> str:
        return (f"prefix of shape ({self.prefix_length}, {self.batch}), V = {self.vocabulary}, "
                f"temperature {self.temperature:g}, steps = {self.steps} (seed {self.seed})")

    def draw(self):
        """(model, prefix): the table is float32, the prefix's first and last characters differ."""
        rng = np.random.default_rng(self.seed)
        size = self.vocabulary
        table = rng.normal(0.0, self.scale, (size, size, size)).astype(np.float32)
        prefix = rng.integers(0, size, (self.prefix_length, self.batch))
        if self.prefix_length > 1:  # so that feeding only the last character changes the key
            prefix[-1] = (prefix[0] + 1 + rng.integers(0, size - 1, self.batch)) % size
        return KeyedTableLM(table), torch.from_numpy(prefix.astype(np.int64))

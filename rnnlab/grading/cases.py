"""The seeded inputs every check runs a student's function on.

A :class:`Case` names its sizes and seed so that a failure message can say on which
inputs an answer went wrong, and the same case gives the same arrays in the notebook,
in a grading process and in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
# (rnnlab.grading.hidden) add a batch of one, float32 inputs and saturating weights.
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
    from .running import hidden_inputs

    return VISIBLE + hidden_inputs("CASES")

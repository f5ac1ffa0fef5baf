"""The inputs of the hidden tests, in one module that the students' hand-out leaves out.

A test cell's hidden region calls a check with ``hidden=True``; the check then reads its
extra inputs here (through :func:`rnnlab.grading.checks.calling.hidden_inputs`), and every
check's hidden part reads at least one (tests/test_release.py runs every hidden test
against the hand-out's package and expects each to refuse). The
instructor's copy of rnnlab has this file and grades with it; the package that
``make release`` gives students does not, so nobody runs the hidden tests before
handing in, and their inputs stay unknown.
"""

from __future__ import annotations

from .cases import Case, SampleCase, TextCase

# A batch of one, float32 inputs and saturating weights (see rnnlab.grading.checks.cases).
CASES = (
    Case(seed=21, batch=1, input_size=6, hidden_size=2, steps=7),
    Case(seed=22, batch=4, input_size=2, hidden_size=3, steps=3, dtype="float32"),
    Case(seed=23, batch=3, input_size=5, hidden_size=4, steps=6, scale=4.0),
)

# (input_size, hidden_size, num_layers) for rnn_parameter_count.
PARAMETER_COUNTS = ((1, 1, 1), (7, 3, 3), (10, 20, 4))

# (cell, input_size, output_size, budget) for hidden_size_for_budget.
BUDGETS = (("gru", 2, 1, 300), ("lstm", 2, 1, 10_000), ("gru", 30, 10, 5000), ("lstm", 1, 1, 40))

# The run that check_training_runs trains again, as (cell, index into SEEDS): same seed, same run.
REPEATED_RUN = ("gru", 0)

# Further accuracy thresholds for steps_to_solve (1.01: no run ever reaches it).
THRESHOLDS = (0.5, 0.3, 1.01)

# LSTMs for set_forget_gate_bias: bidirectional, and a negative value.
FORGET_BIAS_LSTMS = (
    dict(input_size=5, hidden_size=2, num_layers=2, bidirectional=True, value=1.5, seed=3),
    dict(input_size=4, hidden_size=5, num_layers=1, bidirectional=False, value=-0.5, seed=4),
)

# char_lm (rnnlab.grading.checks.language_model): bits per character and sampling.
BITS_HIDDEN = (
    TextCase(seed=41, steps=2, batch=1, vocabulary=4),                 # one prediction only
    TextCase(seed=42, steps=12, batch=5, vocabulary=11, scale=40.0),   # exp overflows float32
    TextCase(seed=43, steps=7, batch=4, vocabulary=3, dtype="float64"),
)
SAMPLE_HIDDEN = (
    SampleCase(seed=61, prefix_length=1, batch=30, vocabulary=4, temperature=1.0, steps=60),
    SampleCase(seed=62, prefix_length=6, batch=64, vocabulary=8, temperature=0.7, steps=30),
    SampleCase(seed=63, prefix_length=2, batch=40, vocabulary=5, temperature=0.05, steps=30, scale=5.0),
)

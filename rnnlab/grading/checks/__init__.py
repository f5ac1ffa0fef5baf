"""The checks that the exercises' test cells call, run in the student's kernel.

This package is the one import path for notebooks::

    from rnnlab.grading.checks import check_rnn_cell

Each ``check_<function>(answer, hidden=False)`` returns None and prints one line when the
answer is right, and otherwise raises :class:`~rnnlab.grading.checks.calling.CheckFailed`
whose message is all the student sees. The modules:

- :mod:`.recurrent`: the cells, the loops over time, BPTT and the parameter count
  (assignments rnn_forward, gru_cell, lstm_cell, bptt), built on ``Spec`` and ``run_check``;
- :mod:`.forget_bias`: ``set_forget_gate_bias`` (assignment lstm_cell);
- :mod:`.training`: assignment gru_vs_lstm; :mod:`.language_model`: assignment char_lm;
- :mod:`.mistakes`: the one catalogue of named mistakes and the wrong answers they compute;
  :mod:`.kinds`: mistakes found by kind when none of the catalogue matches;
- :mod:`.oracles` (``torch.nn`` and autograd), :mod:`.cases` (the seeded inputs),
  :mod:`.hidden` (the hidden tests' inputs, left out of the students' hand-out),
  :mod:`.calling` (running a student's function so that anything it does becomes a message).

Nothing here imports nbgrader or the grading command (``tests/test_layering.py``).
"""

from .forget_bias import check_set_forget_gate_bias
from .language_model import check_bits_per_char, check_sample
from .recurrent import (check_gru_cell, check_gru_forward, check_lstm_cell, check_lstm_forward, check_rnn_bptt_gradients,
                        check_rnn_bptt_norms, check_rnn_cell, check_rnn_forward, check_rnn_parameter_count)
from .training import check_hidden_size_for_budget, check_steps_to_solve, check_training_runs

__all__ = [
    "check_rnn_cell", "check_rnn_forward", "check_rnn_parameter_count",
    "check_gru_cell", "check_gru_forward",
    "check_lstm_cell", "check_lstm_forward", "check_set_forget_gate_bias",
    "check_rnn_bptt_norms", "check_rnn_bptt_gradients",
    "check_hidden_size_for_budget", "check_training_runs", "check_steps_to_solve",
    "check_bits_per_char", "check_sample",
]

"""Answers that call a library's implementation of the function they were asked to write.

The exercises ask students to write a recurrent cell, its loop over time, its gradient
or its size; ``rnnlab`` holds the reference implementation of each, and PyTorch its own.
An answer that returns ``rnnlab.gru_cell(...)`` or runs ``torch.nn.GRUCell`` gives the
right numbers without the work the exercise exists for. The outside check traces every
call of a student's function (:mod:`rnnlab.grading.command.recheck.tracing`); :func:`judge` turns what a
test's calls reached into the report's words. The test then scores 0 and the submission
is flagged, until the instructor decides: the evidence is in the report.

``WRITTEN_BY_STUDENTS`` lists the functions this applies to, across assignments;
functions that are meant to use the package (``train_cell`` builds ``rnnlab.GRU`` and
calls ``rnnlab.train``) or that act on a given module (``set_forget_gate_bias``) are not
in it. Each exercise tells students so where the task is set (solutions/<a>.md).
"""

from __future__ import annotations

# Functions students write whose library implementation they must not call: the cells
# and their loops over time (rnnlab's cells and modules, torch.nn's recurrent modules,
# torch's recurrent operators), backpropagation through time, and the parameter counts
# that the exercises ask to derive rather than to read off a built module.
WRITTEN_BY_STUDENTS = frozenset({
    "rnn_cell", "rnn_forward", "rnn_parameter_count",
    "rnn_bptt",
    "gru_cell", "gru_forward",
    "lstm_cell", "lstm_forward",
    "hidden_size_for_budget",
})

def judge(library: dict) -> str:
    """The report's words for the library implementations that calls of student functions
    reached (``{function: {evidence: times}}``, as the tracer reported them); "" when
    none of those functions is one students must write themselves."""
    parts = []
    for name, evidence in sorted(library.items()):
        if name in WRITTEN_BY_STUDENTS and evidence:
            said = "; ".join(f"{text} ({times} call{'s' if times > 1 else ''})" for text, times in evidence.items())
            parts.append(f"uses a library implementation of {name}: {said}")
    return " | ".join(parts)

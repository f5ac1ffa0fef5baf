"""Grading of the rnnlab exercises (nbgrader assignments in ``solutions/``), in two parts named
for where their code runs.

- :mod:`rnnlab.grading.checks` runs in the student's kernel: the notebooks' test cells
  import their checks from it. Each check runs the student's function on seeded inputs,
  compares it with ``torch.nn`` and, when they differ, recomputes the usual mistakes on
  the same inputs to say which one the answer matches. It never imports nbgrader.
- :mod:`rnnlab.grading.command` runs in the instructor's process: the hardened command
  ``python -m rnnlab.grading autograde|feedback`` and the nbgrader preprocessors of
  ``nbgrader_config.py``. It imports nothing of the checks.
- :mod:`rnnlab.grading.messages`: the lines of a check's message that the command's report
  reads (standard library only; both parts import it).

This file imports nothing, so ``import rnnlab.grading`` stays cheap: import the
submodule you need.
"""

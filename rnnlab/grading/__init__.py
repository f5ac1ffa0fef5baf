"""Grading helpers for the rnnlab exercises (nbgrader assignments in ``solutions/``).

The test cells of the notebooks call :mod:`rnnlab.grading.checks`: each check runs the
student's function on seeded inputs, compares it with ``torch.nn`` and, when they
differ, recomputes the usual mistakes (:mod:`rnnlab.grading.mistakes`) on the same
inputs to say which one the answer matches.

This file imports nothing, so ``import rnnlab.grading`` stays cheap: import the
submodule you need.
"""

"""Adversarial submissions for the grading command (tests/test_grading_adversarial.py).

:mod:`.notebooks` edits notebooks; :mod:`.cases` lists every submission with the outcome
the grading command must report for it.
"""

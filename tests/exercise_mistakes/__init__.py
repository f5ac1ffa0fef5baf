"""Built submissions for the grading workflow test (tests/test_exercises.py).

A :class:`Submission` is the released notebook answered with the solution, then edited:
``edits`` replaces fragments of the solution's cells (each fragment must occur exactly
once, so a change to the solution that breaks an edit fails loudly), ``sources``
replaces whole cells, ``blank`` leaves the release unanswered. ``fails`` lists every
autograded test cell that must score 0, each with a phrase its output and the feedback
must show (None: only the score is checked); every other autograded cell must keep full
marks. A correct answer in another style is a submission with edits and no ``fails``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Submission:
    student: str
    edits: dict = field(default_factory=dict)      # grade_id -> [(old, new), ...]
    sources: dict = field(default_factory=dict)    # grade_id -> whole new source
    fails: dict = field(default_factory=dict)      # test grade_id -> phrase or None
    blank: bool = False


def failing(phrase, *cells):
    """``fails`` for several test cells showing the same phrase."""
    return {cell: phrase for cell in cells}


def submissions():
    """Every assignment's submissions, keyed by assignment name: one module of this package
    per assignment, each with ``ASSIGNMENT`` and ``SUBMISSIONS``."""
    modules = (importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__))
    return {module.ASSIGNMENT: module.SUBMISSIONS for module in modules}

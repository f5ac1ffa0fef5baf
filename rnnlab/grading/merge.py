"""Writing one submission's outcome into the course: its gradebook rows and autograded folder.

Only the runner's main process calls this, one submission at a time, so the course's
SQLite gradebook has a single writer however many jobs run. The rows are those nbgrader's
``SaveAutoGrades`` writes (auto score, needs-manual-grade, auto comment, late penalty),
with the outcome's decisions: a flagged cell or submission is marked for manual grading
(and the notebook flagged in the formgrader); a submission that could not be graded
gets no autograde score at all, so nothing reads as a 0 that nobody gave.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning


def record(gradebook: Gradebook, assignment: str, outcome, notebooks, timestamp=None) -> None:
    """Store ``outcome`` (:class:`~rnnlab.grading.report.Outcome`) in ``gradebook``."""
    with warnings.catch_warnings():
        # nbgrader's own submission API trips this SQLAlchemy warning on every new student.
        warnings.simplefilter("ignore", SAWarning)
        _record(gradebook, assignment, outcome, notebooks, timestamp)


def _record(gradebook, assignment, outcome, notebooks, timestamp):
    gradebook.update_or_create_student(outcome.student)
    if timestamp is not None:
        gradebook.update_or_create_submission(assignment, outcome.student, timestamp=timestamp)
    else:
        gradebook.update_or_create_submission(assignment, outcome.student)
    for name in notebooks:
        notebook = gradebook.find_submission_notebook(name, assignment, outcome.student)
        cells = outcome.cells.get(name, {})
        for grade in notebook.grades:
            score, review = cells.get(grade.name, [None, True])
            grade.auto_score = score
            grade.needs_manual_grade = bool(review or score is None or grade.manual_score is not None)
        comments = outcome.comments.get(name, {})
        for comment in notebook.comments:
            comment.auto_comment = comments.get(comment.name)
        notebook.flagged = outcome.status != "graded"
        penalty = outcome.late_penalty.get(name)
        if penalty is not None:
            notebook.late_submission_penalty = penalty
    gradebook.db.commit()


def place_autograded(source, destination: Path) -> None:
    """Replace ``destination`` with the job's autograded folder (or just remove it when None)."""
    destination = Path(destination)
    if destination.exists():
        shutil.rmtree(destination)
    if source is not None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, destination)

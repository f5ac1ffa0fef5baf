"""Writing one submission's outcome into the course: its gradebook rows and autograded folder.

Only the runner's main process calls this, one submission at a time, so the course's
SQLite gradebook has a single writer however many jobs run. The rows are those nbgrader's
``SaveAutoGrades`` writes (auto score, needs-manual-grade, auto comment, late penalty),
with the outcome's decisions: a flagged cell or submission is marked for manual grading
(and the notebook flagged in the formgrader); a submission that could not be graded
gets no autograde score at all, so nothing reads as a 0 that nobody gave.

An instructor's decision holds: a score typed in the formgrader (a *manual score*) stays
the cell's score when the submission is graded again, and the cell is not reopened for
manual grading (stock ``nbgrader autograde`` reopens it). The outcome then says the
score is the instructor's. ``force=True`` (the command's ``--force``) clears manual
scores and grades everything afresh.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning

from .report import INSTRUCTOR, CellReport


def record(gradebook: Gradebook, assignment: str, outcome, notebooks, timestamp=None, force=False) -> None:
    """Store ``outcome`` (:class:`~rnnlab.grading.report.Outcome`) in ``gradebook``.

    Manual scores already there are kept (and ``outcome`` updated to show them) unless ``force``.
    """
    with warnings.catch_warnings():
        # nbgrader's own submission API trips this SQLAlchemy warning on every new student.
        warnings.simplefilter("ignore", SAWarning)
        _record(gradebook, assignment, outcome, notebooks, timestamp, force)


def _keep_instructor_scores(outcome, name, kept: dict, max_scores: dict) -> None:
    """Make ``outcome`` show the instructor's scores in ``kept`` (grade_id -> score) and total them."""
    if not kept:
        return
    reports = outcome.graded.setdefault(name, {})
    for grade_id, score in kept.items():
        reports.setdefault(grade_id, CellReport(max_score=max_scores[grade_id])).by = INSTRUCTOR
        if outcome.status == "failed":
            continue  # not graded this time: the report says so, and shows whose scores the gradebook keeps
        before = outcome.cells.setdefault(name, {}).get(grade_id, [None, True])[0]
        outcome.manual_points -= max_scores[grade_id] if before is None else 0.0
        outcome.cells[name][grade_id] = [score, False]
    if outcome.status != "failed":
        penalty = sum(p or 0.0 for p in outcome.late_penalty.values())
        total = sum(score or 0.0 for cells in outcome.cells.values() for score, _ in cells.values())
        outcome.score = max(total - penalty, 0.0)


def _record(gradebook, assignment, outcome, notebooks, timestamp, force):
    gradebook.update_or_create_student(outcome.student)
    if timestamp is not None:
        gradebook.update_or_create_submission(assignment, outcome.student, timestamp=timestamp)
    else:
        gradebook.update_or_create_submission(assignment, outcome.student)
    for name in notebooks:
        notebook = gradebook.find_submission_notebook(name, assignment, outcome.student)
        cells = outcome.cells.get(name, {})
        kept = {}
        for grade in notebook.grades:
            score, review = cells.get(grade.name, [None, True])
            grade.auto_score = score
            if force:
                grade.manual_score = None
            if grade.manual_score is not None:
                kept[grade.name] = float(grade.manual_score)
            grade.needs_manual_grade = grade.manual_score is None and bool(review or score is None)
        _keep_instructor_scores(outcome, name, kept, {g.name: float(g.max_score) for g in notebook.grades})
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

"""Feedback for students without the hidden tests: their score and the failed tests' messages.

``nbgrader generate_feedback`` renders the autograded notebook as it is, so the hidden
tests' source (and the lines of it that tracebacks quote) reach the student.
:class:`~.preprocessors.HideHiddenTests` removes the hidden-test region from every test cell, leaving a
one-line note, and reduces the error output of test cells to the message the check
wrote for students (which case failed, why, and the mistake it matches).
:class:`~.preprocessors.ReadableFeedback` makes those messages wrap at the page's width, on a phone too,
and gives figures a text alternative.
Scores come from the gradebook as usual, so a flagged submission shows the lower score
that stands.

``python -m rnnlab.grading feedback <assignment>`` runs nbgrader's generate_feedback
with these preprocessors (listing them in ``nbgrader_config.py`` under
``GenerateFeedback.preprocessors`` makes the plain nbgrader command do the same), prints
one line per student and warns about submissions still waiting for an instructor;
``--zip`` also collects the HTML files into one zip named by student id, for handing
feedback back through a learning-management system instead of nbgrader's exchange.
"""

from __future__ import annotations

import contextlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp
from nbgrader.preprocessors import GetGrades
from traitlets.config import Config

from .course import Course
from .preprocessors import HideHiddenTests, ReadableFeedback


def feedback_config() -> Config:
    """generate_feedback's preprocessors with :class:`HideHiddenTests` and :class:`ReadableFeedback`."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    config = Config()
    config.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor, ReadableFeedback]
    return config


def generate(course_root, assignment: str, students=None) -> int:
    """Run nbgrader's generate_feedback for ``assignment`` (all graded students, or ``students``)."""
    status = 0
    with contextlib.chdir(course_root):
        for student in students or ["*"]:
            app = GenerateFeedbackApp()
            app.initialize([assignment, "--student", student, "--force", "--log-level=WARN"])
            app.update_config(feedback_config())
            try:
                app.start()
            except SystemExit as exc:
                status = max(status, int(exc.code or 0))
    return status


# What `nbgrader collect` leaves beside a submission and `nbgrader release_feedback` needs.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass
class Handed:
    """One student's feedback: score as it stands, what still waits for an instructor, the files,
    and whether the submission came through nbgrader's exchange (so that feedback can go back that way)."""

    student: str
    score: float
    max_score: float
    waiting: list
    files: list
    exchange: bool = False


def handed(course_root, assignment: str, students=None) -> list[Handed]:
    """What the feedback of each submission of ``assignment`` says, read from the gradebook and feedback/."""
    course = Course(course_root)
    found = []
    with course.gradebook() as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            student = submission.student.id
            if students and student not in students:
                continue
            waiting = []
            for notebook in submission.notebooks:
                cells = [g.name for g in notebook.grades if g.needs_manual_grade]
                if notebook.flagged:
                    waiting.append(f"{notebook.name} flagged for review")
                if cells:
                    waiting.append(f"{notebook.name}: {', '.join(cells)} not graded by hand yet")
            folder = course.folder("feedback") / student / assignment
            files = sorted(folder.glob("*.html")) if folder.is_dir() else []
            submitted = course.folder("submitted") / student / assignment
            exchange = all((submitted / name).is_file() for name in EXCHANGE_FILES)
            found.append(Handed(student, submission.score, submission.max_score, waiting, files, exchange))
    return sorted(found, key=lambda h: h.student)


def summary(course_root, handed_back: list[Handed]) -> str:
    """One line per student (score, files) and a warning naming the submissions still waiting."""
    root = Path(course_root).resolve()
    width = max([len("student")] + [len(h.student) for h in handed_back])
    lines = []
    for h in handed_back:
        where = ", ".join(str(f.resolve().relative_to(root)) for f in h.files) or "no feedback (not graded)"
        mark = "  (waits for an instructor)" if h.waiting else ""
        lines.append(f"{h.student:<{width}}  {h.score:g} / {h.max_score:g}  {where}{mark}")
    waiting = [h for h in handed_back if h.waiting]
    if waiting:
        lines.append(f"WARNING: {len(waiting)} submission(s) still wait for an instructor; their feedback shows "
                     "the score as it stands now. Resolve them in the formgrader (Manual Grading), then run "
                     "feedback again:")
        lines += [f"  {h.student}: {'; '.join(h.waiting)}" for h in waiting]
    direct = [h.student for h in handed_back if h.files and not h.exchange]
    if direct:
        lines.append(f"note: {len(direct)} submission(s) did not come through nbgrader's exchange (no "
                     f"{' or '.join(EXCHANGE_FILES)} beside them): hand their feedback back with --zip; "
                     "nbgrader release_feedback (the formgrader's Release Feedback) cannot send it.")
    return "\n".join(lines)


def collect_zip(course_root, assignment: str, handed_back: list[Handed]) -> Path:
    """Write ``feedback/<assignment>-feedback.zip``: one HTML file per student, named by student id.

    ``<student>.html`` for a one-notebook assignment, ``<student>-<notebook>.html`` otherwise.
    """
    course = Course(course_root)
    target = course.folder("feedback") / f"{assignment}-feedback.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    notebooks = course.notebooks(assignment)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for h in handed_back:
            for file in h.files:
                name = f"{h.student}.html" if len(notebooks) == 1 else f"{h.student}-{file.stem}.html"
                archive.write(file, name)
    return target

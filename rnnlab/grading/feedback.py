"""Feedback for students without the hidden tests: their score and the failed tests' messages.

``nbgrader generate_feedback`` renders the autograded notebook as it is, so the hidden
tests' source (and the lines of it that tracebacks quote) reach the student.
:class:`HideHiddenTests` removes the hidden-test region from every test cell, leaving a
one-line note, and reduces the error output of test cells to its last line, the
message the check wrote for students (which case failed and why). Scores come from the
gradebook as usual, so a flagged submission shows the lower score that stands.

``python -m rnnlab.grading feedback <assignment>`` runs nbgrader's generate_feedback
with this preprocessor; listing it in ``nbgrader_config.py`` under
``GenerateFeedback.preprocessors`` makes the plain nbgrader command do the same.
"""

from __future__ import annotations

from nbgrader import utils
from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config

from .course import working_directory

NOTE = "# (hidden tests: not shown in the feedback)"


class HideHiddenTests(ClearHiddenTests):
    """Strip hidden tests from test cells, and tracebacks from their errors, for feedback."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        if self._remove_hidden_test_region(cell):
            cell.source = f"{cell.source.rstrip()}\n{NOTE}".lstrip()
        for output in cell.outputs:
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


def feedback_config() -> Config:
    """generate_feedback's preprocessors with :class:`HideHiddenTests` before the HTML export."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    config = Config()
    config.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
    return config


def generate(course_root, assignment: str, students=None) -> int:
    """Run nbgrader's generate_feedback for ``assignment`` (all graded students, or ``students``)."""
    status = 0
    with working_directory(course_root):
        for student in students or ["*"]:
            app = GenerateFeedbackApp()
            app.initialize([assignment, "--student", student, "--force"])
            app.update_config(feedback_config())
            try:
                app.start()
            except SystemExit as exc:
                status = max(status, int(exc.code or 0))
    return status

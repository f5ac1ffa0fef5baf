"""Students and instructors in a real browser: JupyterLab 4, Notebook 7 and nbgrader's formgrader.

Each journey copies the course (``nbgrader_config.py``, ``solutions/``, ``exercises/``)
into a temporary folder, starts the server there on a free port of 127.0.0.1 with a
token, and drives Debian's chromium through Playwright the way a person would: menus,
clicks, keys. Assertions read what the page shows; the gradebook is read after the
real nbgrader commands ran. Every wait is bounded, and servers, kernels and the browser
are stopped however a journey ends.

Screenshots of the key steps, the servers' logs and each journey's timing are written to
``test-artifacts/journeys/<journey>/`` for a person to look at.

The instructions in README.md follow these journeys: students run ``jupyter lab`` in the
repository root and open ``exercises/<assignment>/<assignment>.ipynb``; instructors run
``jupyter lab`` in the repository root and choose Nbgrader ▸ Formgrader.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from journeys import course as C
from journeys import notebook_ui as ui
from journeys.browser import browser_page
from journeys.servers import jupyter_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = C.ROOT / "test-artifacts" / "journeys"
STUDENT = "ada"
NOT_WRITTEN = "is not written yet: it raised NotImplementedError"


class Journey:
    """The folders of one journey and its clock (steps and their times go to timing.txt)."""

    def __init__(self, name: str, tmp_path: Path):
        self.artifacts = ARTIFACTS / name
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.course = C.copy_course(tmp_path / "course")
        self.home = tmp_path / "home"
        self.started = time.monotonic()
        self.steps: list[str] = []

    def step(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.started:7.1f} s  {what}")
        (self.artifacts / "timing.txt").write_text("\n".join(self.steps) + "\n")

    def server(self, kind: str):
        return jupyter_server(kind, self.course, self.home, self.artifacts / f"jupyter-{kind}.log")

    def browser(self, port: int):
        return browser_page(self.home / "chromium-profile", self.artifacts, port)


def release_code_cells(course: Path, assignment: str) -> list[dict]:
    """nbgrader metadata of each code cell of the released notebook, in page order."""
    release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    return [cell for cell in release.cells if cell.cell_type == "code"]


def page_cells_by_grade_id(page, course: Path, assignment: str) -> dict[str, ui.CodeCell]:
    """grade_id -> the code cell on the page; the page shows the release's code cells in order."""
    release = release_code_cells(course, assignment)
    shown = ui.code_cells(page)
    assert len(shown) == len(release), (
        f"the page shows {len(shown)} code cells, the released notebook has {len(release)}")
    return {cell.metadata["nbgrader"]["grade_id"]: on_page for cell, on_page in zip(release, shown)}


def test_student_in_jupyterlab_answers_gru_cell_and_earns_full_marks(tmp_path):
    assignment = "gru_cell"
    path = f"exercises/{assignment}/{assignment}.ipynb"
    journey = Journey("1-student-jupyterlab", tmp_path)
    source = journey.course / "solutions" / assignment / f"{assignment}.ipynb"
    answers = C.reference_answers(source)
    visible = C.visible_tests(source)
    assert visible, f"{source} has no visible test cell"

    with journey.server("lab") as server, journey.browser(server.port) as browser:
        page = browser.page
        journey.step("JupyterLab answers")
        ui.open_notebook(page, server, path)
        journey.step(f"{path} open, kernel idle")
        browser.shot("notebook-opened")

        # Unanswered: Run All stops at the first visible test, which says what is missing.
        ui.run_all(page, server, path)
        journey.step("Run All on the unanswered notebook finished")
        cells = page_cells_by_grade_id(page, journey.course, assignment)
        first_test = next(iter(visible))
        failing = cells[first_test]
        failing.locator.scroll_into_view_if_needed()
        browser.shot("unanswered-test-fails")
        assert failing.has_error, f"{first_test} shows no error on the unanswered notebook:\n{failing.output}"
        assert "AssertionError" in failing.output and NOT_WRITTEN in failing.output, (
            f"{first_test} on the unanswered notebook should end with the check's message "
            f"'... {NOT_WRITTEN} ...'; the page shows:\n{failing.output[-1500:]}")

        # Paste the reference answers through the editor, run everything again.
        for grade_id, answer in answers.items():
            ui.replace_source(page, cells[grade_id], answer)
        browser.shot("answers-pasted")
        ui.run_all(page, server, path)
        journey.step("Run All on the answered notebook finished")
        cells = page_cells_by_grade_id(page, journey.course, assignment)
        not_run = [g for g, cell in cells.items() if not cell.prompt.strip("[]:").isdigit()]
        errors = {g: cell.output[-800:] for g, cell in cells.items() if cell.has_error}
        assert not not_run and not errors, f"cells not run: {not_run}; cells with errors: {errors}"
        for grade_id in visible:
            assert cells[grade_id].output.startswith("OK:"), (
                f"visible test {grade_id} should print its OK line, the page shows: {cells[grade_id].output!r}")
        cells[first_test].locator.scroll_into_view_if_needed()
        browser.shot("answered-tests-pass")

        ui.save(page, server, path, lambda file: C.answer_cell_sources(file) == answers)
        journey.step("notebook saved with the pasted answers")
        browser.shot("saved")
        assert not browser.outside, f"the page sent requests beyond the server: {browser.outside}"

    # Grade what the student saved, with the real commands.
    C.submit(journey.course, assignment, STUDENT, journey.course / path)
    C.nbgrader(journey.course, "generate_assignment", assignment, "--force", home=journey.home)
    C.nbgrader(journey.course, "autograde", assignment, "--student", STUDENT, home=journey.home)
    journey.step("generate_assignment and autograde done")
    grades = C.gradebook_grades(journey.course, assignment, STUDENT)
    for grade_id, points in visible.items():
        grade = grades[grade_id]
        assert grade.max_score == points and grade.score == points, (
            f"visible test {grade_id}: the gradebook has {grade.score}/{grade.max_score}, expected {points}/{points}")
    short = {g: (grade.score, grade.max_score) for g, grade in grades.items() if grade.score != grade.max_score}
    assert not short, f"the reference answer lost points in the gradebook: {short}"

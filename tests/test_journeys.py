"""Students and instructors in a real browser: JupyterLab 4, Notebook 7 and nbgrader's formgrader.

Each journey copies the course (``nbgrader_config.py``, ``solutions/``, ``exercises/``)
into a temporary folder, starts the server there on a free port of 127.0.0.1 with a
token, and drives Debian's chromium through Playwright the way a person would: menus,
clicks, keys. Assertions read what the page shows; the gradebook is read after the
real nbgrader commands ran. Every wait is bounded, and servers, kernels and the browser
are stopped however a journey ends.

Screenshots of the key steps, the server's log and each journey's timing are written to
``test-artifacts/journeys/<journey>/`` for a person to look at.

README.md tells students and instructors what these journeys do: students run
``jupyter lab`` (or ``jupyter notebook``) in the repository root, double-click through
the file browser to ``exercises/<assignment>/<assignment>.ipynb`` and use Run ▸ Run All
Cells; instructors collect notebooks into ``submitted/<student>/<assignment>/``, run
``nbgrader generate_assignment`` and ``nbgrader autograde``, then run ``jupyter lab`` in
the repository root and choose Nbgrader ▸ Formgrader.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from journeys import course as C
from journeys import formgrader_ui as fg
from journeys import notebook_ui as ui
from journeys.browser import browser_page, chromium_path
from journeys.servers import jupyter_server, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = C.ROOT / "test-artifacts" / "journeys"
STUDENT = "ada"
NOT_WRITTEN = "is not written yet: it raised NotImplementedError"
GRADEBOOK_TIMEOUT = 60  # s for a score typed in the formgrader to reach the gradebook


class Journey:
    """One journey's course copy, folders, screenshots and clock (steps go to timing.txt)."""

    def __init__(self, name: str, tmp_path: Path):
        chromium_path()  # skip (fail in CI) before any server starts when there is no browser
        self.artifacts = ARTIFACTS / name
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.course = C.copy_course(tmp_path / "course")
        self.home = tmp_path / "home"
        self.started = time.monotonic()
        self.steps: list[str] = []

    def step(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.started:7.1f} s  {what}")
        (self.artifacts / "timing.txt").write_text("\n".join(self.steps) + "\n")

    def source(self, assignment: str) -> Path:
        return self.course / "solutions" / assignment / f"{assignment}.ipynb"

    def server(self, kind: str):
        return jupyter_server(kind, self.course, self.home, self.artifacts / f"jupyter-{kind}.log")

    def browser(self, port: int):
        return browser_page(self.home / "chromium-profile", self.artifacts, port)


# --- students ---------------------------------------------------------------------


def page_cells_by_grade_id(page, course: Path, assignment: str) -> dict[str, ui.CodeCell]:
    """grade_id -> the code cell on the page; the page shows the release's code cells in order."""
    release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    ids = [cell.metadata["nbgrader"]["grade_id"] for cell in release.cells if cell.cell_type == "code"]
    shown = ui.code_cells(page)
    assert len(shown) == len(ids), f"the page shows {len(shown)} code cells, the released notebook has {len(ids)}"
    return dict(zip(ids, shown))


def run_unanswered_and_read_the_failure(journey: Journey, browser, server, assignment: str) -> None:
    """Run All on the released notebook: the cells above the first visible test run cleanly,
    and that test fails with the check's message saying the function is not written yet."""
    path = f"exercises/{assignment}/{assignment}.ipynb"
    ui.open_notebook(browser, server, path)
    page = browser.page
    journey.step(f"{path} open, kernel idle")
    browser.shot("notebook-opened")
    ui.run_all(page, server, path)
    journey.step("Run All on the unanswered notebook finished")

    cells = page_cells_by_grade_id(page, journey.course, assignment)
    first_test = next(iter(C.visible_tests(journey.source(assignment))))
    for grade_id, cell in cells.items():
        if grade_id == first_test:
            break
        assert cell.prompt.strip("[]:").isdigit() and not cell.has_error, (
            f"cell {grade_id} should have run cleanly, the page shows {cell.prompt} {cell.output[-800:]!r}")
    failing = cells[first_test]
    failing.locator.scroll_into_view_if_needed()
    browser.shot("unanswered-test-fails")
    assert failing.has_error and "AssertionError" in failing.output and NOT_WRITTEN in failing.output, (
        f"{first_test} on the unanswered notebook should end with the check's message "
        f"'... {NOT_WRITTEN} ...'; the page shows:\n{failing.output[-1500:]}")


def paste_answers_and_see_tests_pass(journey: Journey, browser, server, assignment: str) -> dict[str, str]:
    """Paste the reference answer into each answer cell through the editor, Run All, and see
    every cell run without error and every visible test print its OK line. Returns the answers."""
    path = f"exercises/{assignment}/{assignment}.ipynb"
    page = browser.page
    answers = C.reference_answers(journey.source(assignment))
    cells = page_cells_by_grade_id(page, journey.course, assignment)
    for grade_id, answer in answers.items():
        ui.replace_source(page, cells[grade_id], answer)
    browser.shot("answers-pasted")
    ui.run_all(page, server, path)
    journey.step("Run All on the answered notebook finished")

    cells = page_cells_by_grade_id(page, journey.course, assignment)
    not_run = [g for g, cell in cells.items() if not cell.prompt.strip("[]:").isdigit()]
    errors = {g: cell.output[-800:] for g, cell in cells.items() if cell.has_error}
    assert not not_run and not errors, f"cells not run: {not_run}; cells with errors: {errors}"
    visible = C.visible_tests(journey.source(assignment))
    for grade_id in visible:
        assert cells[grade_id].output.startswith("OK:"), (
            f"visible test {grade_id} should print its OK line, the page shows: {cells[grade_id].output!r}")
    cells[next(iter(visible))].locator.scroll_into_view_if_needed()
    browser.shot("answered-tests-pass")
    return answers


def test_student_in_jupyterlab_answers_gru_cell_and_earns_full_marks(tmp_path):
    assignment = "gru_cell"
    path = f"exercises/{assignment}/{assignment}.ipynb"
    journey = Journey("1-student-jupyterlab", tmp_path)

    with journey.server("lab") as server, journey.browser(server.port) as browser:
        journey.step("JupyterLab answers")
        run_unanswered_and_read_the_failure(journey, browser, server, assignment)
        answers = paste_answers_and_see_tests_pass(journey, browser, server, assignment)
        ui.save(browser.page, server, path, lambda file: C.answer_cell_sources(file) == answers)
        browser.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached")
        journey.step("notebook saved with the pasted answers")
        browser.shot("saved")
        assert not browser.outside, f"the page sent requests beyond the server: {browser.outside}"
    journey.step("server stopped")

    # Grade what the student saved, with the real commands.
    C.submit(journey.course, assignment, STUDENT, journey.course / path)
    C.nbgrader(journey.course, "generate_assignment", assignment, "--force", home=journey.home)
    C.nbgrader(journey.course, "autograde", assignment, "--student", STUDENT, home=journey.home)
    journey.step("generate_assignment and autograde done")
    grades = C.gradebook_grades(journey.course, assignment, STUDENT)
    for grade_id, points in C.visible_tests(journey.source(assignment)).items():
        grade = grades[grade_id]
        assert grade.max_score == points and grade.score == points, (
            f"visible test {grade_id}: the gradebook has {grade.score}/{grade.max_score}, expected {points}/{points}")
    short = {g: (grade.score, grade.max_score) for g, grade in grades.items() if grade.score != grade.max_score}
    assert not short, f"the reference answer lost points in the gradebook: {short}"


def test_student_in_notebook7_opens_and_runs_gru_cell(tmp_path):
    assignment = "gru_cell"
    journey = Journey("2-student-notebook7", tmp_path)
    with journey.server("notebook") as server, journey.browser(server.port) as browser:
        journey.step("Notebook 7 answers")
        run_unanswered_and_read_the_failure(journey, browser, server, assignment)
        paste_answers_and_see_tests_pass(journey, browser, server, assignment)
        assert not browser.outside, f"the page sent requests beyond the server: {browser.outside}"
    journey.step("server stopped")


# --- instructors ------------------------------------------------------------------


def total(grades: dict[str, C.Grade]) -> tuple[float, float]:
    return sum(g.score for g in grades.values()), sum(g.max_score for g in grades.values())


def test_instructor_grades_a_written_answer_in_the_formgrader(tmp_path):
    assignment = "bptt"  # autograded tests and one written answer graded by hand
    journey = Journey("3-instructor-formgrader", tmp_path)
    written = C.manually_graded(journey.source(assignment))
    assert written, f"{assignment} has no written answer to grade by hand"
    cell, points = next(iter(written.items()))
    given = points - 1  # partial credit: neither the full marks nor the nothing a button gives

    # A student's submission, collected and autograded with the real commands.
    C.nbgrader(journey.course, "db", "student", "add", STUDENT, "--first-name=Ada", "--last-name=Lovelace",
               home=journey.home)
    C.submit(journey.course, assignment, STUDENT, C.answered_release(journey.course, assignment))
    C.nbgrader(journey.course, "generate_assignment", assignment, "--force", home=journey.home)
    C.nbgrader(journey.course, "autograde", assignment, "--student", STUDENT, home=journey.home)
    journey.step("submission autograded")
    before = C.gradebook_grades(journey.course, assignment, STUDENT)
    assert before[cell].manual_score is None and before[cell].score == 0

    with journey.server("lab") as server, journey.browser(server.port) as browser:
        page = browser.page
        journey.step("JupyterLab answers")
        frame = fg.open_formgrader(page, server)
        listed = [row["Name"] for row in fg.table(frame, assignment)]
        browser.shot("formgrader-assignments")
        journey.step("formgrader lists the assignments")
        assert sorted(listed) == C.assignments(journey.course), (
            f"Manage Assignments should list the assignments of solutions/ {C.assignments(journey.course)}, "
            f"the page lists {listed}")

        # The submission and its autograded score, as Manage Submissions shows them.
        row = next(row for row in fg.table(frame, assignment) if row["Name"] == assignment)
        assert row["# Submissions"] == "1", f"{assignment} should show 1 submission, the page shows {row}"
        fg.follow(frame, f"manage_submissions/{assignment}", "1")
        rows = fg.table(frame, STUDENT)
        browser.shot("formgrader-submission-autograded")
        (shown,) = [r for r in rows if r["Student ID"] == STUDENT]
        assert shown["Student Name"] == "Lovelace, Ada", shown
        assert shown["Status"] == "needs manual grading", shown
        assert fg.score(shown["Score"]) == total(before), (
            f"the page shows {shown['Score']}, the gradebook {total(before)}")

        # Manual Grading ▸ assignment ▸ notebook ▸ the submission: grade the written answer.
        fg.follow(frame, "gradebook", "Manual Grading")
        fg.follow(frame, f"gradebook/{assignment}", assignment)
        fg.follow(frame, f"gradebook/{assignment}/{assignment}", assignment)
        submission_link = frame.locator("#main-table a", has_text="Submission #1").first
        submission_link.wait_for()
        browser.shot("formgrader-manual-grading-list")
        submission_link.click()
        score_box = frame.locator(f"input#{cell}")
        score_box.wait_for()
        answer_start = C.reference_answers(journey.source(assignment))[cell].split()[:4]
        answer_box = frame.locator(".nbgrader_cell", has=score_box)
        assert " ".join(answer_start) in " ".join(answer_box.inner_text().split()), (
            f"the written answer should be shown next to its score box, the page shows {answer_box.inner_text()[:300]!r}")
        score_box.scroll_into_view_if_needed()
        browser.shot("formgrader-written-answer")
        score_box.fill(str(given))
        score_box.press("Tab")
        wait_until(lambda: C.gradebook_grades(journey.course, assignment, STUDENT)[cell].manual_score == given,
                   GRADEBOOK_TIMEOUT, f"the score {given} typed for {cell} to reach the gradebook",
                   sleep=ui.page_sleep(page))
        browser.shot("formgrader-written-answer-graded")
        journey.step("manual score stored in the gradebook")

        # Back to the submissions: the page now shows the new total.
        after = C.gradebook_grades(journey.course, assignment, STUDENT)
        assert after[cell].score == given and total(after) == (total(before)[0] + given, total(before)[1])
        fg.follow(frame, "gradebook", "Manual Grading")
        fg.follow(frame, "manage_assignments", "Manage Assignments")
        fg.follow(frame, f"manage_submissions/{assignment}", "1")
        (shown,) = [r for r in fg.table(frame, STUDENT) if r["Student ID"] == STUDENT]
        browser.shot("formgrader-submission-graded")
        assert fg.score(shown["Score"]) == total(after) and shown["Status"] == "graded", shown
        outside = [url for url in browser.outside if not url.startswith(fg.NBGRADER_MATHJAX_CDN)]
        assert not outside, f"the formgrader sent requests beyond the server: {outside}"
    journey.step("server stopped")

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

import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from journeys import course as C
from journeys import formgrader_ui as fg
from journeys import notebook_ui as ui
from journeys.browser import VIEWPORT, browser_page, chromium_path
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
        self.tmp = tmp_path
        self.course = C.copy_course(tmp_path / "course")
        self.home = tmp_path / "home"
        self.started = time.monotonic()
        self.steps: list[str] = []

    def step(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.started:7.1f} s  {what}")
        (self.artifacts / "timing.txt").write_text("\n".join(self.steps) + "\n")

    def source(self, assignment: str) -> Path:
        return self.course / "solutions" / assignment / f"{assignment}.ipynb"

    def server(self, kind: str, handout: C.Handout | None = None):
        """A server in the course copy, or, for a graded course's students, in the hand-out."""
        if handout is None:
            return jupyter_server(kind, self.course, self.home, self.artifacts / f"jupyter-{kind}.log")
        return jupyter_server(kind, handout.folder, self.home, self.artifacts / f"jupyter-{kind}.log",
                              configure=handout.configure, pythonpath=handout.site)

    def browser(self, port: int, profile: str = "chromium-profile"):
        """The journey's browser; the first one clears the screenshots an earlier run left."""
        first = not (self.home / profile).exists() and not any(self.home.glob("chromium-*"))
        return browser_page(self.home / profile, self.artifacts, port, fresh_shots=first)


# --- students ---------------------------------------------------------------------


@dataclass
class Opened:
    """A released notebook as a student opened it: where it is on the server and on disk."""

    path: str         # relative to the server's root
    release: Path     # the released notebook it started from
    source: Path      # the instructor's notebook (answers, visible tests)


def page_cells_by_grade_id(page, opened: Opened) -> dict[str, ui.CodeCell]:
    """grade_id -> the code cell on the page; the page shows the release's code cells in order."""
    release = nbformat.read(opened.release, as_version=4)
    ids = [cell.metadata["nbgrader"]["grade_id"] for cell in release.cells if cell.cell_type == "code"]
    shown = ui.code_cells(page)
    assert len(shown) == len(ids), f"the page shows {len(shown)} code cells, the released notebook has {len(ids)}"
    return dict(zip(ids, shown))


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def run_and_read_the_red_box(journey: Journey, browser, server, opened: Opened, shot: str) -> tuple[str, ui.CodeCell]:
    """Run All: the cells above the first failing test run cleanly and that test shows a red box.
    Returns the failing test's grade_id and cell; screenshots at 1280 and 390 px wide."""
    page = browser.page
    ui.run_all(page, server, opened.path)
    journey.step(f"Run All finished ({shot})")
    cells = page_cells_by_grade_id(page, opened)
    failing = next((g for g, cell in cells.items() if cell.has_error), None)
    assert failing is not None, "no cell failed"
    for grade_id, cell in cells.items():
        if grade_id == failing:
            break
        assert cell.prompt.strip("[]:").isdigit(), f"cell {grade_id} should have run, the page shows {cell.prompt}"
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        if width < 600 and server.kind == "lab":
            ui.toggle_left_sidebar(page)  # on a phone the file browser would take the whole width
        cells[failing].locator.locator(".jp-OutputArea").scroll_into_view_if_needed()
        browser.shot(f"{shot}-{width}")
        if width < 600 and server.kind == "lab":
            ui.toggle_left_sidebar(page)
    page.set_viewport_size(VIEWPORT)
    return failing, page_cells_by_grade_id(page, opened)[failing]


def message_first(red_box: str, expected_start: str) -> None:
    """The red box opens with the check's message and shows none of the grading library's frames."""
    assert first_line(red_box).startswith(expected_start), (
        f"the red box should open with '{expected_start}...'; it shows:\n{red_box[:1500]}")
    for frame in ("Traceback", "rnnlab/grading", "recurrent.py", "calling.py", "File "):
        assert frame not in red_box, f"the red box shows grading code ({frame!r}):\n{red_box[:1500]}"


def read_the_unanswered_failure(journey: Journey, browser, server, opened: Opened) -> None:
    """Run All on the released notebook: the first visible test says the function is not written yet."""
    failing, cell = run_and_read_the_red_box(journey, browser, server, opened, "unanswered-test-fails")
    assert failing == next(iter(C.visible_tests(opened.source))), failing
    name = failing.removeprefix("test_")
    message_first(cell.error, f"{name} {NOT_WRITTEN}")


def paste_answers(page, opened: Opened, answers: dict[str, str]) -> None:
    cells = page_cells_by_grade_id(page, opened)
    for grade_id, answer in answers.items():
        ui.replace_source(page, cells[grade_id], answer)


def paste_answers_and_see_tests_pass(journey: Journey, browser, server, opened: Opened) -> dict[str, str]:
    """Paste the reference answer into each answer cell through the editor, Run All, and see
    every cell run without error and every visible test print its OK line. Returns the answers."""
    page = browser.page
    answers = C.reference_answers(opened.source)
    paste_answers(page, opened, answers)
    browser.shot("answers-pasted")
    ui.run_all(page, server, opened.path)
    journey.step("Run All on the answered notebook finished")

    cells = page_cells_by_grade_id(page, opened)
    not_run = [g for g, cell in cells.items() if not cell.prompt.strip("[]:").isdigit()]
    errors = {g: cell.output[-800:] for g, cell in cells.items() if cell.has_error}
    assert not not_run and not errors, f"cells not run: {not_run}; cells with errors: {errors}"
    visible = C.visible_tests(opened.source)
    for grade_id in visible:
        assert cells[grade_id].output.startswith("OK:"), (
            f"visible test {grade_id} should print its OK line, the page shows: {cells[grade_id].output!r}")
    cells[next(iter(visible))].locator.scroll_into_view_if_needed()
    browser.shot("answered-tests-pass")
    return answers


def test_student_of_a_graded_course_works_in_the_handout_and_earns_full_marks(tmp_path):
    """The hand-out (make release), not the repository: no instructor menus, a notebook that stays
    unmodified on opening, a wrong answer explained in the red box's first lines and in Validate,
    then the right answers, saved and graded by the real commands."""
    assignment, mistake = "gru_cell", "reset_before_matrix"
    journey = Journey("1-student-handout-jupyterlab", tmp_path)
    handout = C.handout(tmp_path / "dist")
    journey.step("hand-out built")
    opened = Opened(f"{assignment}/{assignment}.ipynb", handout.folder / assignment / f"{assignment}.ipynb",
                    journey.source(assignment))
    assert not (handout.folder / "solutions").exists() and not (handout.folder / "exercises").exists()

    with journey.server("lab", handout) as server, journey.browser(server.port) as browser:
        page = browser.page
        journey.step("JupyterLab answers")
        ui.open_notebook(browser, server, opened.path)
        page.wait_for_timeout(2000)  # the kernel's language_info reaches the notebook after it is idle
        assert not ui.is_dirty(page), "the notebook shows as modified right after opening"
        entries = ui.menu_entries(page, "Nbgrader", shot=lambda: browser.shot("no-instructor-menus"))
        for instructor_tool in ("Formgrader", "Create assignment", "Course List"):
            assert instructor_tool not in entries, f"the student's Nbgrader menu offers {instructor_tool}: {entries}"
        assert not page.locator(".lm-TabBar-tab", has_text="Create Assignment").count(), "Create Assignment sidebar"
        assert page.locator(".jp-ToolbarButtonComponent-label", has_text="Validate").count() == 1

        read_the_unanswered_failure(journey, browser, server, opened)
        answers = C.reference_answers(opened.source)
        wrong = C.with_mistake(answers, assignment, mistake)
        paste_answers(page, opened, wrong)
        failing, cell = run_and_read_the_red_box(journey, browser, server, opened, "wrong-answer-red-box")
        assert failing == "test_gru_cell"
        message_first(cell.error, "gru_cell is wrong on the inputs B = 3, I = 4, H = 4")
        assert "The mistake: the reset gate is applied before W_hn" in cell.error, cell.error
        ui.save(page, server, opened.path, lambda file: C.answer_cell_sources(file) == wrong)
        validated = ui.validate(page)
        journey.step("Validate answered")
        browser.shot("validate-dialog")
        named = {first_line(error).split()[0]: error for _, error in validated}
        assert sorted(named) == ["gru_cell", "gru_forward"], f"Validate should list both tests: {validated}"
        for name, error in named.items():
            message_first(error, f"{name} is wrong on the inputs B = 3, I = 4, H = 4")
        assert "The loop itself is right: gru_forward returns exactly what your gru_cell gives" in named["gru_forward"]
        page.keyboard.press("Escape")

        paste_answers_and_see_tests_pass(journey, browser, server, opened)
        ui.save(page, server, opened.path, lambda file: C.answer_cell_sources(file) == answers)
        page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached")
        journey.step("notebook saved with the pasted answers")
        browser.shot("saved")
        assert not browser.outside, f"the page sent requests beyond the server: {browser.outside}"
    journey.step("server stopped")
    log = (journey.artifacts / "jupyter-lab.log").read_text()
    assert "without encryption" not in log, "kernels should talk to the server over IPC"

    # Grade what the student saved, with the real commands.
    C.submit(journey.course, assignment, STUDENT, handout.folder / opened.path)
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
    """Self-study: Notebook 7 in a copy of the repository."""
    assignment = "gru_cell"
    journey = Journey("2-student-notebook7", tmp_path)
    opened = Opened(f"exercises/{assignment}/{assignment}.ipynb",
                    journey.course / "exercises" / assignment / f"{assignment}.ipynb", journey.source(assignment))
    with journey.server("notebook") as server, journey.browser(server.port) as browser:
        journey.step("Notebook 7 answers")
        ui.open_notebook(browser, server, opened.path)
        browser.shot("notebook-opened")
        read_the_unanswered_failure(journey, browser, server, opened)
        paste_answers_and_see_tests_pass(journey, browser, server, opened)
        assert not browser.outside, f"the page sent requests beyond the server: {browser.outside}"
    journey.step("server stopped")


# --- instructors ------------------------------------------------------------------


def total(grades: dict[str, C.Grade]) -> tuple[float, float]:
    return sum(g.score for g in grades.values()), sum(g.max_score for g in grades.values())


def test_instructor_grades_by_hand_regrades_and_hands_back_readable_feedback(tmp_path):
    """The hardened command grades a submission with one mistake; the instructor scores its
    written answer in the formgrader; a re-run keeps that score; the feedback file shows the
    whole diagnosis, wrapped, and typeset formulas, at 1280 and 390 px, with no request at all."""
    assignment, mistake = "bptt", "norms_one_step_early"  # autograded tests and one written answer
    journey = Journey("3-instructor-formgrader", tmp_path)
    written = C.manually_graded(journey.source(assignment))
    assert written, f"{assignment} has no written answer to grade by hand"
    cell, points = next(iter(written.items()))
    given = points - 1  # partial credit: neither the full marks nor the nothing a button gives

    # A student's submission, collected and graded with the real commands.
    C.nbgrader(journey.course, "db", "student", "add", STUDENT, "--first-name=Ada", "--last-name=Lovelace",
               home=journey.home)
    answers = C.with_mistake(C.reference_answers(journey.source(assignment)), assignment, mistake)
    C.submit(journey.course, assignment, STUDENT,
             C.with_answers(journey.course / "exercises" / assignment / f"{assignment}.ipynb", answers))
    C.nbgrader(journey.course, "generate_assignment", assignment, "--force", home=journey.home)
    C.grading_command(journey.course, "autograde", assignment, home=journey.home)
    journey.step("submission graded by python -m rnnlab.grading autograde")
    before = C.gradebook_grades(journey.course, assignment, STUDENT)
    assert before[cell].manual_score is None and before[cell].score == 0
    assert before["test_rnn_bptt_norms"].score == 0 and before["test_rnn_bptt_gradients"].score > 0

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
        frame.locator("mjx-container").first.wait_for()  # MathJax writes one per typeset formula
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
        assert not browser.outside, f"the formgrader sent requests beyond the server: {browser.outside}"
    journey.step("server stopped")

    # Graded again (a late fix of the tests, say): the instructor's score holds and the report says whose it is.
    output = C.grading_command(journey.course, "autograde", assignment, home=journey.home)
    assert f"instructor's score kept: {cell}" in output, output
    again = C.gradebook_grades(journey.course, assignment, STUDENT)
    assert again[cell].manual_score == given and total(again) == total(after), (again, after)
    journey.step("re-run kept the instructor's score")

    output = C.grading_command(journey.course, "feedback", assignment, home=journey.home)
    page_file = journey.course / "feedback" / STUDENT / assignment / f"{assignment}.html"
    line = f"{STUDENT} +{total(after)[0]:g} / {total(after)[1]:g}  feedback/{STUDENT}/{assignment}/{assignment}.html"
    first, *rest = output.strip().splitlines()
    assert re.fullmatch(line, first), f"the feedback command should print {line!r} first:\n{output}"
    assert [note[:50] for note in rest] == ["note: 1 submission(s) did not come through nbgrade"], output
    read_feedback(journey, page_file, "off by one in time: your norms[k]")
    journey.step("feedback read")


def read_feedback(journey: Journey, page_file: Path, diagnosis: str) -> None:
    """Open a feedback file from disk, as a student does: the diagnosis is there whole and wrapped
    (no output box scrolls sideways), formulas are typeset, and nothing is requested from anywhere."""
    with journey.browser(port=0, profile="chromium-feedback") as browser:
        page = browser.page
        page.goto(page_file.as_uri())
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 10, "the feedback's formulas are not typeset"
        box = page.locator("div.output_area pre", has_text=diagnosis).first
        assert "The mistake: " + diagnosis in box.inner_text(), box.inner_text()
        breaks = box.evaluate("pre => getComputedStyle(pre).wordBreak")
        assert breaks == "normal", f"messages should wrap between words, not anywhere (word-break: {breaks})"
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            box.scroll_into_view_if_needed()
            overflowing = page.evaluate("""() => [...document.querySelectorAll('div.output_area pre')]
                .filter(pre => pre.scrollWidth > pre.clientWidth + 1).map(pre => pre.innerText.slice(0, 80))""")
            assert not overflowing, f"at {width} px these outputs run out of their box: {overflowing}"
            browser.shot(f"feedback-{width}")
        requested = [url for url in browser.outside if url != page_file.as_uri()]
        assert not requested, f"the feedback file requested {requested}"

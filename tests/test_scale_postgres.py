"""The stock nbgrader commands and the formgrader on a PostgreSQL gradebook (a real server).

A course on a server keeps one gradebook that several graders share: nbgrader's own
``CourseDirectory.db_url`` pointed at PostgreSQL. These tests start Debian's PostgreSQL
in a temporary folder (Unix socket only, tests/services/postgres.py), copy the course,
add the ``db_url`` line an instructor would add to ``nbgrader_config.py``, and run the
real commands: ``generate_assignment``, ``autograde`` (twice: re-grading changes nothing),
``generate_feedback``, ``export``, and the formgrader's JSON API that its pages call when
an instructor types a score.
"""

from __future__ import annotations

import csv
import json
import urllib.request

import pytest
from journeys import course as C
from journeys.servers import jupyter_server
from services import gradebooks
from services.postgres import postgres_server

# A module-scoped fixture runs many nbgrader commands before the first test: room for a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ASSIGNMENT = "rnn_forward"
COURSE_ID = "rnnlab"  # c.CourseDirectory.course_id of nbgrader_config.py


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def graded_course(postgres, tmp_path_factory):
    """The course with a PostgreSQL gradebook; ada answered everything, bob nothing; graded once."""
    root = tmp_path_factory.mktemp("postgres-course")
    course = C.copy_course(root / "course")
    url = postgres.create_database("gradebook")
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.CourseDirectory.db_url = {url!r}\n")
    home = root / "home"
    C.nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", home=home)
    C.submit(course, ASSIGNMENT, "ada", C.answered_release(course, ASSIGNMENT))
    C.submit(course, ASSIGNMENT, "bob", course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    C.nbgrader(course, "autograde", ASSIGNMENT, home=home)
    return course, url, home


def gradebook_state(url: str) -> dict:
    return gradebooks.gradebook_state(url, COURSE_ID, ASSIGNMENT)


def max_score(course) -> float:
    """The points of every autograded test cell of the assignment, hidden tests included."""
    import nbformat

    notebook = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return float(sum(cell.metadata["nbgrader"]["points"] for cell in notebook.cells
                     if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")))


def test_autograde_writes_its_scores_to_postgresql_and_no_sqlite_file(graded_course):
    from nbgrader.api import Gradebook

    course, url, _ = graded_course
    assert not (course / "gradebook.db").exists(), "nbgrader fell back to SQLite"
    with Gradebook(url, COURSE_ID) as gradebook:
        ada = gradebook.find_submission(ASSIGNMENT, "ada")
        bob = gradebook.find_submission(ASSIGNMENT, "bob")
        assert ada.score == ada.max_score == max_score(course)
        assert bob.score == 0 and bob.max_score == ada.max_score


def test_regrading_on_postgresql_leaves_every_row_as_it_was(graded_course):
    course, url, home = graded_course
    before = gradebook_state(url)
    C.nbgrader(course, "autograde", ASSIGNMENT, "--force", home=home)
    after = gradebook_state(url)
    assert after == before
    assert before["counts"]["student"] == 2 and before["counts"]["submitted_assignment"] == 2


def test_feedback_and_export_read_the_postgresql_gradebook(graded_course):
    course, url, home = graded_course
    C.nbgrader(course, "generate_feedback", ASSIGNMENT, home=home)
    total = max_score(course)
    page = (course / "feedback" / "ada" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert f"{total:g} / {total:g}" in page or f"{total} / {total}" in page
    C.nbgrader(course, "export", home=home)
    with open(course / "grades.csv", newline="") as table:
        scores = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(table)}
    assert scores == {"ada": total, "bob": 0.0}


def _formgrader(server, path: str, body: dict | None = None):
    """GET (or PUT ``body`` to) the formgrader's JSON API with the server's token."""
    request = urllib.request.Request(f"{server.base}/formgrader/api/{path}", method="PUT" if body else "GET",
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def test_the_formgrader_reads_and_writes_the_postgresql_gradebook(graded_course, tmp_path):
    from nbgrader.api import Gradebook

    course, url, _ = graded_course
    with jupyter_server("lab", course, tmp_path / "home", tmp_path / "jupyter.log") as server:
        submissions = {s["student"]: s for s in _formgrader(server, f"submissions/{ASSIGNMENT}")}
        assert submissions["ada"]["score"] == max_score(course) and submissions["bob"]["score"] == 0
        notebooks = {n["student"]: n for n in _formgrader(server, f"submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")}
        grades = _formgrader(server, f"grades?submission_id={notebooks['bob']['id']}")
        cell = next(g for g in grades if g["name"] == "test_rnn_cell")
        saved = _formgrader(server, f"grade/{cell['id']}", {"manual_score": 1.5})
        assert saved["manual_score"] == 1.5 and saved["needs_manual_grade"] is False
    with Gradebook(url, COURSE_ID) as gradebook:
        grade = gradebook.find_grade("test_rnn_cell", ASSIGNMENT, ASSIGNMENT, "bob")
        assert (grade.manual_score, grade.score, grade.needs_manual_grade) == (1.5, 1.5, False)
        assert gradebook.find_submission(ASSIGNMENT, "bob").score == 1.5


# --- rnnlab.grading.command.gradebook: the copy the jobs grade against, and the single writer ------------


def test_a_snapshot_of_the_postgresql_gradebook_is_the_same_gradebook_as_an_sqlite_file(graded_course, tmp_path):
    from rnnlab.grading.command import gradebook

    _, url, _ = graded_course
    copy = tmp_path / "copy.db"
    gradebook.snapshot(url, copy)
    assert gradebook_state(f"sqlite:///{copy}") == gradebook_state(url)
    with postgres_connection(url) as connection:
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    import sqlite3

    assert sqlite3.connect(copy).execute("SELECT version_num FROM alembic_version").fetchall() == version


def postgres_connection(url: str):
    import psycopg
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    return psycopg.connect(host=parts.query["host"], user=parts.username, dbname=parts.database)


def _hold_lock_in_another_process(url: str, tmp_path):
    """A process that takes the writer lock, says so, and waits to be killed."""
    import subprocess
    import sys
    import time

    ready = tmp_path / "locked"
    code = ("import sys, time, pathlib\nfrom rnnlab.grading.command import gradebook\n"
            "with gradebook.single_writer(sys.argv[1]):\n"
            "    pathlib.Path(sys.argv[2]).touch()\n    time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", code, url, str(ready)], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the lock holder did not start"
        time.sleep(0.1)
    return process


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_second_grading_run_of_the_same_gradebook_stops_at_once_naming_the_first(backend, postgres, tmp_path):
    from rnnlab.grading.command import gradebook

    if backend == "postgresql":
        url = postgres.create_database(f"lock_{tmp_path.name[-8:].replace('-', '_')}".lower())
    else:
        url = f"sqlite:///{tmp_path / 'gradebook.db'}"
        (tmp_path / "gradebook.db").touch()
    holder = _hold_lock_in_another_process(url, tmp_path)
    try:
        with pytest.raises(gradebook.GradebookBusy, match=rf"rnnlab grading, process {holder.pid} on "):
            with gradebook.single_writer(url):
                pass
    finally:
        holder.kill()  # SIGKILL: no chance to release it; the server or the kernel must
        holder.wait(timeout=60)
    with gradebook.single_writer(url):
        with pytest.raises(gradebook.GradebookBusy):
            with gradebook.single_writer(url):
                pass
    with gradebook.single_writer(url):
        pass

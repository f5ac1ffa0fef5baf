"""Hand-out and hand-in on one server: nbgrader's exchange between real Unix accounts, and zip_collect.

A course on a shared server (JupyterHub, or plain logins) hands assignments out and in
through nbgrader's exchange, a folder every account can write to. These tests make the
accounts (tests/services/unix_users.py: an instructor and three students, each with a
private home) and run, each as its own account, what they would type:

- the instructor: ``nbgrader generate_assignment`` and ``release_assignment``;
- each student, in their home: ``nbgrader fetch_assignment``, answers, ``nbgrader submit``;
- the instructor: ``nbgrader collect``; ``nbgrader zip_collect`` for two more students
  whose notebooks came as a learning-management system's download (Canvas names);
  then the grading command, ``python -m rnnlab.grading autograde``;
- and a student trying to read another's work, which Unix permissions refuse.

Everything shared lives in one temporary folder: the exchange (``c.Exchange.root``) and a
configuration folder on every account's ``JUPYTER_CONFIG_PATH`` standing in for
``/etc/jupyter``, holding what the instructor page tells a server's administrator to put
there.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from journeys import course as C
from services.unix_users import UnixUser, unix_users

# A module-scoped fixture runs many nbgrader commands before the first test: room for a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ASSIGNMENT = "rnn_forward"
STUDENTS = ("ada", "bob", "cy")          # Unix accounts (named <name>-<suffix>)
LMS_STUDENTS = {"dee": 40117, "eve": 40118}  # students whose work came in an LMS download
# The setting an instructor adds for Canvas downloads: "<login>_[LATE_]<user id>_<submission id>_<file>",
# where Canvas appends "-1", "-2", ... to the file name of a re-submission.
CANVAS_REGEXP = r".*/(?P<student_id>[^/_]+)_(?:LATE_)?\d+_\d+_(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$"


@dataclass
class Server:
    """The shared server of these tests: accounts, the course, the exchange, the shared config."""

    instructor: UnixUser
    students: dict[str, UnixUser]
    course: Path
    exchange: Path
    config: Path
    answers: dict[str, nbformat.NotebookNode]

    def env(self, user: UnixUser) -> dict[str, str]:
        return user.environment(JUPYTER_CONFIG_PATH=str(self.config), PYTHONDONTWRITEBYTECODE="1")

    def nbgrader(self, user: UnixUser, *args: str, cwd: Path | None = None, check: bool = True):
        return user.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=self.env(user), check=check)


def _chown_tree(path: Path, user: UnixUser) -> None:
    for folder, folders, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, f) for f in folders + files)]:
            os.chown(name, user.uid, user.gid)


def _answers(course: Path) -> dict[str, nbformat.NotebookNode]:
    """What each student hands in: ada all answers, bob none, cy the first function only."""
    release = nbformat.read(course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    full = C.answered_release(course, ASSIGNMENT)
    first = nbformat.from_dict(release)
    for cell, answered in zip(first.cells, full.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "rnn_cell":
            cell.source = answered.source
    return {"ada": full, "bob": release, "cy": first, "dee": full, "eve": first}


def _lms_download(course: Path, answers: dict) -> Path:
    """A Canvas-style zip: one notebook per student, eve's a re-submission (``-1``) and late."""
    archive = course / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "submissions.zip", "w") as download:
        for name, user_id in LMS_STUDENTS.items():
            late = "LATE_" if name == "eve" else ""
            suffix = "-1" if name == "eve" else ""
            download.writestr(f"{name}_{late}{user_id}_{user_id + 9000}_{ASSIGNMENT}{suffix}.ipynb",
                              nbformat.writes(answers[name]))
    return archive


@pytest.fixture(scope="module")
def server():
    folder = Path(tempfile.mkdtemp(prefix="rnnlab-server-"))
    folder.chmod(0o755)
    try:
        with unix_users(["instructor", *STUDENTS]) as users:
            instructor = users["instructor"]
            course = C.copy_course(instructor.home / "course")
            with open(course / "nbgrader_config.py", "a") as config:
                config.write(f"\nc.FileNameCollectorPlugin.named_regexp = {CANVAS_REGEXP!r}\n")
            exchange = folder / "exchange"
            exchange.mkdir(mode=0o777)
            exchange.chmod(0o777)  # what `chmod ugo+rwx` does; nbgrader checks for it
            config = folder / "etc-jupyter"
            config.mkdir(mode=0o755)
            (config / "nbgrader_config.py").write_text(
                f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n"
                "c.CourseDirectory.course_id = 'rnnlab'\n")
            answers = _answers(course)
            _lms_download(course, answers)
            _chown_tree(instructor.home, instructor)
            students = {name: users[name] for name in STUDENTS}
            yield Server(instructor, students, course, exchange, config, answers)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def handed_in(server):
    """Release, fetch, answer, submit, collect, zip_collect: the course with five submissions."""
    s = server
    s.nbgrader(s.instructor, "generate_assignment", ASSIGNMENT, "--force", cwd=s.course)
    s.nbgrader(s.instructor, "release_assignment", ASSIGNMENT, cwd=s.course)
    for name, student in s.students.items():
        s.nbgrader(student, "fetch_assignment", ASSIGNMENT)
        fetched = student.home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert fetched.is_file(), f"{name} has no {fetched} after fetch_assignment"
        answer = student.home / "answer.ipynb"
        nbformat.write(s.answers[name], answer)
        os.chown(answer, student.uid, student.gid)
        student.run(["cp", str(answer), str(fetched)])  # the student saves their work
        s.nbgrader(student, "submit", ASSIGNMENT)
    s.nbgrader(s.instructor, "collect", ASSIGNMENT, cwd=s.course)
    s.nbgrader(s.instructor, "zip_collect", ASSIGNMENT, cwd=s.course)
    return s


def _account(s, name: str) -> str:
    return s.students[name].name if name in s.students else name


def test_each_student_s_submission_reaches_the_instructor_as_handed_in(handed_in):
    s = handed_in
    for name in (*STUDENTS, *LMS_STUDENTS):
        folder = s.course / "submitted" / _account(s, name) / ASSIGNMENT
        notebook = nbformat.read(folder / f"{ASSIGNMENT}.ipynb", as_version=4)
        assert C.answer_cell_sources(folder / f"{ASSIGNMENT}.ipynb") == {
            cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in s.answers[name].cells
            if cell.metadata.get("nbgrader", {}).get("solution")}, name
        assert notebook.cells, name
    for name in STUDENTS:
        assert (s.course / "submitted" / _account(s, name) / ASSIGNMENT / "timestamp.txt").is_file()
    assert sorted(p.name for p in (s.course / "submitted").iterdir()) == sorted(
        [student.name for student in s.students.values()] + list(LMS_STUDENTS))


def test_a_student_cannot_read_another_students_work(handed_in):
    s = handed_in
    bob, ada = s.students["bob"], s.students["ada"]
    inbound = s.exchange / "rnnlab" / "inbound"
    submitted = sorted(p.name for p in inbound.iterdir())
    ada_submission = next(name for name in submitted if name.startswith(ada.name + "+"))
    # nbgrader names a submission <student>+<assignment>+<time>+<12 random characters>.
    assert len(ada_submission.rsplit("+", 1)[1]) == 12

    def as_bob(*command):
        return bob.run(list(command), env=s.env(bob), check=False)

    listing = as_bob("ls", str(inbound))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr, listing
    guess = as_bob("ls", "-d", str(inbound / f"{ada.name}+{ASSIGNMENT}+*"))
    assert guess.returncode != 0, guess
    for private in (ada.home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                    s.course / "submitted" / ada.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"):
        read = as_bob("cat", str(private))
        assert read.returncode != 0 and "Permission denied" in read.stderr, (private, read)
    listed = s.nbgrader(bob, "list", "--inbound", check=False)
    assert ada.name not in listed.stdout + listed.stderr, listed


def _points(course: Path, prefix: str) -> float:
    """Points of the autograded cells whose grade id starts with ``prefix`` (hidden tests included)."""
    notebook = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return float(sum(cell.metadata["nbgrader"]["points"] for cell in notebook.cells if cell.cell_type == "code"
                     and cell.metadata.get("nbgrader", {}).get("grade")
                     and cell.metadata["nbgrader"]["grade_id"].startswith(prefix)))


def test_the_instructor_grades_the_handed_in_work_with_the_grading_command(handed_in):
    from nbgrader.api import Gradebook

    s = handed_in
    done = s.instructor.run([sys.executable, "-m", "rnnlab.grading", "autograde", ASSIGNMENT,
                             "--course", str(s.course), "--jobs", "2"], env=s.env(s.instructor), check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    total, first = _points(s.course, "test_"), _points(s.course, "test_rnn_cell")
    expected = {"ada": total, "bob": 0.0, "cy": first, "dee": total, "eve": first}
    with Gradebook(f"sqlite:///{s.course / 'gradebook.db'}", "rnnlab") as gradebook:
        found = {name: gradebook.find_submission(ASSIGNMENT, _account(s, name)).score for name in expected}
        flagged = [name for name in expected
                   if gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, _account(s, name)).flagged]
    assert found == expected, done.stdout
    assert not flagged, done.stdout

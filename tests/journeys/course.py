"""A throw-away copy of the course, the real nbgrader commands run in it, and its gradebook.

The journeys never write into the repository: `copy_course` copies what an instructor's
course folder holds (``nbgrader_config.py``, ``solutions/``, ``exercises/``) into a
temporary folder, and every server, nbgrader command and gradebook lives there.

Students of a graded course work in the hand-out instead (`handout`): the folder
``make release`` writes, its wheel installed into a folder of its own, and Jupyter set up
by the hand-out's own ``install.py``.

The reference answers come from the instructor's notebooks
(``solutions/<a>/<a>.ipynb``): a solution cell with its ``### BEGIN SOLUTION`` /
``### END SOLUTION`` lines removed is exactly what a student who solved the task has in
that cell of the released notebook.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from .servers import jupyter_env, stop, venv_bin, venv_env

ROOT = Path(__file__).resolve().parents[2]
COURSE_FILES = ("nbgrader_config.py",)
COURSE_FOLDERS = ("solutions", "exercises")
NBGRADER_TIMEOUT = 600  # seconds for one command; a notebook's cells have their own limit (nbgrader_config.py)
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def copy_course(destination: Path) -> Path:
    """Copy the course folder's nbgrader files into ``destination`` (created) and return it."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in COURSE_FILES:
        shutil.copy2(ROOT / name, destination / name)
    for name in COURSE_FOLDERS:
        shutil.copytree(ROOT / name, destination / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return destination


@dataclass(frozen=True)
class Handout:
    """The students' hand-out: its folder, and the folder its wheel is installed in."""

    folder: Path
    site: Path

    def configure(self, env: dict) -> None:
        """Set up Jupyter as the hand-out's install.py does for students, in ``env``'s config folder."""
        done = subprocess.run([sys.executable, "install.py", "--configure-only", "--level", "user"],
                              cwd=self.folder, env=env, capture_output=True, text=True, timeout=NBGRADER_TIMEOUT)
        if done.returncode != 0:
            raise AssertionError(f"install.py --configure-only failed:\n{done.stdout}{done.stderr}")


def handout(destination: Path) -> Handout:
    """Build the hand-out from the repository (tools/release.py) and install its wheel, offline."""
    sys.path.insert(0, str(ROOT / "tools"))
    import release

    folder, _ = release.release(ROOT, destination)
    site = destination / "site"
    (wheel,) = (folder / "wheels").glob("rnnlab-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-qq", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, timeout=NBGRADER_TIMEOUT)
    return Handout(folder, site)


def with_answers(release_notebook: Path, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with ``answers`` (grade_id -> source) in its answer cells."""
    release = nbformat.read(release_notebook, as_version=4)
    for cell in release.cells:
        grade_id = _nbgrader_meta(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return release


def assignments(course: Path) -> list[str]:
    """The assignments of the course: the folders of ``solutions/``."""
    return sorted(p.name for p in (course / "solutions").iterdir() if p.is_dir())


def nbgrader(course: Path, *args: str, home: Path | None = None, timeout: float = NBGRADER_TIMEOUT) -> str:
    """Run the ``nbgrader <args>`` command line in ``course``; return its output (stdout and stderr).

    The one way the tests run the real command an instructor or student types: the venv's
    ``nbgrader``, with the venv's bin/ first on PATH (:func:`~journeys.servers.venv_env`)
    and, given ``home``, every per-user Jupyter folder under it (a journey's own). A command
    that runs past ``timeout`` seconds is stopped with the kernel it started. A non-zero
    exit fails with the command's output: nbgrader deletes the autograded notebook of a
    failed run but keeps an older score, so the exit status must be checked.
    """
    command = [str(venv_bin() / "nbgrader"), *args]
    process = subprocess.Popen(command, cwd=course, env=jupyter_env(home) if home else venv_env(),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)  # nbgrader and the kernel it started (in a session of its own)
        raise AssertionError(f"`nbgrader {' '.join(args)}` ran past {timeout} s") from None
    if process.returncode != 0:
        raise AssertionError(f"`nbgrader {' '.join(args)}` exited with {process.returncode}:\n{output[-4000:]}")
    return output


def grading_command(course: Path, *args: str, home: Path) -> str:
    """Run ``python -m rnnlab.grading <args>`` in ``course``; return its output (stdout, then stderr).

    A non-zero exit fails with the output: 1 means some submission was not graded."""
    process = subprocess.Popen([sys.executable, "-m", "rnnlab.grading", *args], cwd=course, env=jupyter_env(home),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        output, errors = process.communicate(timeout=NBGRADER_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop(process)
        raise AssertionError(f"`python -m rnnlab.grading {' '.join(args)}` ran past {NBGRADER_TIMEOUT} s") from None
    if process.returncode != 0:
        raise AssertionError(f"`python -m rnnlab.grading {' '.join(args)}` exited with {process.returncode}:\n"
                             f"{output[-3000:]}\n{errors[-3000:]}")
    return output + errors


def _nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def reference_answers(source_notebook: Path) -> dict[str, str]:
    """grade_id -> what a student who solved that answer cell has in it (code or written)."""
    notebook = nbformat.read(source_notebook, as_version=4)
    answers = {}
    for cell in notebook.cells:
        meta = _nbgrader_meta(cell)
        if meta.get("solution"):
            lines = cell.source.splitlines()
            answers[meta["grade_id"]] = "\n".join(line for line in lines if line.strip() not in SOLUTION_MARKERS)
    if not answers:
        raise ValueError(f"{source_notebook} has no solution cell")
    return answers


def visible_tests(source_notebook: Path) -> dict[str, float]:
    """grade_id -> points of the autograded test cells a student sees (no hidden tests in them)."""
    notebook = nbformat.read(source_notebook, as_version=4)
    return {meta["grade_id"]: meta["points"] for cell in notebook.cells
            if cell.cell_type == "code" and (meta := _nbgrader_meta(cell)).get("grade")
            and "BEGIN HIDDEN TESTS" not in cell.source}


def manually_graded(source_notebook: Path) -> dict[str, float]:
    """grade_id -> points of the written answers (Markdown answer cells, graded by hand)."""
    notebook = nbformat.read(source_notebook, as_version=4)
    return {meta["grade_id"]: meta["points"] for cell in notebook.cells
            if cell.cell_type == "markdown" and (meta := _nbgrader_meta(cell)).get("grade")}


def answer_cell_sources(notebook_path: Path) -> dict[str, str]:
    """grade_id -> the current source of each answer cell of a (student's) notebook."""
    notebook = nbformat.read(notebook_path, as_version=4)
    return {meta["grade_id"]: cell.source for cell in notebook.cells if (meta := _nbgrader_meta(cell)).get("solution")}


def answered_release(course: Path, assignment: str) -> nbformat.NotebookNode:
    """The released notebook of ``assignment`` with every answer cell holding the reference answer."""
    return with_answers(course / "exercises" / assignment / f"{assignment}.ipynb",
                        reference_answers(course / "solutions" / assignment / f"{assignment}.ipynb"))


def with_mistake(answers: dict[str, str], assignment: str, student: str) -> dict[str, str]:
    """The reference ``answers`` with the edits of the built submission ``student`` (tests/exercise_mistakes)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from exercise_mistakes import submissions

    (built,) = [s for s in submissions()[assignment] if s.student == student]
    changed = dict(answers)
    for grade_id, edits in built.edits.items():
        for old, new in edits:
            assert changed[grade_id].count(old) == 1, f"{student}: {old!r} is not once in {grade_id}"
            changed[grade_id] = changed[grade_id].replace(old, new)
    return changed


def submit(course: Path, assignment: str, student: str, notebook: Path | nbformat.NotebookNode) -> Path:
    """Place a student's notebook where nbgrader collects it, submitted/<student>/<a>/<a>.ipynb,
    with the timestamp.txt that `nbgrader collect` would write beside it."""
    target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, Path):
        shutil.copy2(notebook, target)
    else:
        nbformat.write(notebook, target)
    (target.parent / "timestamp.txt").write_text(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    return target


@dataclass(frozen=True)
class Grade:
    """One graded cell of a submission as the gradebook stores it."""

    score: float
    max_score: float
    auto_score: float | None
    manual_score: float | None


def gradebook_grades(course: Path, assignment: str, student: str) -> dict[str, Grade]:
    """grade_id -> :class:`Grade` of ``student``'s submission of ``assignment`` (one notebook)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(assignment, assignment, student)
        return {grade.name: Grade(grade.score, grade.max_score, grade.auto_score, grade.manual_score)
                for grade in submission.grades}

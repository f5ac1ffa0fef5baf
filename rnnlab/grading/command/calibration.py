"""Before any student: the instructor's solution graded through the students' own path.

The release answered with the solution (:func:`answered_release`) is graded exactly as a
submission is (sandboxed kernel, outside check, a scratch copy of the gradebook) and
nothing of it is recorded. It must earn full marks. When it does not, the set-up is
broken, not the students' work (a kernel that cannot import ``rnnlab``, a sandbox that
hides a package, a solution that fails its own tests), and grading would turn that fault
into everyone's grade: :func:`judge` raises :class:`CalibrationFailed` with the cause in
words, and the command stops before recording anything (exit status 2).

Any error the kernel shows in a cell of the solution stops the run too, even when the
marks are full: a read-only cell that fails in the sandbox (an import, a file) means the
students' notebooks do not run there as they do for the instructor.

When it does, :func:`judge` also says which tests the outside check can judge: those the
solution passes there. A test the solution fails only outside (it needs objects that
cannot cross between processes, such as models trained by a read-only cell) keeps
nbgrader's in-kernel score for every student, and the report notes it.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys

import nbformat

from .records import OK, JobResult, SourceCell

STUDENT = "rnnlab-calibration"
_DELIMITERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
_IMPORT_ERRORS = ("ModuleNotFoundError", "ImportError")


class CalibrationFailed(Exception):
    """The solution did not earn full marks through the grading path; ``causes`` say why."""

    def __init__(self, causes):
        self.causes = list(causes)
        super().__init__("; ".join(self.causes))


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def answered_release(release, solution):
    """A copy of the ``release`` notebook whose answer cells hold the ``solution``'s code
    (the ``### BEGIN/END SOLUTION`` lines removed): what a student who solved it hands in."""
    answers = {_grade_id(c): _DELIMITERS.sub("", c.source) for c in solution.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    answered = copy.deepcopy(release)
    for cell in answered.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    return answered


def write_submission(folder, release_paths: dict, source_paths: dict) -> None:
    """Write the answered release of every notebook (name -> paths) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, release_path in release_paths.items():
        release = nbformat.read(str(release_path), as_version=4)
        solution = nbformat.read(str(source_paths[name]), as_version=4)
        nbformat.write(answered_release(release, solution), str(folder / f"{name}.ipynb"))


def import_cause(where: str, text: str, sandbox) -> str | None:
    """The cause, in words, when ``text`` is an error saying a module could not be imported."""
    found = _MISSING_MODULE.search(text)
    if not found:
        return None
    module = found.group(1)
    top = module.partition(".")[0]
    if top in sandbox.hidden:
        return (f"{where} cannot import {module}: {sandbox.hidden[top]} is not visible (that folder holds the "
                "course, which the sandbox never shows; install the package from another folder)")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return f"{where} cannot import {module}: it is not installed for {sys.executable}"
    location = spec.submodule_search_locations[0] if spec.submodule_search_locations else spec.origin
    return f"{where} cannot import {module}: {location} is not visible"


def _cause(where: str, text: str, sandbox) -> str:
    return import_cause(where, text, sandbox) or text


def judge(result: JobResult, cells: dict, sandbox) -> tuple[dict, list]:
    """The calibration job's ``result`` -> (notebook -> grade ids the outside check judges,
    notes for the report); :class:`CalibrationFailed` unless the solution earned full marks.

    ``cells`` is notebook -> grade_id -> :class:`~.records.SourceCell` (Course.source_cells).
    """
    kernel = "the sandboxed kernel" if sandbox.isolated else "the kernel"
    if result.status != OK:
        reason, detail = result.reason or "error", result.detail
        hint = ""
        if reason in ("kernel did not start", "dead kernel") and sandbox.isolated:
            hint = " (run with --no-sandbox once to see whether bubblewrap is the cause)"
        if reason == "overloaded":
            hint = " (re-run when the machine is less busy)"
        raise CalibrationFailed([f"the solution could not be graded: {reason}: "
                                 f"{_cause(kernel, detail, sandbox)}{hint}"])
    causes, notes, applicable = [], [], {}
    for name, entry in result.notebooks.items():
        errors = entry.errors
        first_import = next((c for c in (import_cause(kernel, e, sandbox) for e in errors.values()) if c), None)
        for grade_id, given in entry.scores.items():
            score, points = given.auto, given.max
            if cells[name].get(grade_id, SourceCell()).solution or score is None or score >= points:
                continue
            why = first_import or _cause(kernel, errors.get(grade_id, "no error shown"), sandbox)
            causes.append(f"{name}/{grade_id}: the solution scores {score:g} of {points:g} in {kernel}: {why}")
        graded = {g for g, info in cells[name].items() if info.grade and not info.solution}
        for where, error in errors.items():
            if where not in graded:  # a read-only or answer cell: full marks or not, the set-up is broken
                causes.append(f"{name}/{where}: the solution's cell fails in {kernel}: {_cause(kernel, error, sandbox)}")
        for failure in entry.replay:
            causes.append(f"{failure} — the solution's cell runs in the kernel but cannot be replayed by the "
                          f"outside check: {_cause('the outside check', failure, sandbox)}")
        applicable[name] = set()
        for grade_id, verdict in entry.outside.items():
            status, message = verdict.status, verdict.message
            if status == "pass":
                applicable[name].add(grade_id)
            elif status in ("unknown", "library") or any(kind in message for kind in _IMPORT_ERRORS):
                causes.append(f"{name}/{grade_id}: the outside check on the solution: "
                              f"{_cause('the outside check', message, sandbox)}")
            else:
                first = next((line for line in message.splitlines() if line.strip()), status)[:200]
                notes.append(f"{name}/{grade_id}: not checked outside the kernel, nbgrader's score stands "
                             f"(the solution does not pass there: {first})")
    if causes:
        raise CalibrationFailed(causes)
    return applicable, notes


def judged_outside(result: JobResult, applicable: dict) -> JobResult:
    """``result`` keeping the outside verdicts of the tests the calibration found the check can judge."""
    for name, entry in result.notebooks.items():
        entry.outside = {g: v for g, v in entry.outside.items() if g in applicable.get(name, ())}
    return result

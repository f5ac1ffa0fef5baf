"""``python -m rnnlab.grading autograde``: every submission of an assignment, in parallel.

The main process loads the course, the gradebook's cells and everything the grading
code imports once, then forks one job per submission (:mod:`rnnlab.grading.job`),
``jobs`` at a time. Forking from a warm process spares each submission the seconds a
new ``nbgrader`` command spends importing. Every job has an outer time limit covering
all its notebooks; past it, the job and everything it started are killed and the
submission is reported as not graded (timeout), while the others go on. Each job works
on its own copy of the gradebook; the main process alone writes the course's gradebook
(:mod:`rnnlab.grading.merge`), one finished submission at a time, and prints the report
(:mod:`rnnlab.grading.report`).
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import importlib
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from collections import deque
from pathlib import Path

import nbformat

from . import job as job_module
from . import merge, outside, report
from .course import Course
from .sandbox import Limits, Sandbox, missing_warning

DEFAULT_TIMEOUT = 600.0      # seconds per notebook, everything included
DEFAULT_CELL_TIMEOUT = 60.0  # seconds per cell (nbgrader's Execute.timeout) and per outside call
_POLL = 0.05


def _imported_modules(sources) -> set:
    """Modules that the instructor's read-only and test cells import."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return names


def preload(cells: dict) -> None:
    """Import in the main process what every job will need, so that forked jobs start warm."""
    import IPython.core.inputtransformer2  # noqa: F401  (the outside check's cell transform)
    import nbconvert.preprocessors  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401

    sources = [info["source"] for notebook in cells.values() for info in notebook.values() if info["locked"]]
    for name in sorted(_imported_modules(sources)):
        try:
            importlib.import_module(name)
        except Exception:  # the kernel will report it; preloading is only a speed-up
            pass


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the main process dies (PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def fork(task, workdir: Path) -> int:
    """Run ``task()`` in a forked process that writes its JSON result to ``workdir/result.json``.

    The child gets its own process group (so that a timeout can kill all of it), dies with
    the main process, logs to ``workdir/job.log`` and uses one torch thread. The main
    process itself never computes with torch, so forking after importing it is safe.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgid(0, 0)
        _die_with_parent()
        log = os.open(workdir / "job.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        (workdir / "result.json").write_text(json.dumps(task()))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def stop(pid: int) -> None:
    """Kill a forked task and everything in its process group; reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _snapshot(db_url: str, target: Path) -> None:
    """A consistent copy of the course's SQLite gradebook (the online backup API)."""
    if not db_url.startswith("sqlite:///"):
        raise ValueError(f"the grading command needs an SQLite gradebook; db_url is {db_url!r}")
    source = sqlite3.connect(db_url[len("sqlite:///"):])
    copy = sqlite3.connect(target)
    with copy:
        source.backup(copy)
    source.close()
    copy.close()


class Runner:
    """Grades ``assignment`` of the course in ``root``; :meth:`run` returns the outcomes.

    After :meth:`run`, ``notes`` lists what the report should say about the whole run
    (tests the outside check cannot judge). ``force`` clears instructors' manual scores
    (:func:`rnnlab.grading.merge.record`); otherwise they hold.
    """

    def __init__(self, root, assignment, students=None, jobs=None, timeout=DEFAULT_TIMEOUT,
                 cell_timeout=None, limits=None, use_bwrap=None, keep_scratch=False, log=print, force=False):
        self.course = Course(root)
        self.assignment = assignment
        self.students = students
        self.jobs = jobs or os.cpu_count() or 1
        if timeout <= 0 or self.jobs < 1:
            raise ValueError(f"timeout and jobs must be positive; got timeout={timeout}, jobs={self.jobs}")
        self.timeout = float(timeout)
        configured = self.course.config.Execute.get("timeout")
        self.cell_timeout = float(cell_timeout or configured or DEFAULT_CELL_TIMEOUT)
        self.sandbox = Sandbox(limits or Limits(), use_bwrap)
        self.keep_scratch = keep_scratch
        self.force = force
        self.log = log
        self.notes = []

    def run(self) -> list:
        """Grade every submission; return the outcomes in student order."""
        if not self.course.has_assignment(self.assignment):
            self.log(f"The gradebook has no {self.assignment!r}: recording it from the source folder.")
            self.course.record_assignment(self.assignment)
        if not self.sandbox.isolated:
            self.log(missing_warning())
        scratch = Path(tempfile.mkdtemp(prefix="rnnlab-grading-"))
        try:
            return self._grade_all(scratch)
        finally:
            if self.keep_scratch:
                self.log(f"Scratch folders (one per job, with logs) kept in {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)

    def _grade_all(self, scratch: Path) -> list:
        course, assignment = self.course, self.assignment
        notebooks = course.notebooks(assignment)
        cells = {name: course.source_cells(assignment, name) for name in notebooks}
        self.max_score = sum(info["points"] for nb in cells.values() for info in nb.values() if info["grade"])
        template = scratch / "gradebook-template.db"
        _snapshot(course.coursedir.db_url, template)
        preload(cells)
        applicable = self._calibrate(scratch, notebooks, cells)
        submissions = course.submissions(assignment, self.students)
        pending = deque(self._job(scratch / f"job-{index}", student, folder, notebooks, cells, applicable, template)
                        for index, (student, folder) in enumerate(submissions.items()))
        limit = self.timeout * len(notebooks)
        self.log(f"Grading {len(pending)} submission(s) of {assignment} with {self.jobs} job(s) at a time, "
                 f"{limit:g} s each at most, cells {self.cell_timeout:g} s, "
                 f"{'sandboxed' if self.sandbox.isolated else 'NOT sandboxed'}.")
        outcomes, running = [], {}
        with course.gradebook() as gradebook:
            while pending or running:
                while pending and len(running) < self.jobs:
                    job = pending.popleft()
                    running[fork(lambda job=job: job_module.run(job), job.workdir)] = (job, time.monotonic() + limit)
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid in running:
                    job, _ = running.pop(pid)
                    outcomes.append(self._finish(job, self._result(job, status, limit), gradebook))
                    continue
                for late, (job, deadline) in list(running.items()):
                    if time.monotonic() > deadline:
                        stop(late)
                        del running[late]
                        outcomes.append(self._finish(job, self._result(job, None, limit), gradebook))
                time.sleep(_POLL)
        return sorted(outcomes, key=lambda o: o.student)

    def _calibrate(self, scratch: Path, notebooks, cells) -> dict:
        """notebook -> the grade ids the outside check judges (see :func:`outside.calibrate`)."""
        applicable = {}
        for name in notebooks:
            source = self.course.folder("source") / self.assignment
            workdir = scratch / f"calibration-{name}"
            shutil.copytree(source, workdir, ignore=shutil.ignore_patterns("*.ipynb"))
            solution = nbformat.read(str(source / f"{name}.ipynb"), as_version=4)
            task = lambda: outside.calibrate(solution, cells[name], self.sandbox, workdir, self.cell_timeout)  # noqa: E731
            pid = fork(task, workdir)
            deadline = time.monotonic() + self.timeout
            while os.waitpid(pid, os.WNOHANG)[0] == 0:
                if time.monotonic() > deadline:
                    stop(pid)
                    break
                time.sleep(_POLL)
            result = workdir / "result.json"
            verdicts = json.loads(result.read_text()) if result.is_file() else {}
            tests = [g for g, info in cells[name].items() if info["grade"] and not info["solution"]]
            applicable[name] = {g for g in tests if verdicts.get(g) == ""}
            for grade_id in tests:
                if grade_id not in applicable[name]:
                    why = verdicts.get(grade_id) or "the calibration on the solution did not finish"
                    self.notes.append(f"{name}/{grade_id}: not checked outside the kernel, nbgrader's score "
                                      f"stands (the solution does not pass there: {why})")
        return applicable

    def _job(self, workdir, student, folder, notebooks, cells, applicable, template):
        workdir.mkdir()
        releases = {}
        for name in notebooks:
            path = self.course.release_notebook(self.assignment, name)
            releases[name] = nbformat.read(str(path), as_version=4) if path.is_file() else None
        return job_module.Job(
            student=student, assignment=self.assignment, submitted=folder, notebooks=notebooks, cells=cells,
            releases=releases, applicable=applicable, course_root=self.course.root,
            source_dir=self.course.folder("source").resolve(), source_setting=self.course.coursedir.source_directory,
            template_db=template, workdir=workdir, sandbox=self.sandbox, cell_timeout=self.cell_timeout,
            config=self.course.config)

    def _finish(self, job, result, gradebook) -> report.Outcome:
        outcome = report.decide(result, self.max_score)
        timestamp = self.course.coursedir.get_existing_timestamp(str(job.submitted))
        merge.record(gradebook, self.assignment, outcome, job.notebooks, timestamp, force=self.force)
        destination = self.course.folder("autograded") / job.student / self.assignment
        merge.place_autograded(result.get("autograded") if outcome.status != "failed" else None, destination)
        self.log(f"  {outcome.student}: {outcome.status}"
                 + (f" ({outcome.reasons[0]})" if outcome.status == "failed" else ""))
        return outcome

    @staticmethod
    def _result(job, status, limit) -> dict:
        """The job's result, or a failure saying why there is none (killed at its limit, crashed)."""
        result_file = job.workdir / "result.json"
        if result_file.is_file():
            return json.loads(result_file.read_text())
        if status is None:
            return {"student": job.student, "status": "failed", "reason": "timeout",
                    "detail": f"grading took longer than {limit:g} s and was stopped", "seconds": limit}
        log_file = job.workdir / "job.log"
        log = log_file.read_text(errors="replace")[-300:].strip() if log_file.exists() else ""
        return {"student": job.student, "status": "failed", "reason": "grader error",
                "detail": f"the job ended with status {status} and no result: {log}"}

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
from . import merge, report
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


def _child(job) -> None:
    """Body of a forked job process: run the job, write its result, never return."""
    code = 1
    try:
        os.setpgid(0, 0)
        _die_with_parent()
        log = os.open(job.workdir / "job.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        result = job_module.run(job)
        (job.workdir / "result.json").write_text(json.dumps(result))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


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
    """Grades ``assignment`` of the course in ``root``; :meth:`run` returns the outcomes."""

    def __init__(self, root, assignment, students=None, jobs=None, timeout=DEFAULT_TIMEOUT,
                 cell_timeout=None, limits=None, use_bwrap=None, keep_scratch=False, log=print):
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
        self.log = log

    def _jobs(self, scratch: Path, template: Path):
        course, assignment = self.course, self.assignment
        notebooks = course.notebooks(assignment)
        cells = {name: course.source_cells(assignment, name) for name in notebooks}
        releases = {}
        for name in notebooks:
            path = course.release_notebook(assignment, name)
            releases[name] = nbformat.read(str(path), as_version=4) if path.is_file() else None
        self.max_score = sum(info["points"] for nb in cells.values() for info in nb.values() if info["grade"])
        preload(cells)
        for index, (student, folder) in enumerate(course.submissions(assignment, self.students).items()):
            workdir = scratch / f"job-{index}"
            workdir.mkdir()
            yield job_module.Job(
                student=student, assignment=assignment, submitted=folder, notebooks=notebooks, cells=cells,
                releases=releases, course_root=course.root, source_dir=course.folder("source").resolve(),
                source_setting=course.coursedir.source_directory, template_db=template, workdir=workdir,
                sandbox=self.sandbox, cell_timeout=self.cell_timeout, config=course.config)

    def _finish(self, job, result, gradebook) -> report.Outcome:
        outcome = report.decide(result, self.max_score)
        timestamp = self.course.coursedir.get_existing_timestamp(str(job.submitted))
        merge.record(gradebook, self.assignment, outcome, job.notebooks, timestamp)
        destination = self.course.folder("autograded") / job.student / self.assignment
        merge.place_autograded(result.get("autograded") if outcome.status != "failed" else None, destination)
        self.log(f"  {outcome.student}: {outcome.status}"
                 + (f" ({outcome.reasons[0]})" if outcome.status == "failed" else ""))
        return outcome

    @staticmethod
    def _result(job, status, limit) -> dict:
        result_file = job.workdir / "result.json"
        if result_file.is_file():
            return json.loads(result_file.read_text())
        if status is None:
            detail = f"grading took longer than {limit:g} s and was stopped"
            return {"student": job.student, "status": "failed", "reason": "timeout", "detail": detail,
                    "seconds": limit}
        log = (job.workdir / "job.log").read_text(errors="replace")[-600:] if (job.workdir / "job.log").exists() else ""
        return {"student": job.student, "status": "failed", "reason": "grader error",
                "detail": f"the job ended with status {status} and no result: {log.strip()[-300:]}"}

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
        outcomes = []
        template = scratch / "gradebook-template.db"
        _snapshot(self.course.coursedir.db_url, template)
        pending = deque(self._jobs(scratch, template))
        limit = self.timeout * max(1, len(pending[0].notebooks)) if pending else self.timeout
        self.log(f"Grading {len(pending)} submission(s) of {self.assignment} with {self.jobs} job(s) at a "
                 f"time, {limit:g} s each at most, cells {self.cell_timeout:g} s"
                 f"{', sandboxed' if self.sandbox.isolated else ', NOT sandboxed'}.")
        running = {}
        with self.course.gradebook() as gradebook:
            while pending or running:
                while pending and len(running) < self.jobs:
                    job = pending.popleft()
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        _child(job)
                    running[pid] = (job, time.monotonic() + limit)
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    now = time.monotonic()
                    for late, (job, deadline) in list(running.items()):
                        if now > deadline:
                            os.killpg(late, signal.SIGKILL)
                            os.waitpid(late, 0)
                            del running[late]
                            outcomes.append(self._finish(job, self._result(job, None, limit), gradebook))
                    time.sleep(_POLL)
                    continue
                if pid in running:
                    job, _ = running.pop(pid)
                    outcomes.append(self._finish(job, self._result(job, status, limit), gradebook))
        return sorted(outcomes, key=lambda o: o.student)

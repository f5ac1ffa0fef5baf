"""``python -m rnnlab.grading autograde``: every submission of an assignment, in parallel.

The main process loads the course, the gradebook's cells and everything the grading
code imports once, then grades the instructor's solution through the students' own path
(:mod:`rnnlab.grading.calibration`): anything less than full marks stops the run before
anything is recorded. It then forks one job per submission (:mod:`rnnlab.grading.job`),
``jobs`` at a time. Forking from a warm process spares each submission the seconds a
new ``nbgrader`` command spends importing. Limits count the CPU seconds of the student's
processes (:mod:`rnnlab.grading.cputime`): ``cell_timeout`` per cell and per call,
``timeout`` per notebook. Each job also has a wall-clock backstop, ``backstop`` times its
CPU budget; past it, the job and everything it started are killed and the submission is
reported as not graded (the grading machine overloaded), while the others go on. Each
job works on its own copy of the gradebook; the main process alone writes the course's
gradebook (:mod:`rnnlab.grading.merge`), one finished submission at a time, and prints
the report (:mod:`rnnlab.grading.report`). Given a Dask scheduler (``scheduler``), the
jobs run on its workers instead (:mod:`rnnlab.grading.remote`); the main process still
holds the gradebook alone (:func:`rnnlab.grading.database.single_writer`).
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
import sys
import tempfile
import time
import traceback
from collections import deque
from pathlib import Path

import nbformat

from . import calibration, cluster, database
from . import job as job_module
from . import merge, report
from .course import Course
from .cputime import OVERLOADED
from .sandbox import Limits, Sandbox, missing_warning

DEFAULT_TIMEOUT = 600.0      # CPU seconds per notebook, everything the student's code runs
DEFAULT_CELL_TIMEOUT = 60.0  # CPU seconds per cell and per outside call
DEFAULT_BACKSTOP = 10.0      # wall-clock backstop of each limit, as a multiple of it
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


def _judged_outside(result: dict, applicable: dict) -> dict:
    """``result`` keeping the outside verdicts of the tests the calibration found the check can judge."""
    for name, entry in result.get("notebooks", {}).items():
        entry["outside"] = {g: v for g, v in entry.get("outside", {}).items() if g in applicable.get(name, ())}
    return result


class Runner:
    """Grades ``assignment`` of the course in ``root``; :meth:`run` returns the outcomes.

    After :meth:`run`, ``notes`` lists what the report should say about the whole run
    (tests the outside check cannot judge). ``force`` clears instructors' manual scores
    (:func:`rnnlab.grading.merge.record`); otherwise they hold.
    """

    def __init__(self, root, assignment, students=None, jobs=None, timeout=DEFAULT_TIMEOUT,
                 cell_timeout=None, limits=None, use_bwrap=None, keep_scratch=False, log=print,
                 backstop=DEFAULT_BACKSTOP, force=False, scheduler=None):
        self.course = Course(root)
        self.assignment = assignment
        self.students = students
        self.jobs = jobs or os.cpu_count() or 1
        if timeout <= 0 or self.jobs < 1 or backstop < 1:
            raise ValueError(f"timeout and jobs must be positive and backstop at least 1; got timeout={timeout}, "
                             f"jobs={self.jobs}, backstop={backstop}")
        self.timeout = float(timeout)
        self.backstop = float(backstop)
        configured = self.course.config.Execute.get("timeout")
        self.cell_timeout = float(cell_timeout or configured or DEFAULT_CELL_TIMEOUT)
        self.sandbox = Sandbox(limits or Limits(), use_bwrap)
        self.keep_scratch = keep_scratch
        self.force = force
        self.log = log
        # A Dask scheduler's address: the jobs then run on its workers (rnnlab.grading.remote).
        self.scheduler = cluster.scheduler_address(scheduler) if scheduler else None
        if self.scheduler and jobs:
            raise ValueError("--jobs does not apply with --scheduler: each Dask worker runs as many jobs at once "
                             "as it has threads (dask worker --nthreads)")
        self.notes = []

    def run(self) -> list:
        """Grade every submission; return the outcomes in student order.

        :class:`~rnnlab.grading.database.GradebookBusy` while another run writes the gradebook.
        """
        with database.single_writer(self.course.coursedir.db_url):
            return self._run()

    def _run(self) -> list:
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
        submissions = course.submissions(assignment, self.students)
        template = scratch / "gradebook-template.db"
        database.snapshot(course.coursedir.db_url, template)
        preload(cells)
        self.sandbox.share_imports(course.root)
        releases = {}
        for name in notebooks:
            path = course.release_notebook(assignment, name)
            releases[name] = nbformat.read(str(path), as_version=4) if path.is_file() else None
        if self.scheduler:
            from . import remote

            return remote.grade(self, scratch, notebooks, cells, releases, template, submissions)
        solution = self._calibration_submission(scratch / "calibration", notebooks)
        calibrating = (scratch / "calibration" / "job", calibration.STUDENT, solution)
        pending = deque([calibrating] + [(scratch / f"job-{index}", student, folder)
                                         for index, (student, folder) in enumerate(submissions.items())])
        budget = self.timeout * len(notebooks)
        self.log(f"Grading the solution, then {len(pending) - 1} submission(s) of {assignment} with {self.jobs} "
                 f"job(s) at a time: {budget:g} CPU s each at most, cells {self.cell_timeout:g} CPU s, wall-clock "
                 f"backstop {self.backstop:g}x, {'sandboxed' if self.sandbox.isolated else 'NOT sandboxed'}.")
        outcomes, running, held, applicable = [], {}, [], None
        with course.gradebook() as gradebook:
            try:
                while pending or running:
                    while pending and len(running) < self.jobs:
                        # A student started before the calibration ends has every test checked
                        # outside; the verdicts the calibration rules out are dropped below.
                        job = self._job(*pending.popleft(), notebooks, cells, releases, template, applicable)
                        running[fork(lambda job=job: job_module.run(job), job.workdir)] = (job, self._deadline(job))
                    finished = []
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid in running:
                        finished.append((running.pop(pid)[0], status))
                    for late, (job, deadline) in list(running.items()):
                        if time.monotonic() > deadline:
                            stop(late)
                            del running[late]
                            finished.append((job, None))
                    for job, status in finished:
                        result = self._result(job, status)
                        if job.workdir == calibrating[0]:
                            # Nothing is recorded before the solution has earned full marks.
                            applicable, notes = calibration.judge(result, cells, self.sandbox)
                            self.notes += notes
                            self.log("  the solution earns full marks: grading goes on.")
                        else:
                            held.append((job, result))
                    if applicable is not None:
                        while held:
                            job, result = held.pop(0)
                            outcomes.append(self._finish(job, _judged_outside(result, applicable), gradebook))
                    if not finished:
                        time.sleep(_POLL)
            finally:
                for pid in running:  # a failed calibration stops the students started beside it
                    stop(pid)
        return sorted(outcomes, key=lambda o: o.student)

    @staticmethod
    def _deadline(job) -> float:
        """When the runner stops a job whatever it is doing: the wall-clock backstop of its CPU budget."""
        return time.monotonic() + job.backstop * job.cpu_budget + 60.0

    def _calibration_submission(self, folder: Path, notebooks) -> Path:
        """The release answered with the solution, as a submitted folder (see :mod:`.calibration`)."""
        source = self.course.folder("source") / self.assignment
        calibration.write_submission(folder / "submitted", {n: self.course.release_notebook(self.assignment, n)
                                                            for n in notebooks},
                                     {n: source / f"{n}.ipynb" for n in notebooks})
        return folder / "submitted"

    def _job(self, workdir, student, folder, notebooks, cells, releases, template, applicable):
        """A job grading ``folder``; its outside check judges the ``applicable`` tests (all while
        the calibration has not said which)."""
        workdir.mkdir(parents=True)
        return job_module.Job(
            student=student, assignment=self.assignment, submitted=folder, notebooks=notebooks, cells=cells,
            releases=releases, applicable=applicable, course_root=self.course.root,
            source_dir=self.course.folder("source").resolve(), source_setting=self.course.coursedir.source_directory,
            template_db=template, workdir=workdir, sandbox=self.sandbox, cell_timeout=self.cell_timeout,
            cpu_budget=self.timeout * len(notebooks), backstop=self.backstop, config=self.course.config)

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
    def _result(job, status) -> dict:
        """The job's result, or a failure saying why there is none (stopped at its backstop, crashed)."""
        result_file = job.workdir / "result.json"
        if result_file.is_file():
            return json.loads(result_file.read_text())
        if status is None:
            wall = job.backstop * job.cpu_budget + 60.0
            return {"student": job.student, "status": "failed", "reason": "overloaded",
                    "detail": f"{OVERLOADED} (the job was still running after {wall:g} s of wall-clock time "
                              f"and was stopped)", "seconds": wall}
        log_file = job.workdir / "job.log"
        log = log_file.read_text(errors="replace")[-300:].strip() if log_file.exists() else ""
        return {"student": job.student, "status": "failed", "reason": "grader error",
                "detail": f"the job ended with status {status} and no result: {log}"}

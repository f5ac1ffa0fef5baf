"""``python -m rnnlab.grading autograde``: every submission of an assignment, in parallel.

The main process loads the course, the gradebook's cells and everything the grading
code imports once, then grades the instructor's solution through the students' own path
(:mod:`rnnlab.grading.command.calibration`): anything less than full marks stops the run before
anything is recorded. It then forks one job per submission (:mod:`rnnlab.grading.command.job`),
``jobs`` at a time. Forking from a warm process spares each submission the seconds a
new ``nbgrader`` command spends importing. Limits count the CPU seconds of the student's
processes (:mod:`rnnlab.grading.command.cputime`): ``cell_timeout`` per cell and per call,
``timeout`` per notebook. Each job also has a wall-clock backstop, ``backstop`` times its
CPU budget; past it, the job and everything it started are killed and the submission is
reported as not graded (the grading machine overloaded), while the others go on. Each
job works on its own copy of the gradebook; the main process alone writes the course's
gradebook (:mod:`rnnlab.grading.command.gradebook`), one finished submission at a time, and prints
the report (:mod:`rnnlab.grading.command.report`). Given a Dask scheduler (``scheduler``), the
jobs run on its workers instead (:mod:`rnnlab.grading.command.remote`); the main process still
holds the gradebook alone (:func:`rnnlab.grading.command.gradebook.single_writer`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path

import nbformat

from . import calibration, cluster, gradebook
from . import job as job_module
from . import outcome as outcome_module
from . import remote
from .course import Course
from .sandbox import Limits, Sandbox, missing_warning

DEFAULT_TIMEOUT = 600.0      # CPU seconds per notebook, everything the student's code runs
DEFAULT_CELL_TIMEOUT = 60.0  # CPU seconds per cell and per outside call
DEFAULT_BACKSTOP = 10.0      # wall-clock backstop of each limit, as a multiple of it


class Runner:
    """Grades ``assignment`` of the course in ``root``; :meth:`run` returns the outcomes.

    After :meth:`run`, ``notes`` lists what the report should say about the whole run
    (tests the outside check cannot judge). ``force`` clears instructors' manual scores
    (:func:`rnnlab.grading.command.gradebook.record`); otherwise they hold.
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
        # A Dask scheduler's address: the jobs then run on its workers (rnnlab.grading.command.remote).
        self.scheduler = cluster.scheduler_address(scheduler) if scheduler else None
        if self.scheduler and jobs:
            raise ValueError("--jobs does not apply with --scheduler: each Dask worker runs as many jobs at once "
                             "as it has threads (dask worker --nthreads)")
        self.notes = []

    def run(self) -> list:
        """Grade every submission; return the outcomes in student order.

        :class:`~rnnlab.grading.command.gradebook.GradebookBusy` while another run writes the gradebook.
        """
        with gradebook.single_writer(self.course.coursedir.db_url):
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
        self.max_score = sum(info.points for nb in cells.values() for info in nb.values() if info.grade)
        submissions = course.submissions(assignment, self.students)
        template = scratch / "gradebook-template.db"
        gradebook.snapshot(course.coursedir.db_url, template)
        job_module.preload(cells)
        self.sandbox.share_imports(course.root)
        releases = {}
        for name in notebooks:
            path = course.release_notebook(assignment, name)
            releases[name] = nbformat.read(str(path), as_version=4) if path.is_file() else None
        if self.scheduler:
            return remote.grade(self, scratch, notebooks, cells, releases, template, submissions)
        solution = self.calibration_submission(scratch / "calibration", notebooks)
        calibrating = (scratch / "calibration" / "job", calibration.STUDENT, solution)
        pending = deque([calibrating] + [(scratch / f"job-{index}", student, folder)
                                         for index, (student, folder) in enumerate(submissions.items())])
        budget = self.timeout * len(notebooks)
        self.log(f"Grading the solution, then {len(pending) - 1} submission(s) of {assignment} with {self.jobs} "
                 f"job(s) at a time: {budget:g} CPU s each at most, cells {self.cell_timeout:g} CPU s, wall-clock "
                 f"backstop {self.backstop:g}x, {'sandboxed' if self.sandbox.isolated else 'NOT sandboxed'}.")
        outcomes, running, held, applicable = [], {}, [], None
        with course.gradebook() as book:
            try:
                while pending or running:
                    while pending and len(running) < self.jobs:
                        # A student started before the calibration ends has every test checked
                        # outside; the verdicts the calibration rules out are dropped below.
                        job = self.new_job(*pending.popleft(), notebooks, cells, releases, template, applicable)
                        running[job_module.fork(lambda job=job: job_module.run(job), job.workdir)] = (job, job_module.deadline(job))
                    finished = []
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid in running:
                        finished.append((running.pop(pid)[0], status))
                    for late, (job, deadline) in list(running.items()):
                        if time.monotonic() > deadline:
                            job_module.stop(late)
                            del running[late]
                            finished.append((job, None))
                    for job, status in finished:
                        result = job_module.collect(job, status)
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
                            outcomes.append(self.finish(job, calibration.judged_outside(result, applicable), book))
                    if not finished:
                        time.sleep(job_module.POLL)
            finally:
                for pid in running:  # a failed calibration stops the students started beside it
                    job_module.stop(pid)
        return sorted(outcomes, key=lambda o: o.student)

    def calibration_submission(self, folder: Path, notebooks) -> Path:
        """The release answered with the solution, as a submitted folder (see :mod:`.calibration`)."""
        source = self.course.folder("source") / self.assignment
        calibration.write_submission(folder / "submitted", {n: self.course.release_notebook(self.assignment, n)
                                                            for n in notebooks},
                                     {n: source / f"{n}.ipynb" for n in notebooks})
        return folder / "submitted"

    def new_job(self, workdir, student, folder, notebooks, cells, releases, template, applicable):
        """A job grading ``folder``; its outside check judges the ``applicable`` tests (all while
        the calibration has not said which)."""
        workdir.mkdir(parents=True)
        return job_module.Job(
            student=student, assignment=self.assignment, submitted=folder, notebooks=notebooks, cells=cells,
            releases=releases, applicable=applicable, course_root=self.course.root,
            source_dir=self.course.folder("source").resolve(), source_setting=self.course.coursedir.source_directory,
            template_db=template, workdir=workdir, sandbox=self.sandbox, cell_timeout=self.cell_timeout,
            cpu_budget=self.timeout * len(notebooks), backstop=self.backstop, config=self.course.config)

    def finish(self, job, result, book) -> outcome_module.Outcome:
        outcome = outcome_module.decide(result, self.max_score)
        timestamp = self.course.coursedir.get_existing_timestamp(str(job.submitted))
        gradebook.record(book, self.assignment, outcome, job.notebooks, timestamp, force=self.force)
        destination = self.course.folder("autograded") / job.student / self.assignment
        gradebook.place_autograded(result.autograded if outcome.status != "failed" else None, destination)
        self.log(f"  {outcome.student}: {outcome.status}"
                 + (f" ({outcome.reasons[0]})" if outcome.status == "failed" else ""))
        return outcome

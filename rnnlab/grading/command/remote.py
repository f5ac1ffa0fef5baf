"""Grading on a Dask cluster: each submission's job runs on a worker, its result is recorded here.

``python -m rnnlab.grading autograde <assignment> --scheduler tcp://<host>:8786`` does
what local grading does up to the jobs (take the gradebook's writer lock, read the
course, copy the gradebook; :mod:`rnnlab.grading.command.runner`), then, in place of forking
them here:

1. checks that every worker runs the grading code, packages and sandbox we run
   (:func:`rnnlab.grading.command.cluster.check_workers`); the workers present now are the
   ones this run uses;
2. sends each of them, once, the gradebook copy and the course kit: ``nbgrader_config.py``
   and the assignment's source folder;
3. sends one task per machine (host) of the cluster that grades the instructor's solution
   as a student's submission (:mod:`rnnlab.grading.command.calibration`), pinned to that
   machine's workers, and beside them one task per submission: the job and the submitted
   folder as bytes. On the worker, :func:`grade_on_worker` lays the job out in a scratch
   folder of its own and grades it in a forked process exactly as locally (the same
   limits, sandbox and outside check, the same wall-clock backstop), and returns the
   result with the autograded folder as bytes;
4. records the students' results in this process, one at a time, once every machine's
   calibration has earned full marks, keeping the outside verdicts of the tests the
   calibration found the check can judge, as local grading does. Less than full marks on
   any machine, or machines judging the solution's tests differently, stops the run
   before anything is recorded, naming the machine.

Start the workers with ``--preload rnnlab.grading.command.remote``: each then imports what
grading needs (nbgrader, the kernel machinery, torch) once when it starts
(:func:`dask_setup`), not during the first job of a run.

A worker lost mid-job (its machine crashed, its process was killed): the job's
processes die with it (``PR_SET_PDEATHSIG``, and the sandbox's own PID namespace), Dask
runs the task again on another worker, and only the result that comes back is recorded,
so nothing is lost and nothing recorded twice. Worker-side scratch folders are removed
after each task (``--keep-scratch`` keeps the main process's only).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import calibration, cluster
from . import job as job_module
from .records import FAILED, JobResult
from .sandbox import Sandbox

KIT_CONFIG_FILES = ("nbgrader_config.py", "nbgrader_config.json")
_CALIBRATION, _STUDENT = "calibration on ", "student "


@dataclasses.dataclass
class Task:
    """What travels to a worker for one job: the job (paths of this machine) and the submitted folder."""

    job: object
    submitted: bytes


def dask_setup(worker) -> None:
    """Dask's hook for ``dask worker --preload rnnlab.grading.command.remote``: import what jobs use, once."""
    import nbconvert.preprocessors  # noqa: F401
    import nbgrader.apps.autogradeapp  # noqa: F401
    import torch  # noqa: F401

    from . import job  # noqa: F401


def course_kit(course, assignment: str) -> bytes:
    """``nbgrader_config.py`` and the assignment's source folder, packed for the workers.

    ValueError when ``CourseDirectory.source_directory`` is absolute (the workers could not rebuild it).
    """
    setting = course.coursedir.source_directory
    if Path(setting).is_absolute():
        raise ValueError(f"CourseDirectory.source_directory is the absolute path {setting!r}: with --scheduler "
                         "it must be relative to the course folder, so that the workers can rebuild it")
    with tempfile.TemporaryDirectory(prefix="rnnlab-kit-") as folder:
        kit = Path(folder)
        for name in KIT_CONFIG_FILES:
            if (course.root / name).is_file():
                shutil.copyfile(course.root / name, kit / name)
        shutil.copytree(course.folder("source") / assignment, kit / setting / assignment, symlinks=False)
        return cluster.pack(kit)


def _run_forked(job) -> JobResult:
    """Grade ``job`` in a forked process as the local runner does, stopped at its wall-clock backstop."""
    pid = job_module.fork(lambda: job_module.run(job), job.workdir)
    deadline = job_module.deadline(job)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return job_module.collect(job, status)
        if time.monotonic() > deadline:
            job_module.stop(pid)
            return job_module.collect(job, None)
        time.sleep(job_module.POLL)


def grade_on_worker(task: Task, kit: bytes, template: bytes) -> JobResult:
    """Run on a Dask worker: grade ``task.job`` there in a forked process; its result.

    ``kit`` is :func:`course_kit`'s archive and ``template`` the gradebook copy's bytes.
    The result's ``autograded`` folder comes back packed, as ``autograded_archive`` bytes.
    """
    job = task.job
    # In the system's temporary folder, as locally: the kernel's IPC sockets live under it, and a socket's
    # path must stay under 108 bytes (the worker's own folder is too deep for that).
    with tempfile.TemporaryDirectory(prefix="rnnlab-grading-", ignore_cleanup_errors=True) as folder:
        scratch = Path(folder)
        course = cluster.unpack(kit, scratch / "course")
        (scratch / "gradebook-template.db").write_bytes(template)
        job_module.preload(job.cells)  # what the instructor's cells import, before the sandbox looks at what is imported
        sandbox = Sandbox(job.sandbox.limits, use_bwrap=job.sandbox.isolated)
        sandbox.share_imports(course)
        rebuilt = {"submitted": cluster.unpack(task.submitted, scratch / "submitted"), "course_root": course,
                   "source_dir": (course / job.source_setting).resolve(),
                   "template_db": scratch / "gradebook-template.db", "workdir": scratch / "job"}
        stale = {f.name for f in dataclasses.fields(job) if isinstance(getattr(job, f.name), Path)} - set(rebuilt)
        if stale:  # a path of the main process's machine would not exist here, or be another folder
            raise RuntimeError(f"grade_on_worker does not rebuild the job's path field(s) {sorted(stale)}")
        local = dataclasses.replace(job, sandbox=sandbox, **rebuilt)
        local.workdir.mkdir()
        result = _run_forked(local)
        if result.autograded:
            result.autograded_archive, result.autograded = cluster.pack(Path(result.autograded)), None
        return result


def _received(job, done: cluster.TaskResult) -> JobResult:
    """The worker's result with its autograded folder unpacked here, where the runner expects it;
    a failure naming the cluster's error when there is no result."""
    if done.error is not None:
        return JobResult(job.student, FAILED, "grader error", f"on the Dask cluster: {done.error}")
    result = done.value
    archive, result.autograded_archive = result.autograded_archive, None
    if archive is not None:
        result.autograded = str(cluster.unpack(archive, job.workdir / "autograded"))
    return result


def _hosts(addresses) -> dict[str, list[str]]:
    """Host -> the addresses of its workers: workers on one machine share its installation."""
    hosts: dict[str, list[str]] = {}
    for address in addresses:
        hosts.setdefault(urlsplit(address).hostname, []).append(address)
    return hosts


def grade(runner, scratch: Path, notebooks, cells, releases, template: Path, submissions: dict) -> list:
    """Grade ``submissions`` (student -> submitted folder) on the cluster at ``runner.scheduler``;
    the outcomes in student order. :class:`~rnnlab.grading.command.calibration.CalibrationFailed` as locally."""
    client = cluster.connect(runner.scheduler)
    try:
        addresses = cluster.check_workers(client)
        hosts = _hosts(addresses)
        shared = tuple(client.scatter([course_kit(runner.course, runner.assignment), template.read_bytes()],
                                      broadcast=True))
        jobs, allowed = {}, {}
        for index, (host, on_host) in enumerate(hosts.items()):
            folder = scratch / f"calibration-{index}"
            solution = runner.calibration_submission(folder, notebooks)
            jobs[_CALIBRATION + host] = runner.new_job(folder / "job", calibration.STUDENT, solution, notebooks,
                                                    cells, releases, template, None)
            allowed[_CALIBRATION + host] = on_host
        for index, (student, folder) in enumerate(submissions.items()):
            # Every test is checked outside; the verdicts the calibration rules out are dropped below.
            jobs[_STUDENT + student] = runner.new_job(scratch / f"job-{index}", student, folder, notebooks, cells,
                                                   releases, template, None)
        tasks = {name: Task(job, cluster.pack(job.submitted)) for name, job in jobs.items()}
        runner.log(f"Grading the solution on each of {len(hosts)} machine(s), then {len(submissions)} "
                   f"submission(s) of {runner.assignment} on {len(addresses)} Dask worker(s) at {runner.scheduler}: "
                   f"{runner.timeout * len(notebooks):g} CPU s each at most, cells {runner.cell_timeout:g} CPU s, "
                   f"wall-clock backstop {runner.backstop:g}x, "
                   f"{'sandboxed' if runner.sandbox.isolated else 'NOT sandboxed'}.")
        outcomes, held, judged = [], [], {}
        with runner.course.gradebook() as gradebook:
            for done in cluster.run_each(client, grade_on_worker, tasks, shared=shared, allowed=allowed,
                                         log=runner.log):
                job, result = jobs[done.name], _received(jobs[done.name], done)
                if not done.name.startswith(_CALIBRATION):
                    held.append((job, result))
                else:
                    host = done.name[len(_CALIBRATION):]
                    try:
                        judged[host] = calibration.judge(result, cells, runner.sandbox)
                    except calibration.CalibrationFailed as failure:
                        raise calibration.CalibrationFailed([f"on {host}: {c}" for c in failure.causes]) from None
                    runner.log(f"  the solution earns full marks on {host}.")
                    if len(judged) == len(hosts):
                        applicable = _agreed(judged)
                        runner.notes += next(iter(judged.values()))[1]
                        runner.log("  grading goes on.")
                if len(judged) == len(hosts):
                    while held:
                        job, result = held.pop(0)
                        outcomes.append(runner.finish(job, calibration.judged_outside(result, applicable), gradebook))
        return sorted(outcomes, key=lambda o: o.student)
    finally:
        client.close()  # the scheduler forgets tasks still queued; running ones end on their own, unheard


def _agreed(judged: dict) -> dict:
    """The calibrations' verdict on which tests the outside check judges, the same on every machine."""
    verdicts = {host: {name: sorted(ids) for name, ids in applicable.items()}
                for host, (applicable, _) in judged.items()}
    if len({repr(sorted(v.items())) for v in verdicts.values()}) > 1:
        raise calibration.CalibrationFailed([f"the machines judge the solution's tests differently: {verdicts}"])
    return next(iter(judged.values()))[0]

"""Grading one student's submission, in its own forked process with its own scratch folder.

A job (1) checks what was submitted: the expected notebook names, files that parse as
notebooks, locked cells as released (:mod:`rnnlab.grading.command.tamper`); (2) runs nbgrader's
autograde for this student alone, in process, on a private copy of the course: a copy of
the gradebook, the submission, the course's config plus the grading overrides, and the
sandboxed kernel (:mod:`rnnlab.grading.command.sandbox`); (3) reads the scores nbgrader saved
and how it ended (a dead kernel, a timeout, ...); (4) runs the outside check
(:mod:`rnnlab.grading.command.recheck`). It returns a :class:`~.records.JobResult`; the runner merges it into the
course's gradebook, so jobs running side by side never write the same database.

Throughout, a :class:`~rnnlab.grading.command.cputime.Watchdog` holds the student's processes
(everything this job starts) to CPU-time limits: per cell of the kernel
(:class:`~.preprocessors.TimedExecute`), per request of the outside check, and for the whole job, each
with its wall-clock backstop. What it stops is reported as "timeout" or "overloaded",
never as a dead kernel or a score.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import importlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps.autogradeapp import AutogradeApp
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config

from . import recheck, records, tamper
from .cputime import OVERLOADED, ProcessTree, Watchdog
from .preprocessors import LimitOutputSize, StderrIsNotFailure, TimedExecute, error_text
from .records import FAILED, JobResult, Judged, NotebookResult, Score

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024

# How nbgrader's log says a notebook could not be graded, first match wins.
_FAILURES = (
    ("kernel did not start", ("before replying to kernel_info", "Kernel didn't respond", "NoSuchKernel")),
    ("dead kernel", ("DeadKernelError", "Kernel died")),
    # nbgrader's own limits are in seconds of the clock, set past the watchdog's backstop:
    # reaching one means the machine, not the answer, was too slow.
    ("overloaded", ("CellTimeoutError", "Timeout waiting for", "UnresponsiveKernelError", "timed out")),
    ("tampered cells", ("add_missing_grade_cells", "Inconsistent checksums", "overwritecells")),
)


@dataclass
class Job:
    """What one job needs; built by the runner before it forks."""

    student: str
    assignment: str
    submitted: Path
    notebooks: list
    cells: dict          # notebook -> grade_id -> gradebook facts (Course.source_cells)
    releases: dict       # notebook -> release NotebookNode or None
    applicable: dict | None  # notebook -> grade ids the outside check judges; None: all
    course_root: Path
    source_dir: Path     # the course's source folder, resolved
    source_setting: str  # CourseDirectory.source_directory as configured
    template_db: Path
    workdir: Path
    sandbox: object
    cell_timeout: float  # CPU seconds per cell and per outside request
    cpu_budget: float    # CPU seconds for everything the student's code runs in this job
    backstop: float      # wall-clock backstop of each limit, as a multiple of it
    config: Config = field(default_factory=Config)


class Failed(Exception):
    """The submission cannot be graded: ``reason`` is one of the report's categories."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _read_notebook(path: Path, name: str):
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise Failed("not a notebook", f"{name}.ipynb is {size / 1e6:.0f} MB, over the {MAX_NOTEBOOK_BYTES >> 20} MiB limit")
    invalid = {}
    try:
        notebook = nbformat.read(str(path), as_version=4, capture_validation_error=invalid)
        if invalid:
            raise invalid["ValidationError"]
    except Exception as exc:  # NotJSONError, ValidationError, UnicodeDecodeError, ...: all mean the same here
        raise Failed("not a notebook", f"{name}.ipynb cannot be read as a notebook: "
                     f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    return notebook


def preflight(job: Job, hide_tests) -> tuple[dict, list]:
    """The submission's notebooks (metadata restored) and the tamper findings, or :class:`Failed`."""
    present = sorted(p.name for p in job.submitted.glob("*.ipynb"))
    notebooks, findings = {}, []
    for name in job.notebooks:
        path = job.submitted / f"{name}.ipynb"
        if not path.is_file() or path.is_symlink():
            raise Failed("wrong file name", f"expected {name}.ipynb; found {', '.join(present) or 'no notebook'}")
        notebook = _read_notebook(path, name)
        for finding in tamper.examine(notebook, job.cells[name], hide_tests, job.releases[name]):
            findings.append(f"tampered: {name}: {finding}" if finding.tampering else f"{name}: {finding}")
        notebooks[name] = notebook
    return notebooks, findings


def _lay_out(job: Job, notebooks: dict) -> Path:
    """A private course folder: gradebook copy, this submission only, the source folder linked."""
    course = job.workdir / "course"
    submitted = course / "submitted" / job.student / job.assignment
    submitted.mkdir(parents=True)
    shutil.copyfile(job.template_db, course / "gradebook.db")
    for item in job.submitted.iterdir():
        # Regular files only: a symlink could make nbgrader copy any host file next to the kernel.
        if item.is_file() and not item.is_symlink() and item.suffix != ".ipynb":
            shutil.copyfile(item, submitted / item.name)
    for name, notebook in notebooks.items():
        nbformat.write(notebook, str(submitted / f"{name}.ipynb"))
    if not os.path.isabs(job.source_setting):  # nbgrader copies the source folder's other files
        link = course / job.source_setting
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(job.source_dir, target_is_directory=True)
    return course



def _overrides(job: Job, course: Path, runtime: Path, watchdog: Watchdog) -> Config:
    """The course's config as nbgrader reads it, plus what this command changes, for autograde only."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)

    wall = job.backstop * job.cell_timeout
    TimedExecute.watchdog = watchdog
    config = Config()
    config.TimedExecute.cpu_timeout = job.cell_timeout
    # nbclient's own limits count seconds of the clock: past the watchdog's backstop, so that
    # the watchdog decides (in CPU seconds), and these only catch what it cannot see.
    config.Execute.timeout = int(wall + 30)
    config.Execute.startup_timeout = int(max(60.0, wall))
    config.Execute.iopub_timeout = int(max(10.0, min(wall, 120.0)))
    config.Execute.shutdown_kernel = "immediate"
    config.Execute.interrupt_on_timeout = True
    config.OverwriteCells.add_missing_cells = True
    config.Autograde.autograde_preprocessors = [
        TimedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, LimitOutputSize, StderrIsNotFailure,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    for key, value in job.sandbox.kernel_config(runtime).items():
        section, name = key.split(".")
        config[section][name] = value
    return config


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def run_nbgrader(job: Job, course: Path, watchdog: Watchdog) -> str:
    """Run nbgrader's autograde for this student on the private course; return its warnings and errors."""
    runtime = job.workdir / "run"
    runtime.mkdir()
    os.environ.update({"JUPYTER_PATH": str(job.workdir / "jupyter"), "TMPDIR": str(runtime),
                       "JUPYTER_RUNTIME_DIR": str(runtime)})
    tempfile.tempdir = str(runtime)  # jupyter_client writes the connection file here; the sandbox sees it
    autograded = course / "autograded" / job.student / job.assignment
    autograded.mkdir(parents=True)
    job.sandbox.write_kernelspec(job.workdir / "jupyter", autograded, runtime)
    collect = _Collect()
    collect.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with contextlib.chdir(job.course_root):
        app = AutogradeApp()
        app.initialize([job.assignment, "--student", job.student, "--force",
                        f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url=sqlite:///{course}/gradebook.db"])
        app.update_config(_overrides(job, course, runtime, watchdog))
        app.log.addHandler(collect)
        try:
            app.start()
            status = 0
        except SystemExit as exc:
            status = exc.code
    log = "\n".join(collect.lines)
    if watchdog.exceeded is not None:
        raise Failed(watchdog.exceeded.reason, watchdog.exceeded.detail)
    if status not in (0, None):
        for reason, signs in _FAILURES:
            if any(sign in log for sign in signs):
                detail = _last_error(log)
                raise Failed(reason, f"{OVERLOADED}: {detail}" if reason == "overloaded" else detail)
        raise Failed("nbgrader error", _last_error(log))
    return log


_EXCEPTION_LINE = re.compile(r"^\s*[\w.]*(Error|Exception|Interrupt|Exit)\b(: .*)?$")


def _last_error(log: str) -> str:
    """The last exception line of nbgrader's log (the end of a traceback), else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (errors or lines or ["no message"])[-1][:300]


def _timed_out_cells(notebook) -> list:
    return [cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {i}"
            for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            and any(o.output_type == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs)]


def in_kernel_scores(job: Job, course: Path, name: str) -> NotebookResult:
    """Scores, comments and late penalty that nbgrader saved privately for notebook ``name``."""
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        notebook = gb.find_submission_notebook(name, job.assignment, job.student)
        return NotebookResult(scores={g.name: Score(g.auto_score, float(g.max_score)) for g in notebook.grades},
                              comments={c.name: c.auto_comment for c in notebook.comments},
                              late_penalty=notebook.late_submission_penalty)


def run(job: Job) -> JobResult:
    """Grade one submission; always returns a result (status OK or FAILED)."""
    started = time.monotonic()
    result = JobResult(job.student)
    hide_tests = ClearHiddenTests(config=job.config)._remove_hidden_test_region
    tree = ProcessTree(os.getpid())
    try:
        with Watchdog(tree, total=job.cpu_budget, backstop=job.backstop) as watchdog:
            _grade(job, result, hide_tests, watchdog)
    except Failed as failure:
        result.status, result.reason, result.detail = FAILED, failure.reason, failure.detail
    result.seconds = round(time.monotonic() - started, 2)
    result.cpu_seconds = round(tree.cpu(), 2)
    return result


def _grade(job: Job, result: JobResult, hide_tests, watchdog: Watchdog) -> None:
    notebooks, result.findings = preflight(job, hide_tests)
    course = _lay_out(job, notebooks)
    result.nbgrader_log = run_nbgrader(job, course, watchdog)[-4000:]
    autograded = course / "autograded" / job.student / job.assignment
    for name in job.notebooks:
        graded = nbformat.read(str(autograded / f"{name}.ipynb"), as_version=4)
        late = _timed_out_cells(graded)
        if late:
            raise Failed("overloaded", f"{OVERLOADED}: {name}: cell(s) {', '.join(map(str, late))} reached nbgrader's "
                         f"wall-clock limit")
        entry = in_kernel_scores(job, course, name)
        entry.errors = _errors(graded)
        scratch = job.workdir / "outside" / name
        shutil.copytree(autograded, scratch, ignore=shutil.ignore_patterns("*.ipynb"))
        steps = recheck.plan(graded, job.cells[name])
        checked = recheck.check(steps, job.sandbox, scratch, job.cell_timeout,
                                None if job.applicable is None else job.applicable.get(name, set()),
                                watchdog=watchdog, paths=job.sandbox.python_path)
        entry.outside = {v.grade_id: Judged(v.status, v.message[:2000]) for v in checked.verdicts}
        entry.replay = [f"{name}: {failure}" for failure in checked.replay]
        result.notebooks[name] = entry
    result.autograded = str(autograded)


def _errors(notebook) -> dict:
    """grade_id (or "cell N") -> the first error the kernel showed in that code cell."""
    errors = {}
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", ()) if cell.cell_type == "code" else ():
            if output.get("output_type") == "error":
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
                errors.setdefault(grade_id, error_text(output, check_name=True)[:500])
    return errors


# Running a job in a process of its own: the local runner forks one per submission, and so
# does each Dask worker (rnnlab.grading.command.remote).

POLL = 0.05  # seconds between looks at the forked jobs
RESULT = "result.json"  # what a forked job leaves in its folder (records.to_json)


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

    sources = [info.source for notebook in cells.values() for info in notebook.values() if info.locked]
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
    """Run ``task()``, which returns a :class:`.records.JobResult`, in a forked process that writes it as JSON to ``workdir/result.json``.

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
        (workdir / RESULT).write_text(records.to_json(task()), encoding="utf-8")
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


def deadline(job: Job) -> float:
    """When a forked job is stopped whatever it is doing: the wall-clock backstop of its CPU budget."""
    return time.monotonic() + job.backstop * job.cpu_budget + 60.0


def collect(job: Job, status) -> JobResult:
    """The result a forked job left in its folder, or a failure saying why there is none (stopped at its backstop, crashed)."""
    result_file = job.workdir / RESULT
    if result_file.is_file():
        try:
            return records.from_json(result_file.read_text(encoding="utf-8"))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            return JobResult(job.student, FAILED, "grader error", f"the job's result file is not a result: {error!r}")
    if status is None:
        wall = job.backstop * job.cpu_budget + 60.0
        return JobResult(job.student, FAILED, "overloaded", f"{OVERLOADED} (the job was still running after {wall:g} "
                         f"s of wall-clock time and was stopped)", seconds=wall)
    log_file = job.workdir / "job.log"
    log = log_file.read_text(errors="replace")[-300:].strip() if log_file.exists() else ""
    return JobResult(job.student, FAILED, "grader error", f"the job ended with status {status} and no result: {log}")

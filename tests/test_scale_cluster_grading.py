"""The grading command on a Dask cluster and a PostgreSQL gradebook, against local grading.

One course, four submissions of ``rnn_forward`` (all answers, none, the first function
only, and one whose kernel dies), graded three times by ``python -m rnnlab.grading
autograde``:

1. locally, two jobs at a time, SQLite gradebook: the reference;
2. with ``--scheduler``, on a ``dask scheduler`` with two ``dask worker`` processes on
   127.0.0.1 (tests/services/dask_cluster.py), on a copy of the course whose gradebook
   is a real PostgreSQL database; meanwhile a second run of the command on the same
   gradebook must stop at once, naming the first;
3. the same again (re-grading), while one worker is killed in the middle of a job (the
   calibration's or a student's: both are tasks the cluster must not lose).

The tests then compare what each run left: the report (every field but timings) and the
gradebook (every table's row count and every cell's scores) must be the same in all
three; nothing of the killed job may outlive its worker. A last test points the command
at a port where no scheduler listens, and asks for ``--jobs`` beside ``--scheduler``:
both stop with a usage error before anything is graded or recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from journeys import course as C
from journeys.servers import descendants, venv_env
from services import gradebooks
from services.dask_cluster import dask_cluster
from services.postgres import postgres_server

# A module-scoped fixture runs three grading runs before the first test: room for a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ASSIGNMENT = "rnn_forward"
COURSE_ID = "rnnlab"
WAIT = 600  # seconds for one grading run, however busy the machine


def _crashing(course: Path) -> nbformat.NotebookNode:
    """The answered release whose first answer cell ends the kernel (os._exit): not graded, never 0."""
    notebook = C.answered_release(course, ASSIGNMENT)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "rnn_cell":
            cell.source += "\nimport os\nos._exit(3)\n"
    return notebook


def _submissions(course: Path) -> None:
    full = C.answered_release(course, ASSIGNMENT)
    first = C.answered_release(course, ASSIGNMENT)
    release = nbformat.read(course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell, bare in zip(first.cells, release.cells):
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.metadata["nbgrader"]["grade_id"] != "rnn_cell":
            cell.source = bare.source
    for student, notebook in (("ada", full), ("bob", release), ("cy", first), ("dee", _crashing(course))):
        C.submit(course, ASSIGNMENT, student, notebook)


def _command(course: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "rnnlab.grading", "autograde", ASSIGNMENT, "--course", str(course), *options]


def _start(course: Path, log: Path, *options: str) -> subprocess.Popen:
    with open(log, "w") as output:
        return subprocess.Popen(_command(course, *options), stdout=output, stderr=subprocess.STDOUT, env=venv_env(),
                                stdin=subprocess.DEVNULL)


def _finish(process: subprocess.Popen, log: Path) -> str:
    try:
        process.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the grading command ran past {WAIT} s:\n{log.read_text()[-3000:]}") from None
    return log.read_text()


def _wait_for(condition, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + WAIT
    while not (found := condition()):
        assert process.poll() is None, f"the command ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
        time.sleep(0.1)
    return found


def gradebook_state(url: str) -> dict:
    return gradebooks.gradebook_state(url, COURSE_ID, ASSIGNMENT)


def _report(course: Path) -> list[dict]:
    """The JSON report without what depends on the clock or the machine's load."""
    rows = json.loads((course / "autograded" / f"grading-report-{ASSIGNMENT}.json").read_text())
    timing = {"seconds", "cpu_seconds", "kernel_seconds"}
    return [{key: value for key, value in row.items() if key not in timing} for row in rows]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three runs; what each left (report, gradebook state), and what the kill showed."""
    root = tmp_path_factory.mktemp("cluster-grading")
    local = C.copy_course(root / "local")
    _submissions(local)
    done = subprocess.run(_command(local, "--jobs", "2"), capture_output=True, text=True, timeout=WAIT,
                          env=venv_env())
    assert done.returncode == 1, done.stdout + done.stderr  # dee's dead kernel: not everything graded
    found = {"local": (_report(local), gradebook_state(f"sqlite:///{local / 'gradebook.db'}"), done.stdout)}

    with postgres_server() as postgres, dask_cluster(root / "dask", workers=2, preload="rnnlab.grading.command.remote") as running:
        shared = C.copy_course(root / "shared")
        shared_submissions = shared / "submitted"
        shutil.copytree(local / "submitted", shared_submissions)
        url = postgres.create_database("gradebook")
        with open(shared / "nbgrader_config.py", "a") as config:
            config.write(f"\nc.CourseDirectory.db_url = {url!r}\n")

        first_log, second_log = root / "first.log", root / "second.log"
        first = _start(shared, first_log, "--scheduler", running.address)
        _wait_for(lambda: "Grading the solution on each" in first_log.read_text(), "the first run to start grading", first, first_log)
        second = _start(shared, second_log, "--scheduler", running.address)
        found["second run"] = (_finish(second, second_log), second.returncode, first.pid)
        output = _finish(first, first_log)
        found["cluster"] = (_report(shared), gradebook_state(url), output, first.returncode)

        regrade_log = root / "regrade.log"
        regrade = _start(shared, regrade_log, "--scheduler", running.address)
        _wait_for(lambda: "then 4 submission(s)" in regrade_log.read_text(), "the jobs", regrade,
                  regrade_log)
        worker = running.workers["worker-0"]
        job = _wait_for(lambda: descendants(worker.pid), "a job on worker-0", regrade, regrade_log)
        running.kill_worker("worker-0")
        deadline = time.monotonic() + 30
        while [pid for pid in job if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [pid for pid in job if Path(f"/proc/{pid}").exists()]
        output = _finish(regrade, regrade_log)
        found["regrade"] = (_report(shared), gradebook_state(url), output, regrade.returncode, job, survivors)
    return found


def test_the_cluster_gives_the_reports_and_grades_of_local_grading(runs):
    local_report, local_state, _ = runs["local"]
    cluster_report, cluster_state, output, status = runs["cluster"]
    assert status == 1, output
    assert cluster_report == local_report
    assert cluster_state == local_state
    statuses = {row["student"]: row["status"] for row in local_report}
    assert statuses == {"ada": "graded", "bob": "graded", "cy": "graded", "dee": "failed"}


def test_a_second_run_on_the_same_gradebook_stops_at_once_naming_the_first(runs):
    output, status, first_pid = runs["second run"]
    assert status == 2, output
    assert "another grading run is writing the gradebook" in output and f"process {first_pid} on" in output, output
    assert "Grading the solution" not in output


def test_a_worker_killed_mid_job_loses_nothing_and_records_nothing_twice(runs):
    cluster_report, cluster_state, _, _ = runs["cluster"]
    report, state, output, status, job, survivors = runs["regrade"]
    assert job, "worker-0 was running a job when it was killed"
    assert survivors == [], "the killed worker's job died with it"
    assert status == 1, output
    assert report == cluster_report, "re-grading after a lost worker gives the same report"
    assert state == cluster_state, "and the same gradebook rows: nothing lost, nothing twice"
    assert state["counts"]["submitted_assignment"] == 4


def test_a_scheduler_that_does_not_answer_or_jobs_beside_it_stop_the_command_before_grading(tmp_path):
    from journeys.servers import free_port

    course = C.copy_course(tmp_path / "course")
    C.submit(course, ASSIGNMENT, "ada", C.answered_release(course, ASSIGNMENT))
    env = venv_env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    silent = subprocess.run(_command(course, "--scheduler", address), capture_output=True, text=True,
                            timeout=WAIT, env=env)
    both = subprocess.run(_command(course, "--scheduler", address, "--jobs", "2"), capture_output=True, text=True,
                          timeout=WAIT, env=env)
    assert silent.returncode == 2, silent.stdout + silent.stderr
    assert f"error: no Dask scheduler answered at {address} within 2 s" in silent.stderr, silent.stderr
    assert both.returncode == 2 and "--jobs does not apply with --scheduler" in both.stderr, both.stderr
    assert not (course / "autograded" / "ada").exists(), "nothing graded"
    state = gradebook_state(f"sqlite:///{course / 'gradebook.db'}")
    assert state["counts"]["submitted_assignment"] == 0 and state["grades"] == {}, "nothing recorded"

"""The grading command against broken, slow and dishonest submissions (tests/adversarial/).

One run of ``python -m rnnlab.grading autograde rnn_forward`` grades every adversarial
student of tests/adversarial/cases.py side by side, in a scratch copy of the course,
while two CPU-bound processes and a memory-hungry one run beside it: the verdicts must
not depend on how busy the machine is. The suite prints a table (case, expected, got)
where "got" is what the report says *and* what the gradebook holds, and fails on any row
that differs. Further tests check what a row cannot show: the loopback server the test
runs was never reached, no process outlived grading, huge outputs were cut, every job
ended within its limits, and the feedback shows no hidden test. The fast tests at the end
check the pieces that decide outcomes without running nbgrader.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from adversarial import notebooks  # noqa: E402
from adversarial.cases import ASSIGNMENT, CASES, FULL, NOTEBOOK, Context  # noqa: E402
from journeys.course import nbgrader  # noqa: E402
from journeys.servers import venv_env  # noqa: E402

NOTEBOOK_NAME = NOTEBOOK

CELL_TIMEOUT = 10   # CPU seconds per cell and per outside call
TIMEOUT = 150       # CPU seconds per notebook, everything included
BACKSTOP = 10       # the wall-clock backstop, a multiple of each limit (the command's default)
JOBS = 2
# Grading 43 students beside three busy processes takes minutes on two quiet cores and far
# longer on a shared machine: the tests that wait for a grading run get more than pytest's
# default (the command's own limits stop anything that hangs long before this).
pytestmark = pytest.mark.timeout(3600)

# What runs beside the grading: two processes that compute without end, and one that
# holds 1.5 GiB, writes every page of it again and again, and allocates it anew.
CPU_HOG = "while True:\n    pass"
MEMORY_HOG = """\
import time
while True:
    block = bytearray(3 << 29)
    for _ in range(20):
        block[::4096] = bytes([block[0] ^ 1]) * (len(block) // 4096)
        time.sleep(0.1)
    del block
"""


@contextlib.contextmanager
def busy_machine():
    """Two CPU-bound processes and a memory-hungry one, for as long as the block runs."""
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for code in (CPU_HOG, CPU_HOG, MEMORY_HOG)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


class LoopbackServer:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, address = self.socket.accept()
            except OSError:
                continue
            self.connections.append(address)
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()


def make_course(root: Path, assignment: str = ASSIGNMENT) -> Path:
    """A scratch course holding one assignment only: config, source and release."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("solutions", "exercises"):
        shutil.copytree(REPO / folder / assignment, root / folder / assignment)
    return root


def context(course: Path, port: int) -> Context:
    read = lambda folder: nbformat.read(course / folder / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)  # noqa: E731
    return Context(read("exercises"), read("solutions"), str(course), port)


def submit(course: Path, student: str, files: dict, assignment: str = ASSIGNMENT) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def grade(course: Path, *options, assignment: str = ASSIGNMENT, env=None):
    """Run the grading command in ``course``; return the process and its wall time."""
    env = venv_env(**(env or {}))
    command = [sys.executable, "-m", "rnnlab.grading", "autograde", assignment, "--jobs", str(JOBS),
               "--cell-timeout", str(CELL_TIMEOUT), "--timeout", str(TIMEOUT), "--backstop", str(BACKSTOP), *options]
    started = time.monotonic()
    done = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=1800)
    return done, time.monotonic() - started


def gradebook_grades(course: Path, assignment: str = ASSIGNMENT) -> dict:
    """student -> list of (grade id, auto score, needs manual grade), read with nbgrader's API."""
    from nbgrader.api import Gradebook

    grades = {}
    with Gradebook(f"sqlite:///{course}/gradebook.db", "rnnlab") as gb:
        for submission in gb.find_assignment(assignment).submissions:
            grades[submission.student.id] = [(g.name, g.auto_score, g.needs_manual_grade)
                                             for nb in submission.notebooks for g in nb.grades]
    return grades


def got(outcome: dict, grades: list) -> str:
    """What the report says about one student, checked against the gradebook."""
    scores = [score for _, score, _ in grades]
    if outcome["status"] == "failed":
        if any(score is not None for score in scores) or not all(review for *_, review in grades):
            return f"failed, yet the gradebook holds scores {scores}"
        return "failed: " + outcome["reasons"][0].split(":")[0]
    total = sum(scores)
    if outcome["score"] is None or abs(total - outcome["score"]) > 1e-9:
        return f"{outcome['status']} {outcome['score']}, yet the gradebook holds {total:g}"
    return f"{outcome['status']} {total:g}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    assert shutil.which("bwrap"), "the grading sandbox needs bubblewrap: `make system-deps` installs it"
    course = make_course(tmp_path_factory.mktemp("adversarial"))
    server = LoopbackServer()
    try:
        ctx = context(course, server.port)
        for case in CASES:
            submit(course, case.student, case.build(ctx))
        scratch = tmp_path_factory.mktemp("scratch")  # the command's temporary folders, this run's alone
        with busy_machine():
            done, wall = grade(course, env={"TMPDIR": str(scratch)})
        time.sleep(0.5)  # a connection in flight would still be counted
    finally:
        server.close()
    print(done.stderr[-3000:])
    report = json.loads((course / "autograded" / f"grading-report-{ASSIGNMENT}.json").read_text())
    return SimpleNamespace(course=course, scratch=scratch, done=done, wall=wall, server=server,
                           outcomes={o["student"]: o for o in report}, grades=gradebook_grades(course))


@pytest.mark.slow
def test_every_adversarial_case_is_graded_as_expected(graded):
    rows = [(case.student, case.expected, got(graded.outcomes[case.student], graded.grades.get(case.student, [])))
            if case.student in graded.outcomes else (case.student, case.expected, "missing from the report")
            for case in CASES]
    width = max(len(case.student) for case in CASES)
    lines = [f"{'case':<{width}}  {'expected':<24} got"]
    lines += [f"{name:<{width}}  {expected:<24} {result}{'' if expected == result else '   <-- DIFFERS'}"
              for name, expected, result in rows]
    print("\n" + "\n".join(lines) + f"\n{len(CASES)} students graded in one command run in {graded.wall:.0f} s, "
          "beside two CPU-bound processes and a memory-hungry one")
    print(graded.done.stdout)
    assert all(expected == result for _, expected, result in rows), "\n".join(lines)


@pytest.mark.slow
def test_exit_status_says_not_everything_was_graded(graded):
    assert graded.done.returncode == 1, graded.done.stderr[-2000:]
    assert "NOT graded" in graded.done.stdout


@pytest.mark.slow
def test_flagged_cells_wait_for_an_instructor(graded):
    """A disagreement leaves the disputed cells marked for manual grading, with the lower score."""
    for student in ("patch_numpy", "patch_rnnlab", "ipython_hooks", "detects_nbgrader"):
        reviewed = [name for name, score, review in graded.grades[student] if review]
        assert reviewed, f"{student}: no cell marked for manual grading"
        assert any("outside check disagrees" in r for r in graded.outcomes[student]["reasons"])


@pytest.mark.slow
def test_each_new_kind_is_named_in_the_report(graded):
    reasons = {student: " | ".join(graded.outcomes[student]["reasons"]) for student in graded.outcomes}
    assert "rnn_forward: duplicated cell rnn_cell (2 copies" in reasons["split_answer"]
    assert "rnn_forward: duplicated cell test_rnn_forward (3 copies" in reasons["pasted_test_thrice"]
    assert "tampered" not in reasons["split_answer"] + reasons["pasted_test_twice"]
    assert ("not replayable outside the kernel: rnn_forward: cell rnn_cell at line 1: _session = "
            "get_ipython().kernel.session.session") in reasons["not_replayable"]
    assert "AttributeError" in reasons["not_replayable"]
    for student, function, evidence in (("library_rnnlab", "rnn_cell", "rnnlab.cells.rnn_cell"),
                                        ("library_functional", "rnn_cell", "rnn_tanh_cell"),
                                        ("library_module", "rnn_forward", "torch.nn.RNN")):
        assert f"uses a library implementation of {function}: " in reasons[student], reasons[student]
        assert evidence in reasons[student] and "0 stands until you decide" in reasons[student]
    for student in ("torch_arithmetic", "cell_magic_time", "list_subclass", "int_subclass", "relu_for_tanh"):
        assert reasons[student] == "", (student, reasons[student])


@pytest.mark.slow
def test_tampered_cells_are_reported(graded):
    reasons = {s: " ".join(graded.outcomes[s]["reasons"]) for s in ("edited_test", "deleted_tests", "stripped_metadata")}
    assert "test_rnn_cell: edited" in reasons["edited_test"]
    assert "test_rnn_forward: deleted" in reasons["deleted_tests"]
    assert "test_rnn_forward_hidden: deleted" in reasons["deleted_tests"]
    assert "test_rnn_forward: deleted" in " ".join(graded.outcomes["deleted_answer_and_tests"]["reasons"])
    assert "metadata restored" in reasons["stripped_metadata"]


@pytest.mark.slow
def test_student_code_never_reached_the_loopback_server(graded):
    assert graded.server.connections == []


@pytest.mark.slow
def test_no_student_process_outlives_grading(graded):
    survivors = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(graded.scratch).encode() in command:
            survivors.append(command.replace(b"\0", b" ")[:200])
    assert survivors == []


@pytest.mark.slow
def test_every_job_ended_within_its_limits(graded):
    """The loops reach their CPU limit, not the wall-clock backstop, however busy the machine."""
    for student, outcome in graded.outcomes.items():
        assert outcome["seconds"] <= BACKSTOP * TIMEOUT + 60, f"{student} took {outcome['seconds']} s"
    for student in ("infinite_loop", "ignores_interrupt"):
        reason = graded.outcomes[student]["reasons"][0]
        assert reason.startswith("timeout") and f"more than {CELL_TIMEOUT} CPU s" in reason, reason


@pytest.mark.slow
def test_huge_outputs_are_cut_in_the_autograded_notebook(graded):
    for student in ("print_100mb", "huge_image"):
        path = graded.course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert path.stat().st_size < 2_000_000, f"{student}: {path.stat().st_size} bytes"
        assert "removed by the grader" in path.read_text()


@pytest.mark.slow
def test_feedback_shows_scores_and_messages_but_no_hidden_test(graded):
    done = subprocess.run([sys.executable, "-m", "rnnlab.grading", "feedback", ASSIGNMENT,
                           "--student", "unanswered", "--student", "correct"],
                          cwd=graded.course, env=venv_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for student in ("unanswered", "correct"):
        html = (graded.course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "hidden=True" not in html and "BEGIN HIDDEN TESTS" not in html
        assert "hidden tests: not shown in the feedback" in html
    unanswered = (graded.course / "feedback" / "unanswered" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "rnn_cell is not written yet" in unanswered
    assert f"0.0 / {FULL:.1f}" in unanswered.replace("\n", " ") or f"Score: 0.0 / {FULL:.1f}" in unanswered


@pytest.mark.slow
def test_without_the_sandbox_the_command_warns_and_the_gaps_show(tmp_path):
    """--no-sandbox (what a machine without bwrap gets): a loud warning, and reading
    solutions/ works again, which is what the sandbox prevents in the run above."""
    course = make_course(tmp_path)
    ctx = context(course, port=9)  # the network case is not built here
    for case in CASES:
        if case.student in ("correct", "reads_solutions"):
            submit(course, case.student, case.build(ctx))
    done, _ = grade(course, "--no-sandbox")
    assert "WARNING: bubblewrap (bwrap) is not installed" in done.stderr + done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    grades = gradebook_grades(course)
    assert sum(score for _, score, _ in grades["correct"]) == FULL
    assert sum(score for _, score, _ in grades["reads_solutions"]) == FULL


# --- the field cases (/work/shared/field-cases/grading_*.py), and courses anywhere on disk -------

def field_notebook(assignment, overrides=None, edit=None):
    """The release answered with the solution, ``overrides`` (grade id -> source), then ``edit``."""
    read = lambda folder: nbformat.read(REPO / folder / assignment / f"{assignment}.ipynb", as_version=4)  # noqa: E731
    notebook = notebooks.answered(read("exercises"), read("solutions"), overrides)
    return nbformat.writes(edit(notebook) if edit else notebook).encode()


def grade_field(tmp_path, assignment, students: dict):
    course = make_course(tmp_path / "course", assignment)
    for student, data in students.items():
        submit(course, student, {f"{assignment}.ipynb": data}, assignment)
    done, _ = grade(course, assignment=assignment)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((course / "autograded" / f"grading-report-{assignment}.json").read_text())
    return course, {o["student"]: o for o in report}, done


def answer_of(assignment, grade_id):
    source = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return notebooks.solution_sources(source)[grade_id]


GRU_LIBRARY = """\
import torch
from torch import _VF as ops

def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return ops.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
"""


@pytest.mark.slow
def test_field_cases_magics_and_duplicated_cells_keep_their_marks(tmp_path):
    """grading_cell_magic_in_answer.py and grading_duplicated_nbgrader_cells.py, with more instances."""
    a = "gru_cell"
    cell, forward = answer_of(a, "gru_cell"), answer_of(a, "gru_forward")
    students = {
        "correct": field_notebook(a),
        "time_magic": field_notebook(a, {"gru_cell": "%%time\n" + cell}),
        "capture_magic": field_notebook(a, {"gru_forward": "%%capture\n" + forward}),
        "timeit_magic": field_notebook(a, {"gru_forward": forward + "\n%timeit -n 1 -r 1 gru_forward("
                                           "torch.ones(2, 1, 3), torch.ones(1, 2), torch.ones(6, 3), torch.ones(6, 2), "
                                           "torch.ones(6), torch.ones(6))"}),
        "split_answer": field_notebook(a, edit=lambda nb: notebooks.duplicated(nb, "gru_cell", 2,
                                                                               first_source="import numpy as np")),
        "split_in_three": field_notebook(a, edit=lambda nb: notebooks.duplicated(nb, "gru_cell", 3,
                                                                                 first_source="import numpy as np")),
        "pasted_test_cell": field_notebook(a, edit=lambda nb: notebooks.duplicated(nb, "test_gru_cell", 2)),
        "pasted_thrice": field_notebook(a, edit=lambda nb: notebooks.duplicated(nb, "test_gru_forward_hidden", 3)),
        "library_vf": field_notebook(a, {"gru_cell": GRU_LIBRARY}),
    }
    course, outcomes, _ = grade_field(tmp_path, a, students)
    full = f"{outcomes['correct']['max_score']:g}"
    assert outcomes["correct"]["status"] == "graded" and f"{outcomes['correct']['score']:g}" == full
    for student in ("time_magic", "capture_magic", "timeit_magic"):
        assert (outcomes[student]["status"], f"{outcomes[student]['score']:g}") == ("graded", full), outcomes[student]
    for student, grade_id, copies in (("split_answer", "gru_cell", 2), ("split_in_three", "gru_cell", 3),
                                      ("pasted_test_cell", "test_gru_cell", 2),
                                      ("pasted_thrice", "test_gru_forward_hidden", 3)):
        outcome = outcomes[student]
        assert (outcome["status"], f"{outcome['score']:g}") == ("flagged", full), outcome
        assert any(f"duplicated cell {grade_id} ({copies} copies" in r for r in outcome["reasons"]), outcome["reasons"]
    library = outcomes["library_vf"]
    assert library["status"] == "flagged" and library["score"] == 0, library
    assert any("uses a library implementation of gru_cell: torch operator gru_cell" in r for r in library["reasons"])

    # Plain nbgrader with the course's config grades the duplicated cells too (no KeyError).
    plain = make_course(tmp_path / "plain", a)
    for student in ("split_answer", "pasted_thrice"):
        submit(plain, student, {f"{a}.ipynb": students[student]}, a)
    for command in (["generate_assignment", a, "--force"], ["autograde", a]):
        nbgrader(plain, *command, timeout=900)
    for student, grades in gradebook_grades(plain, a).items():
        assert sum(score for _, score, _ in grades) == float(full), (student, grades)


@pytest.mark.slow
def test_field_case_namedtuple_and_other_containers_keep_their_marks(tmp_path):
    """grading_namedtuple_state.py, with a tuple subclass and a list as the returned pair."""
    a = "lstm_cell"
    cell = answer_of(a, "lstm_cell")
    named = ("from collections import namedtuple\nLSTMState = namedtuple('LSTMState', ['hx', 'cx'])\n\n"
             + cell.replace("return h_new, c_new", "return LSTMState(h_new, c_new)"))
    subclass = ("class State(tuple):\n    pass\n\n" + cell.replace("return h_new, c_new", "return State((h_new, c_new))"))
    as_list = cell.replace("return h_new, c_new", "return [h_new, c_new]")
    assert len({cell, named, subclass, as_list}) == 4
    students = {"correct": field_notebook(a), "namedtuple_state": field_notebook(a, {"lstm_cell": named}),
                "tuple_subclass": field_notebook(a, {"lstm_cell": subclass}),
                "list_pair": field_notebook(a, {"lstm_cell": as_list})}
    _, outcomes, _ = grade_field(tmp_path, a, students)
    full = outcomes["correct"]["max_score"]
    for student in students:
        assert (outcomes[student]["status"], outcomes[student]["score"]) == ("graded", full), outcomes[student]


WHERE = "import rnnlab\nprint('rnnlab imported from', rnnlab.__file__)\n"


def clone(root: Path, assignment: str = ASSIGNMENT) -> Path:
    """A copy of the repository's course with its own rnnlab/, elsewhere on disk (a git clone)."""
    course = make_course(root, assignment)
    shutil.copytree(REPO / "rnnlab", course / "rnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    return course


@pytest.mark.slow
def test_a_course_cloned_elsewhere_grades_with_its_own_rnnlab(tmp_path):
    """The venv's rnnlab is installed (editable) from this checkout; the clone's own rnnlab is
    the one the grader imports (python -m from the clone), and the kernel must see it too."""
    course = clone(tmp_path / "clone")
    rnn_cell = answer_of(ASSIGNMENT, "rnn_cell")
    submit(course, "correct", {NOTEBOOK_NAME: field_notebook(ASSIGNMENT, {"rnn_cell": WHERE + rnn_cell})})
    submit(course, "relu", {NOTEBOOK_NAME: field_notebook(ASSIGNMENT, {"rnn_cell": rnn_cell.replace(
        "np.tanh(", "np.maximum(0.0, ")})})
    done, _ = grade(course)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    grades = gradebook_grades(course)
    assert sum(score for _, score, _ in grades["correct"]) == FULL
    assert sum(score for _, score, _ in grades["relu"]) == 2
    graded_nb = (course / "autograded" / "correct" / ASSIGNMENT / NOTEBOOK_NAME).read_text()
    assert f"rnnlab imported from {course.resolve() / 'rnnlab' / '__init__.py'}" in graded_nb


@pytest.mark.slow
def test_a_solution_that_fails_its_tests_stops_the_run_before_anything_is_recorded(tmp_path):
    course = make_course(tmp_path / "course")
    source = course / "solutions" / ASSIGNMENT / NOTEBOOK_NAME
    solution = nbformat.read(source, as_version=4)
    answer = notebooks.cell(solution, "rnn_cell")
    answer.source = answer.source.replace("np.tanh(", "np.maximum(0.0, ")
    nbformat.write(solution, source)
    submit(course, "correct", {NOTEBOOK_NAME: field_notebook(ASSIGNMENT)})
    done, _ = grade(course)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert ("rnn_forward/test_rnn_cell: the solution scores 0 of 2 in the sandboxed kernel: CheckFailed: "
            "rnn_cell is wrong") in done.stderr
    assert "apply ReLU there instead of tanh" in done.stderr
    assert gradebook_grades(course) == {}
    assert not (course / "autograded").exists()


@pytest.mark.slow
def test_a_package_the_sandbox_must_not_show_is_named_as_the_cause(tmp_path):
    """A package whose folder holds the course is never shown to the student's code, so a
    course that needs it cannot be graded: the run stops and says which folder and why."""
    package = tmp_path / "site" / "coursehelpers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("WELCOME = 'hello'\n")
    course = make_course(package / "course")
    for folder in ("solutions", "exercises"):
        path = course / folder / ASSIGNMENT / NOTEBOOK_NAME
        notebook = nbformat.read(path, as_version=4)
        first = next(c for c in notebook.cells if c.cell_type == "code")
        first.source += "\nimport coursehelpers"
        nbformat.write(notebook, path)
    submit(course, "correct", {NOTEBOOK_NAME: nbformat.writes(notebooks.answered(
        nbformat.read(course / "exercises" / ASSIGNMENT / NOTEBOOK_NAME, as_version=4),
        nbformat.read(course / "solutions" / ASSIGNMENT / NOTEBOOK_NAME, as_version=4))).encode()})
    done, _ = grade(course, env={"PYTHONPATH": str(package.parent)})
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert (f"the sandboxed kernel cannot import coursehelpers: {package.resolve()} is not visible (that folder "
            "holds the course") in done.stderr, done.stderr[-3000:]
    assert gradebook_grades(course) == {}


# --- the pieces that decide outcomes, without nbgrader -------------------------------------


def test_wire_decoding_builds_only_plain_values():
    from rnnlab.grading.command.recheck import wire

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    decoded = wire.decode(wire.encode({"x": (np.arange(6.0).reshape(2, 3), 3, "s", None), "y": AlwaysEqual()}))
    assert isinstance(decoded["y"], wire.Unreadable) and type(decoded["y"]).__name__ == "AlwaysEqual"
    assert decoded["y"] != 1 and not (decoded["y"] == decoded["y"].__class__())
    np.testing.assert_array_equal(decoded["x"][0], np.arange(6.0).reshape(2, 3))
    hostile = [
        {"ndarray": {"dtype": "object", "shape": [1], "data": ""}},
        {"ndarray": {"dtype": "float64", "shape": [4], "data": "AAAAAAAAAAA="}},  # 8 bytes for 4 floats
        {"ndarray": {"dtype": "float64", "shape": [-1], "data": ""}},
        {"evil": "x"},
        {"list": [1], "tuple": [2]},
        [1, 2],
    ]
    for message in hostile:
        with pytest.raises(wire.WireError):
            wire.decode(message)
    nested = 1
    for _ in range(100):
        nested = {"list": [nested]}
    with pytest.raises(wire.WireError):
        wire.decode(nested)


def test_lower_score_stands_when_the_checks_disagree():
    from rnnlab.grading.command.outcome import decide
    from rnnlab.grading.command.records import JobResult, Judged, NotebookResult, Score

    result = JobResult("s", seconds=1.0, notebooks={"nb": NotebookResult(
        scores={"t1": Score(2.0, 2.0), "t2": Score(1.0, 1.0), "t3": Score(0.0, 1.0)},
        outside={"t1": Judged("pass"), "t2": Judged("fail", "AssertionError: wrong"), "t3": Judged("pass")})})
    outcome = decide(result, max_score=4.0)
    assert outcome.status == "flagged" and outcome.score == 2.0
    assert outcome.cells["nb"] == {"t1": [2.0, False], "t2": [0.0, True], "t3": [0.0, True]}
    result.notebooks["nb"].outside["t2"] = Judged("unknown", "timeout: no answer within 10 s")
    assert decide(result, max_score=4.0).status == "failed"
    assert decide(result, max_score=4.0).reasons[0].startswith("timeout")


def test_a_job_result_comes_back_whole_from_a_forked_process(tmp_path):
    """A job's result crosses from the forked job to the runner as JSON (and from a Dask worker
    pickled): every record it holds comes back equal; a result file that is not one (a pickle,
    say) is never unpickled and becomes a grader error, not a crash."""
    import pickle

    from rnnlab.grading.command import job, records
    from rnnlab.grading.command.records import JobResult, Judged, NotebookResult, Score, SourceCell

    result = JobResult("s", findings=["nb: duplicated cell"], seconds=2.5, autograded=str(tmp_path), notebooks={
        "nb": NotebookResult(scores={"t": Score(None, 2.0)}, comments={"a": None}, late_penalty=1.0,
                             errors={"t": "CheckFailed: wrong"}, outside={"t": Judged("fail", "wrong")},
                             replay=["nb: cell 3: NameError"])})
    assert pickle.loads(pickle.dumps(SourceCell("x = 1", locked=True))) == SourceCell("x = 1", locked=True)
    task = SimpleNamespace(student="s", workdir=tmp_path, backstop=1.0, cpu_budget=1.0)
    pid = job.fork(lambda: result, tmp_path)
    _, status = os.waitpid(pid, 0)
    assert job.collect(task, status) == result
    archived = JobResult("s", autograded_archive=bytes(range(256)))
    assert pickle.loads(pickle.dumps(archived)) == archived
    assert records.from_json(records.to_json(archived)) == archived
    (tmp_path / job.RESULT).write_bytes(pickle.dumps(result))
    assert job.collect(task, 0).reason == "grader error"
    (tmp_path / job.RESULT).unlink()
    assert job.collect(task, None).status == "failed" and job.collect(task, None).reason == "overloaded"


def recorded_cells(source, release) -> dict:
    """The cells as generate_assignment records them in the gradebook: locked ones with their
    hidden tests, answer cells as released."""
    from rnnlab.grading.command.records import SourceCell

    cells = {}
    for cell in source.cells:
        meta = cell.metadata["nbgrader"]
        text = cell.source if meta.get("locked") else notebooks.cell(release, meta["grade_id"]).source
        cells[meta["grade_id"]] = SourceCell(source=text, cell_type=cell.cell_type, locked=meta.get("locked", False),
                                             grade=meta.get("grade", False), solution=meta.get("solution", False),
                                             points=float(meta.get("points", 0.0)))
    return cells


def test_tamper_finds_edits_deletions_and_restores_stripped_metadata():
    from nbgrader.preprocessors import ClearHiddenTests

    from rnnlab.grading.command import tamper

    read = lambda folder: nbformat.read(REPO / folder / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)  # noqa: E731
    release, source = read("exercises"), read("solutions")
    cells = recorded_cells(source, release)
    hide = ClearHiddenTests()._remove_hidden_test_region
    assert tamper.examine(notebooks.answered(release, source), cells, hide, release) == []
    edited = notebooks.answered(release, source)
    notebooks.cell(edited, "test_rnn_cell").source = "pass"
    assert [(f.grade_id, f.change) for f in tamper.examine(edited, cells, hide, release)] == [("test_rnn_cell", "edited")]
    deleted = notebooks.without(release, ["rnn_forward", "test_rnn_forward"])
    assert [(f.grade_id, f.change) for f in tamper.examine(deleted, cells, hide, release)] == [
        ("test_rnn_forward", "deleted")]
    kept = [notebooks.grade_id(c) for c in release.cells if notebooks.grade_id(c) != "rnn_forward"]
    assert [notebooks.grade_id(c) for c in deleted.cells] == kept  # put back where it was released
    stripped = notebooks.stripped(release)
    findings = tamper.examine(stripped, cells, hide, release)
    assert [(f.grade_id, f.change) for f in findings] == [(f"{len(release.cells)} cells", "metadata restored")]
    assert [notebooks.grade_id(c) for c in stripped.cells] == [notebooks.grade_id(c) for c in release.cells]

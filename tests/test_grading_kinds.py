"""The kinds of input the grading command must handle, each with several instances, without nbgrader.

- answers travel between processes as data whatever their container (rnnlab.grading.command.recheck.wire);
- answer cells replay with IPython's semantics in the outside check (rnnlab.grading.command.recheck.child);
- calls of a library's implementation are seen under any alias, ordinary arithmetic is not
  (rnnlab.grading.command.recheck.tracing, rnnlab.grading.command.recheck.reference_use);
- limits count CPU seconds, and the backstop tells a busy machine from a waiting answer
  (rnnlab.grading.command.cputime);
- duplicated nbgrader cells are kept as the last copy (rnnlab.grading.command.tamper);
- the calibration names the cause when the solution does not earn full marks
  (rnnlab.grading.command.calibration);
- the sandbox shows the packages the grader imported from elsewhere (rnnlab.grading.command.sandbox).

The end-to-end runs of the command are in tests/test_grading_adversarial.py.
"""

from __future__ import annotations

import collections
import copy
import enum
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch

import rnnlab
from rnnlab.grading.command import calibration, preprocessors, tamper
from rnnlab.grading.command.recheck import reference_use, wire
from rnnlab.grading.command.records import JobResult, Judged, NotebookResult, Score, SourceCell
from rnnlab.grading.command.cputime import ProcessTree, Watchdog, stalled

REPO = Path(__file__).resolve().parents[1]
RECHECK = REPO / "rnnlab" / "grading" / "command" / "recheck"  # loaded by path, as the child does


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_test_{name}", RECHECK / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- answers travel as data --------------------------------------------------------------

LSTMState = collections.namedtuple("LSTMState", ["hx", "cx"])


class Grads(dict):
    pass


class States(list):
    pass


class Pair(tuple):
    pass


class Count(int):
    def __eq__(self, other):  # lies: the grader must see the number, not this
        return True

    __hash__ = int.__hash__


class Size(enum.IntEnum):
    HIDDEN = 16


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (np.ndarray, np.generic)):
        return (type(b) is type(a) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
                and (np.array_equal(a, b) if a.dtype.kind not in "fc" else np.array_equal(a, b, equal_nan=True)))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, set, frozenset)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(sorted(a, key=repr) if isinstance(a, (set, frozenset))
                                                                  else a, sorted(b, key=repr)
                                                                  if isinstance(b, (set, frozenset)) else b))
    return a == b and type(a) is type(b)


def roundtrip(value):
    return wire.decode(json.loads(json.dumps(wire.encode(value))))


@pytest.mark.parametrize("value,kind", [
    (LSTMState(np.ones((2, 3)), np.zeros((2, 3))), "LSTMState"),
    (LSTMState(torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.float64)), "LSTMState"),
    (Pair((np.ones(2), np.ones(2))), "tuple"),
    (States([np.ones(3), np.zeros(3)]), "list"),
    (Grads(weight_ih=np.ones((2, 2)), bias_ih=np.ones(2)), "dict"),
    (collections.OrderedDict(weight_hh=np.eye(2)), "dict"),
    (collections.defaultdict(list, {"norms": [1.0, 2.0]}), "dict"),
    ({0: np.ones(1), (1, "b"): "tuple key"}, "dict"),
], ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_containers_cross_as_their_plain_or_named_kind_with_values_intact(value, kind):
    decoded = roundtrip(value)
    assert type(decoded).__name__ == kind
    plain = dict(value) if isinstance(value, dict) else list(value)
    got = dict(decoded) if isinstance(decoded, dict) else list(decoded)
    assert _same(plain, got)
    if kind == "LSTMState":
        assert decoded._fields == ("hx", "cx") and _same(decoded.hx, value.hx)


@pytest.mark.parametrize("value", [
    np.float64(1.5), np.float32(-2.25), np.float16(0.5), np.int64(7), np.uint8(255), np.bool_(True),
    np.complex64(1 + 2j), np.str_("h_t"), np.datetime64("2024-01-02"),
    np.arange(6, dtype=np.int8).reshape(2, 3), np.ones((2, 2), dtype=np.float32).T, np.array([1 + 1j, 2j]),
    np.array(["ab", "c"]), np.array([1, 2], dtype="datetime64[D]"), np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")]),
    np.array([np.nan, np.inf, -0.0]), np.ones((0, 3)), np.array(3.0), np.array([1, "x", None], dtype=object),
    np.ones(3, dtype=">f8"),
], ids=lambda v: f"{type(v).__name__}-{v.dtype}")
def test_numpy_values_of_any_dtype_cross_intact(value):
    decoded = roundtrip(value)
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        assert decoded.dtype == object and decoded.tolist() == value.tolist()
    elif isinstance(value, np.ndarray) and value.dtype.byteorder == ">":
        assert decoded.dtype.newbyteorder("=") == value.dtype.newbyteorder("=") and np.array_equal(decoded, value)
    else:
        assert _same(value, decoded)


@pytest.mark.parametrize("value", [
    torch.ones(2, 3), torch.arange(4, dtype=torch.int64), torch.ones(2, dtype=torch.bfloat16),
    torch.tensor([1 + 2j]), torch.tensor([True, False]), torch.ones(3, dtype=torch.float16),
    torch.ones(2, 2, requires_grad=True), torch.nn.Parameter(torch.zeros(2)), torch.ones(3, 4)[:, 1],
    torch.eye(3).to_sparse(),
], ids=lambda v: str(v.dtype))
def test_tensors_of_any_dtype_cross_intact(value):
    decoded = roundtrip(value)
    expected = value.detach().to_dense() if value.layout != torch.strided else value.detach()
    assert isinstance(decoded, torch.Tensor) and decoded.dtype == expected.dtype and torch.equal(decoded.detach(), expected)
    assert decoded.requires_grad == value.requires_grad


@pytest.mark.parametrize("value,plain", [(Count(5), 5), (Size.HIDDEN, 16), (True, True), (3 + 4j, 3 + 4j),
                                         (b"\x00\xff", b"\x00\xff"), ({1, 2}, {1, 2}), (frozenset({"a"}), frozenset({"a"}))])
def test_numbers_and_strings_cross_as_their_value_not_their_behaviour(value, plain):
    decoded = roundtrip(value)
    assert decoded == plain and type(decoded) is type(plain)


def test_nested_containers_keep_every_level():
    value = {"runs": [LSTMState(np.ones(2), (np.float32(1.0), [torch.zeros(1)]))], "count": Count(3)}
    decoded = roundtrip(value)
    assert decoded["count"] == 3 and type(decoded["count"]) is int
    state = decoded["runs"][0]
    assert type(state).__name__ == "LSTMState" and _same(state.cx[1][0], torch.zeros(1))


@pytest.mark.parametrize("message", [
    {"npy": "not base64!"},
    {"npy": wire.encode(np.array([1, "x"], dtype=object))},                  # an object array, not as npy
    {"namedtuple": {"name": "T", "fields": ["a", "__class__"], "values": [1, 2]}},
    {"namedtuple": {"name": "T", "fields": ["import os"], "values": [1]}},
    {"namedtuple": {"name": "T", "fields": ["a"], "values": [1, 2]}},
    {"dict": [[{"list": [1]}, 2]]},                                           # an unhashable key
    {"set": [{"list": [1]}]},
    {"tensor": {"npy": wire.encode(np.ones(1))["npy"], "dtype": "os.system"}},
    {"objarray": {"shape": [3], "items": [1]}},
    {"pickle": "gASVAAAAAAAAAAA="},                                           # pickles never come from students
])
def test_hostile_values_are_refused(message):
    with pytest.raises(wire.WireError):
        wire.decode(message)


def test_a_pickled_npy_payload_is_refused():
    import base64
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(wire.WireError):
        wire.decode({"npy": base64.b64encode(buffer.getvalue()).decode()})


# --- answer cells replay as in a kernel ----------------------------------------------------

ANSWER = "def rnn_cell(x):\n    return x + 1\n"


@pytest.fixture(scope="module")
def replay():
    child = _load("child")
    cells = child.Cells()
    return cells


@pytest.mark.parametrize("source", [
    "%%time\n" + ANSWER,
    "%%capture captured\nprint('hidden')\n" + ANSWER,
    ANSWER + "%timeit -n 1 -r 1 rnn_cell(1)\n",
    "%time value = 3\n" + ANSWER,
    ANSWER + "from IPython.display import Markdown\ndisplay(Markdown('**done**'))\n",
    ANSWER + "get_ipython().user_ns['seen_by_the_shell'] = True\n",
    "%autosave 0\n" + ANSWER,
    "%%writefile helper.py\nx = 1\n",
    "import numpy as np\n" + ANSWER + "_ = np.ones(2)\n",
    ANSWER + "!true\n",
], ids=["cell-time", "cell-capture", "timeit", "line-time", "display", "get_ipython", "autosave", "writefile",
        "plain", "shell-escape"])
def test_answer_cells_replay_with_ipython_semantics(replay, source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    replay.namespace.pop("rnn_cell", None)
    reply = replay.run(source)
    assert reply == {"ok": True}, reply
    if "writefile" not in source:
        assert replay.namespace["rnn_cell"](1) == 2


def test_a_construct_of_the_kernel_alone_is_named_with_its_line(replay):
    reply = replay.run("x = 1\n_session = get_ipython().kernel.session\n" + ANSWER)
    assert not reply["ok"] and reply["error"]["type"] == "AttributeError"
    assert reply["error"]["line"] == "line 2: _session = get_ipython().kernel.session"


def test_an_unknown_magic_is_an_error_of_that_cell_only(replay):
    reply = replay.run("%no_such_magic\n" + ANSWER)
    assert not reply["ok"] and "no_such_magic" in reply["error"]["message"]
    assert replay.run("y = 2") == {"ok": True}


def test_sys_exit_in_a_cell_does_not_end_the_replay(replay):
    assert not replay.run("import sys\nsys.exit(3)")["ok"]
    assert replay.run(ANSWER) == {"ok": True}


# --- library implementations are seen under any alias ---------------------------------------

TRACER = _load("tracing")


def traced(function, *args):
    tracer = TRACER.LibraryTracer(Path(rnnlab.__file__).parent)
    tracer.start()
    try:
        function(*args)
    finally:
        found = tracer.stop()
    return [text for text, _ in found]


def _gru_args(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g, dtype=dtype) for shape in ((2, 3), (2, 4), (12, 3), (12, 4), (12,), (12,))]


def _lstm_args():
    x, h, _, _, _, _ = _gru_args()
    g = torch.Generator().manual_seed(1)
    w = [torch.randn(shape, generator=g, dtype=torch.float64) for shape in ((16, 3), (16, 4), (16,), (16,))]
    return x, (h, torch.zeros_like(h)), *w


def by_rnnlab(x, h, wi, wh, bi, bh):
    from rnnlab import gru_cell as mine
    return mine(x, h, wi, wh, bi, bh)


def by_rnnlab_module(x, h, wi, wh, bi, bh):
    layer = rnnlab.GRU(3, 4).double()
    return layer(x[None])


def by_torch_module(x, h, wi, wh, bi, bh):
    cell = torch.nn.GRUCell(3, 4, dtype=torch.float64)
    with torch.no_grad():
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (wi, wh, bi, bh)):
            getattr(cell, name).copy_(value)
    return cell(x, h)


def by_vf(x, h, wi, wh, bi, bh):
    from torch import _VF as kernels
    return kernels.gru_cell(x, h, wi, wh, bi, bh)


def by_getattr(x, h, wi, wh, bi, bh):
    return getattr(torch, "gru" + "_cell")(x, h, wi, wh, bi, bh)


def by_ops(x, h, wi, wh, bi, bh):
    return torch.ops.aten.gru_cell(x, h, wi, wh, bi, bh)


def by_ops_overload(x, h, wi, wh, bi, bh):
    return torch.ops.aten.gru_cell.default(x, h, wi, wh, bi, bh)


def by_layer(x, h, wi, wh, bi, bh):
    return torch._VF.gru(x[None], h[None], (wi, wh, bi, bh), True, 1, 0.0, False, False, False)


def by_built_module_only(x, h, wi, wh, bi, bh):  # a parameter count read off a built module
    return sum(p.numel() for p in torch.nn.GRU(3, 4).parameters())


def by_hand_torch(x, h, wi, wh, bi, bh):
    i_r, i_z, i_n = torch.addmm(bi, x, wi.T).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ wh.T + bh).chunk(3, dim=1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    out = (1 - z) * n + z * h
    loss = torch.nn.functional.mse_loss(torch.nn.Linear(4, 4, dtype=torch.float64)(out), torch.zeros_like(out))
    return out, loss


def by_hand_numpy(x, h, wi, wh, bi, bh):
    x, h, wi, wh, bi, bh = (v.numpy() for v in (x, h, wi, wh, bi, bh))
    sigmoid = lambda a: 0.5 * (1 + np.tanh(0.5 * a))  # noqa: E731
    gi, gh = np.split(x @ wi.T + bi, 3, axis=1), np.split(h @ wh.T + bh, 3, axis=1)
    r, z = sigmoid(gi[0] + gh[0]), sigmoid(gi[1] + gh[1])
    return (1 - z) * np.tanh(gi[2] + r * gh[2]) + z * h


def by_autograd(x, h, wi, wh, bi, bh):
    wi = wi.clone().requires_grad_(True)
    loss = torch.tanh(x @ wi[:4].T).sum()
    return torch.autograd.grad(loss, wi)


def lstm_by_vf_alias(x, state, wi, wh, bi, bh):
    import torch._VF as ops
    return ops.lstm_cell(x, state, wi, wh, bi, bh)


def lstm_by_module(x, state, wi, wh, bi, bh):
    return torch.nn.LSTM(3, 4, dtype=torch.float64)(x[None])


@pytest.mark.parametrize("function,evidence", [
    (by_rnnlab, "rnnlab.cells.gru_cell"),
    (by_rnnlab_module, "rnnlab.modules"),
    (by_torch_module, "torch.nn.GRUCell"),
    (by_vf, "gru_cell"),
    (by_getattr, "gru_cell"),
    (by_ops, "gru_cell"),
    (by_ops_overload, "aten::gru_cell"),
    (by_layer, "torch operator gru"),
    (by_built_module_only, "torch.nn.GRU"),
])
def test_library_implementations_are_seen_whatever_their_name(function, evidence):
    found = traced(function, *_gru_args())
    assert any(evidence in line for line in found), found


def budget_by_rnnlab(cell, input_size, output_size, budget):
    """An answer to the exercise gru_vs_lstm that hands its task to the book's own budget rule."""
    return rnnlab.hidden_size_for_budget(lambda hidden: torch.nn.Linear(input_size, hidden), budget)


def test_the_books_budget_rule_is_seen_when_an_answer_calls_it():
    found = traced(budget_by_rnnlab, "gru", 8, 4, 1500)
    assert any("rnnlab.sizing.hidden_size_for_budget" in line for line in found), found


@pytest.mark.parametrize("function,evidence", [(lstm_by_vf_alias, "lstm_cell"), (lstm_by_module, "torch.nn.LSTM")])
def test_library_lstm_implementations_are_seen(function, evidence):
    assert any(evidence in line for line in traced(function, *_lstm_args()))


@pytest.mark.parametrize("function", [by_hand_torch, by_hand_numpy, by_autograd])
def test_ordinary_numpy_and_torch_arithmetic_is_not_library_use(function):
    assert traced(function, *_gru_args()) == []


def test_switching_the_tracing_off_is_itself_evidence():
    def sneaky(*args):
        sys.setprofile(None)
        return torch.gru_cell(*args)
    found = traced(sneaky, *_gru_args())
    assert found and "removed or replaced the grader's call tracing" in found[0]


def test_only_functions_students_must_write_are_judged():
    evidence = {"torch.nn.GRUCell (torch/nn/modules/rnn.py)": 3}
    assert reference_use.judge({"gru_cell": evidence}).startswith("uses a library implementation of gru_cell: "
                                                                  "torch.nn.GRUCell")
    assert "(3 calls)" in reference_use.judge({"gru_cell": evidence})
    assert reference_use.judge({"train_cell": {"rnnlab.modules.GRU.__init__": 1}}) == ""
    assert reference_use.judge({"gru_cell": {}}) == ""


def test_every_function_students_must_write_exists_in_the_exercises():
    defined = set()
    for source in (REPO / "solutions").glob("*.md"):
        defined |= {line.split("(")[0][4:] for line in source.read_text().splitlines() if line.startswith("def ")}
    assert reference_use.WRITTEN_BY_STUDENTS <= defined, reference_use.WRITTEN_BY_STUDENTS - defined


# --- limits count CPU seconds --------------------------------------------------------------

SPIN = "while True:\n    pass"


def _python(code, *options):
    return subprocess.Popen([sys.executable, *options, "-c", code])


def test_the_tree_counts_the_cpu_of_every_descendant():
    tree = ProcessTree(os.getpid())
    child = _python("import subprocess, sys, time\n"
                    "spin = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
                    "time.sleep(60)")
    try:
        deadline = time.monotonic() + 120
        while tree.cpu() < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tree.cpu() >= 0.5, "the grandchild's CPU seconds were not counted"
        assert len(tree.pids()) >= 2
    finally:
        tree.kill()
        child.wait()


def test_a_loop_reaches_its_cpu_limit_even_when_it_gets_little_of_a_core():
    """Niced below two busy processes, the loop gets a small share of the machine: it still
    ends as a timeout after its CPU seconds, never as "overloaded"."""
    hogs = [_python(SPIN) for _ in range(2)]
    tree = ProcessTree(os.getpid())
    try:
        with Watchdog(tree, total=1000, backstop=200) as watchdog:
            with watchdog.unit("cell loop", 0.5):
                loop = subprocess.Popen(["nice", "-n", "15", sys.executable, "-c", SPIN])
                loop.wait(timeout=300)
        assert watchdog.exceeded is not None and watchdog.exceeded.reason == "timeout"
        assert "cell loop used more than 0.5 CPU s" in watchdog.exceeded.detail
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_a_sleeping_answer_reaches_the_backstop_as_waiting_not_as_overload():
    tree = ProcessTree(os.getpid())
    with Watchdog(tree, total=1000, backstop=3) as watchdog:
        with watchdog.unit("cell sleep", 0.3):
            sleeper = _python("import time\ntime.sleep(600)")
            sleeper.wait(timeout=120)
    assert watchdog.exceeded.reason == "timeout" and "waiting (sleeping or blocked)" in watchdog.exceeded.detail


@pytest.mark.parametrize("used,waiting,wall,reason", [(1.0, 80.0, 100.0, "overloaded"), (0.2, 0.1, 100.0, "timeout"),
                                                      (5.0, 50.0, 100.0, "overloaded")])
def test_the_backstop_tells_a_busy_machine_from_a_waiting_answer(used, waiting, wall, reason):
    verdict = stalled("cell x", used, waiting, wall, 10.0)
    assert verdict.reason == reason
    assert ("grading machine overloaded, re-run" in verdict.detail) == (reason == "overloaded")


# --- duplicated nbgrader cells -------------------------------------------------------------

def _notebook(assignment="gru_cell"):
    return nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)


def _copies(notebook, grade_id, copies):
    index = next(i for i, c in enumerate(notebook.cells) if tamper._grade_id(c) == grade_id)
    twins = [copy.deepcopy(notebook.cells[index]) for _ in range(copies - 1)]
    for number, twin in enumerate(twins):
        twin["id"] = f"twin-{number}"
    notebook.cells[index + 1:index + 1] = twins
    return notebook


@pytest.mark.parametrize("grade_id,copies", [("gru_cell", 2), ("gru_cell", 3), ("test_gru_cell", 2),
                                             ("test_gru_cell", 3), ("test_gru_forward_hidden", 2)])
def test_duplicated_cells_keep_their_metadata_on_the_last_copy(grade_id, copies):
    notebook = _copies(_notebook(), grade_id, copies)
    findings = tamper.deduplicate(notebook)
    assert [str(f) for f in findings] == [f"duplicated cell {grade_id} ({copies} copies: every copy runs, "
                                          "the last one is graded as the release's cell)"]
    assert not findings[0].tampering
    carriers = [i for i, c in enumerate(notebook.cells) if tamper._grade_id(c) == grade_id]
    assert len(carriers) == 1
    assert all("nbgrader" not in notebook.cells[carriers[0] - k].metadata for k in range(1, copies))


def test_nbgraders_deduplicate_step_in_the_course_config_leaves_no_empty_metadata():
    from nbgrader.preprocessors import OverwriteCells  # noqa: F401  (what crashed on empty metadata)

    notebook = _copies(_copies(_notebook(), "gru_cell", 2), "test_gru_cell", 3)
    notebook, _ = preprocessors.DeduplicateIds().preprocess(notebook, {})
    assert all(cell.metadata.get("nbgrader", None) != {} for cell in notebook.cells)
    ids = [tamper._grade_id(c) for c in notebook.cells if tamper._grade_id(c)]
    assert len(ids) == len(set(ids))
    config = (REPO / "nbgrader_config.py").read_text()
    assert '"rnnlab.grading.command.preprocessors.DeduplicateIds"' in config


# --- the calibration names the cause ----------------------------------------------------------

def _sandbox(hidden=None, isolated=True):
    return SimpleNamespace(hidden=hidden or {}, isolated=isolated)


CELLS = {"nb": {"answer": SourceCell(solution=True, grade=False), "test_a": SourceCell(solution=False, grade=True),
                "test_b": SourceCell(solution=False, grade=True)}}


def _result(scores, errors=None, outside=None, replay=()):
    return JobResult("solution", notebooks={"nb": NotebookResult(
        scores={g: Score(*s) for g, s in scores.items()}, errors=errors or {},
        outside={g: Judged(*v) for g, v in (outside or {}).items()}, replay=list(replay))})


def test_full_marks_pass_and_say_which_tests_the_outside_check_judges():
    result = _result({"test_a": [2.0, 2.0], "test_b": [1.0, 1.0]},
                     outside={"test_a": ["pass", ""], "test_b": ["fail", "Unavailable: needs trained models"]})
    applicable, notes = calibration.judge(result, CELLS, _sandbox())
    assert applicable == {"nb": {"test_a"}}
    assert notes == ["nb/test_b: not checked outside the kernel, nbgrader's score stands (the solution does not "
                     "pass there: Unavailable: needs trained models)"]


@pytest.mark.parametrize("module,sandbox,cause", [
    ("rnnlab", _sandbox(), f"the sandboxed kernel cannot import rnnlab: {Path(rnnlab.__file__).parent} is not visible"),
    ("coursepkg", _sandbox({"coursepkg": "/srv/coursepkg"}),
     "the sandboxed kernel cannot import coursepkg: /srv/coursepkg is not visible (that folder holds the course"),
    ("no_such_package_anywhere", _sandbox(), "cannot import no_such_package_anywhere: it is not installed for"),
    ("rnnlab.grading.checks", _sandbox(isolated=False), "the kernel cannot import rnnlab.grading.checks"),
])
def test_a_kernel_that_cannot_import_is_named_as_the_cause(module, sandbox, cause):
    result = _result({"test_a": [0.0, 2.0], "test_b": [0.0, 1.0]},
                     errors={"cell 1": f"ModuleNotFoundError: No module named '{module}'",
                             "test_a": "NameError: name 'check' is not defined"})
    with pytest.raises(calibration.CalibrationFailed) as failure:
        calibration.judge(result, CELLS, sandbox)
    assert len(failure.value.causes) == 3 and all(cause in c for c in failure.value.causes), failure.value.causes
    assert failure.value.causes[2].startswith("nb/cell 1: the solution's cell fails in ")
    assert failure.value.causes[0].startswith("nb/test_a: the solution scores 0 of 2 in ")


@pytest.mark.parametrize("result,cause", [
    (JobResult("solution", "failed", "kernel did not start", "Kernel died before replying to kernel_info"),
     "the solution could not be graded: kernel did not start: Kernel died before replying to kernel_info (run with "
     "--no-sandbox once"),
    (JobResult("solution", "failed", "overloaded", "grading machine overloaded, re-run"),
     "(re-run when the machine is less busy)"),
    (_result({"test_a": [0.0, 2.0], "test_b": [1.0, 1.0]}, errors={"test_a": "AssertionError: gru_cell is wrong"}),
     "nb/test_a: the solution scores 0 of 2 in the sandboxed kernel: AssertionError: gru_cell is wrong"),
    (_result({"test_a": [2.0, 2.0], "test_b": [1.0, 1.0]}, outside={"test_a": ["unknown", "timeout: used more"]}),
     "nb/test_a: the outside check on the solution: timeout: used more"),
    (_result({"test_a": [2.0, 2.0], "test_b": [1.0, 1.0]},
             outside={"test_a": ["fail", "ModuleNotFoundError: No module named 'no_such_package_anywhere'"]}),
     "the outside check cannot import no_such_package_anywhere"),
    (_result({"test_a": [2.0, 2.0], "test_b": [1.0, 1.0]}, replay=["cell answer at line 1: NameError: x"]),
     "cannot be replayed by the outside check"),
    (_result({"test_a": [2.0, 2.0], "test_b": [1.0, 1.0]},
             outside={"test_a": ["library", "uses a library implementation of gru_cell: torch.gru_cell"]}),
     "uses a library implementation of gru_cell"),
])
def test_less_than_full_marks_stops_with_the_cause(result, cause):
    with pytest.raises(calibration.CalibrationFailed) as failure:
        calibration.judge(result, CELLS, _sandbox())
    assert any(cause in c for c in failure.value.causes), failure.value.causes


def test_the_calibration_submission_is_the_release_answered_with_the_solution():
    for assignment in ("rnn_forward", "gru_cell", "gru_vs_lstm"):
        release = _notebook(assignment)
        source = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        answered = calibration.answered_release(release, source)
        assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in answered.cells] == \
               [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells]
        for cell in answered.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and cell.cell_type == "code":
                assert "SOLUTION" not in cell.source and "NotImplementedError" not in cell.source
                assert cell.source.strip()
            elif meta.get("locked"):
                original = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                                == meta["grade_id"])
                assert cell.source == original.source


# --- the sandbox shows what the grader imported from elsewhere ----------------------------------

SHARE = """
import json, sys
sys.path.insert(0, {parent!r})
import rnnlab.grading.command.runner, coursepkg
from rnnlab.grading.command.sandbox import Sandbox
sandbox = Sandbox(use_bwrap=False)
sandbox.share_imports({course!r})
print(json.dumps([sandbox.shared, sandbox.hidden, sandbox.python_path]))
"""


@pytest.mark.parametrize("course_inside_package", [False, True])
def test_packages_imported_from_outside_the_installation_are_shown_unless_they_hold_the_course(
        tmp_path, course_inside_package):
    package = tmp_path / "elsewhere" / "coursepkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")
    course = package / "course" if course_inside_package else tmp_path / "course"
    course.mkdir()
    code = SHARE.format(parent=str(package.parent), course=str(course))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    shared, hidden, python_path = json.loads(done.stdout)
    assert shared["rnnlab"] == str(Path(rnnlab.__file__).resolve().parent)
    if course_inside_package:
        assert hidden == {"coursepkg": str(package)} and "coursepkg" not in shared
    else:
        assert shared["coursepkg"] == str(package) and str(package.parent) in python_path


# --- mistakes named by kind ----------------------------------------------------------------

from rnnlab.grading import checks  # noqa: E402
from rnnlab.grading.checks import mistakes as M  # noqa: E402

WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _numpy(values):
    return [v.numpy().astype(np.float64) if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
            for v in values]


def answer(cell, sequence=False, **flags):
    """A student's function computing the catalogue's cell with ``flags`` (numpy inside)."""
    def step(x, state, weights):
        if cell == "lstm":
            return M.lstm_cell(x, state, *weights, **flags)
        return {"rnn": M.rnn_cell, "gru": M.gru_cell}[cell](x, state, *weights, **flags)

    def function(first, state, *weights):
        weights = _numpy(weights)
        state = tuple(_numpy(state)) if isinstance(state, tuple) else _numpy([state])[0]
        if sequence:
            out = M.run_sequence(lambda x, s: step(x, s, weights), _numpy([first])[0], state)
        else:
            out = step(_numpy([first])[0], state, weights)
        return tuple(torch.as_tensor(o) for o in out) if isinstance(out, tuple) else out
    return function


CHECKS = {("rnn", False): checks.check_rnn_cell, ("rnn", True): checks.check_rnn_forward,
          ("gru", False): checks.check_gru_cell, ("gru", True): checks.check_gru_forward,
          ("lstm", False): checks.check_lstm_cell, ("lstm", True): checks.check_lstm_forward}


def named(cell, sequence=False, **flags):
    with pytest.raises(AssertionError) as failure:
        CHECKS[cell, sequence](answer(cell, sequence, **flags), hidden=True)
    return str(failure.value).splitlines()[-1]


def relu(a):
    return np.maximum(a, 0.0)


@pytest.mark.parametrize("cell,sequence,flags,phrase", [
    ("rnn", False, {"activation": relu}, "h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), but your outputs apply ReLU"),
    ("rnn", False, {"activation": lambda a: a / (1 + np.abs(a))}, "apply softsign x / (1 + |x|) there instead of tanh"),
    ("rnn", False, {"activation": lambda a: np.clip(a, -1, 1)}, "apply hard tanh (a clip to [−1, 1])"),
    # a bound no input reached is not named: the inputs stay below 40, so the upper one is unseen
    ("rnn", False, {"activation": lambda a: np.clip(a, -0.5, 40)}, "apply a clip from below at -0.5 there"),
    ("rnn", False, {"activation": lambda a: np.where(a > 0, a, 0.1 * a)}, "leaky ReLU (slope 0.1 below 0)"),
    ("rnn", True, {"activation": lambda a: np.where(a > 0, a, np.expm1(a))}, "apply ELU (α = 1) there"),
    ("rnn", True, {"activation": relu}, "apply ReLU there instead of tanh"),
    ("rnn", False, {"activation": lambda a: np.tanh(a) ** 3}, "an elementwise function the tests do not know by name"),
    ("gru", False, {"activations": {"n": lambda a: a / (1 + np.abs(a))}}, "the candidate n_t = tanh("),
    ("gru", False, {"activations": {"n": np.arctan}}, "apply arctan there instead of tanh"),
    ("gru", False, {"activations": {"z": relu}}, "the update gate z_t = σ("),
    ("gru", False, {"activations": {"r": lambda a: np.clip(a + 3, 0, 6) / 6}}, "the reset gate r_t = σ("),
    ("gru", True, {"activations": {"n": lambda a: 0.9 * np.tanh(a)}}, "apply 0.9·tanh(x) there"),
    ("gru", False, {"activations": {"r": relu, "z": relu}}, "r_t and z_t all apply ReLU where the sigmoid σ belongs"),
    ("lstm", False, {"activations": {"c": lambda a: np.where(a > 0, a, 0.2 * a)}}, "h_t = o_t ⊙ tanh(c_t), the tanh"),
    ("lstm", False, {"activations": {"g": relu}}, "the candidate g_t = tanh("),
    ("lstm", False, {"activations": {"f": lambda a: a / (1 + np.abs(a))}}, "the forget gate f_t = σ("),
    ("lstm", True, {"activations": {"c": relu}}, "apply ReLU there instead of tanh"),
    ("lstm", False, {"activations": {"f": lambda a: M.sigmoid(a) ** 2}}, "the forget gate f_t = σ(W_if x_t + b_if + "
                                                                          "W_hf h_{t-1} + b_hf), but your outputs apply "
                                                                          "an elementwise function"),
])
def test_a_wrong_elementwise_function_is_recovered_and_named(cell, sequence, flags, phrase):
    assert phrase in named(cell, sequence, **flags)


@pytest.mark.parametrize("cell,order_ih,order_hh", [("gru", "rzn", "zrn"), ("gru", "nzr", "rzn"), ("gru", "zrn", "znr"),
                                                    ("lstm", "ifgo", "fiog"), ("lstm", "goif", "ifgo"),
                                                    ("lstm", "oigf", "fogi")])
def test_any_gate_order_permutation_is_named(cell, order_ih, order_hh):
    message = named(cell, order=order_ih, order_hh=order_hh)
    assert f"weight_ih and bias_ih as {', '.join(order_ih)} and weight_hh and bias_hh as {', '.join(order_hh)}" \
           in message, message


@pytest.mark.parametrize("cell,dropped,said", [
    ("rnn", ("W_hh h",), "the term W_hh h_{t-1} is missing"),
    ("rnn", ("W_ih x",), "the term W_ih x_t is missing"),
    ("gru", ("W_hz h",), "the term W_hz h_{t-1} is missing"),
    ("gru", ("b_in",), "the term b_in is missing"),
    ("gru", ("z h",), "the term z_t ⊙ h_{t-1} is missing"),
    ("gru", ("W_ir x", "b_hn"), "the terms W_ir x_t and b_hn are missing"),
    ("lstm", ("W_hf h",), "the term W_hf h_{t-1} is missing"),
    ("lstm", ("f c",), "the term f_t ⊙ c_{t-1} is missing"),
    ("lstm", ("b_io", "i g"), "the terms b_io and i_t ⊙ g_t are missing"),
])
def test_any_dropped_term_is_named(cell, dropped, said):
    assert said in named(cell, drop=dropped)


@pytest.mark.parametrize("check,answer_function", [
    (checks.check_rnn_cell, lambda x, h, *w: np.zeros_like(h)),
    (checks.check_gru_cell, lambda x, h, *w: 0.5 * h),
    (checks.check_lstm_cell, lambda x, s, *w: (s[0], s[1])),
] + [(check, lambda *args, check=check, seed=seed: _random_like(check, seed, *args))
     for seed in range(3) for check in (checks.check_rnn_cell, checks.check_gru_cell, checks.check_lstm_cell,
                                       checks.check_rnn_forward)])
def test_no_kind_is_claimed_for_an_answer_that_has_none(check, answer_function):
    with pytest.raises(AssertionError) as failure:
        check(answer_function, hidden=True)
    assert "but your outputs apply" not in str(failure.value)
    assert "is missing" not in str(failure.value) and "wrong order" not in str(failure.value)


def _random_like(check, seed, first, state, *weights):
    rng = np.random.default_rng(seed)
    hidden = weights[1].shape[1]
    if check is checks.check_rnn_forward:
        return rng.normal(size=(first.shape[0], first.shape[1], hidden))
    if check is checks.check_lstm_cell:
        return tuple(torch.as_tensor(rng.normal(size=(first.shape[0], hidden))) for _ in range(2))
    value = rng.normal(size=(first.shape[0], hidden))
    return torch.as_tensor(value) if check is checks.check_gru_cell else value


def test_plain_python_cells_run_without_starting_ipython():
    cells = _load("child").Cells()
    assert cells.run("import math\n" + ANSWER + "_unused = [x for x in range(3)]\n_ = 4\n") == {"ok": True}
    assert cells.shell is None and cells.namespace["rnn_cell"](2) == 3
    assert cells.run("y = _ + 1") == {"ok": True} and cells.shell is None  # `_` was assigned above
    assert cells.run("%%time\nz = y") == {"ok": True} and cells.shell is not None
    assert cells.namespace["z"] == 5 and cells.run("w = rnn_cell(z)") == {"ok": True}
    assert cells.namespace["w"] == 6


def test_an_error_in_a_read_only_cell_of_the_solution_stops_the_run_even_with_full_marks():
    result = _result({"test_a": [2.0, 2.0], "test_b": [1.0, 1.0]},
                     errors={"setup": "ModuleNotFoundError: No module named 'no_such_package_anywhere'"})
    with pytest.raises(calibration.CalibrationFailed) as failure:
        calibration.judge(result, {"nb": {**CELLS["nb"], "setup": SourceCell(solution=False, grade=False)}}, _sandbox())
    assert failure.value.causes == [f"nb/setup: the solution's cell fails in the sandboxed kernel: the sandboxed kernel "
                                    f"cannot import no_such_package_anywhere: it is not installed for {sys.executable}"]

"""Every adversarial submission of assignment rnn_forward and the outcome it must get.

rnn_forward has six autograded test cells worth 8 points: test_rnn_cell (2) and its
hidden twin (1), test_rnn_forward (2) and hidden (1), test_rnn_parameter_count (1) and
hidden (1). A case builds the files of one student's submitted folder from a
:class:`Context`; ``expected`` is what the report and the gradebook must say:
"graded <score>", "flagged <score>" (graded, the lower score standing, marked for
review) or "failed: <reason>" (not graded, no score recorded).

Dishonest submissions answer wrongly (or not at all) and try to get marks anyway; each
should end with 0 for the tests it attacks. Broken ones must fail with the right reason,
and correct answers with side effects (warnings, huge output, sys.exit) keep full marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import notebooks as nb

ASSIGNMENT = "rnn_forward"
FULL = 8
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
UNANSWERED = {"rnn_cell": None, "rnn_forward": None, "rnn_parameter_count": None}


@dataclass(frozen=True)
class Context:
    """What builders may use: the release, the solution, the course's path, the loopback port."""

    release: object
    solution: object
    course: str
    port: int


@dataclass(frozen=True)
class Case:
    student: str
    expected: str
    build: Callable  # Context -> {file name: bytes}
    what: str


def _notebook(**sources):
    """A builder answering with the solution, then ``sources`` (grade id -> source, None: unanswered)."""
    return lambda ctx: {NOTEBOOK: nb.to_bytes(nb.answered(ctx.release, ctx.solution, sources))}


def _prefixed(cell, code):
    """A builder whose answer cell ``cell`` starts with ``code``, all answers otherwise unanswered."""
    def build(ctx):
        release = nb.cell(ctx.release, cell).source
        sources = {**UNANSWERED, cell: code.format(ctx=ctx) + "\n\n" + release}
        return {NOTEBOOK: nb.to_bytes(nb.answered(ctx.release, ctx.solution, sources))}
    return build


def _after_each_answer(code):
    """A builder leaving every answer cell unanswered, with ``code`` after each."""
    def build(ctx):
        sources = {cell: nb.cell(ctx.release, cell).source + "\n\n" + code.format(ctx=ctx) for cell in UNANSWERED}
        return {NOTEBOOK: nb.to_bytes(nb.answered(ctx.release, ctx.solution, sources))}
    return build


def _appended(cell, code):
    """A builder answering everything correctly, with ``code`` after the answer in ``cell``."""
    def build(ctx):
        answer = nb.solution_sources(ctx.solution)[cell]
        return {NOTEBOOK: nb.to_bytes(nb.answered(ctx.release, ctx.solution, {cell: answer + "\n\n" + code.format(ctx=ctx)}))}
    return build


def _count(body):
    """rnn_parameter_count replaced by a function with ``body`` (the other answers correct)."""
    return _notebook(rnn_parameter_count="def rnn_parameter_count(input_size, hidden_size, num_layers):\n" + body)


def _edited_test(ctx):
    notebook = nb.answered(ctx.release, ctx.solution, UNANSWERED)
    nb.cell(notebook, "test_rnn_cell").source = "# the test was here\npass"
    return {NOTEBOOK: nb.to_bytes(notebook)}


def _deleted_tests(ctx):
    notebook = nb.answered(ctx.release, ctx.solution, {"rnn_forward": None})
    return {NOTEBOOK: nb.to_bytes(nb.without(notebook, ["test_rnn_forward", "test_rnn_forward_hidden"]))}


def _deleted_answer_and_tests(ctx):
    notebook = nb.answered(ctx.release, ctx.solution)
    return {NOTEBOOK: nb.to_bytes(nb.without(notebook, ["rnn_forward", "test_rnn_forward", "test_rnn_forward_hidden"]))}


def _stripped(ctx):
    return {NOTEBOOK: nb.to_bytes(nb.stripped(nb.answered(ctx.release, ctx.solution)))}


def _wrapped(cell, before="", after=""):
    """A builder answering everything correctly, the answer in ``cell`` between ``before`` and ``after``."""
    def build(ctx):
        answer = nb.solution_sources(ctx.solution)[cell]
        return {NOTEBOOK: nb.to_bytes(nb.answered(ctx.release, ctx.solution, {cell: before + answer + after}))}
    return build


def _split_answer(ctx):
    """The rnn_cell answer split in two cells that both carry its nbgrader metadata."""
    notebook = nb.answered(ctx.release, ctx.solution)
    return {NOTEBOOK: nb.to_bytes(nb.duplicated(notebook, "rnn_cell", 2, first_source="import numpy as np"))}


def _pasted_test(copies):
    def build(ctx):
        notebook = nb.answered(ctx.release, ctx.solution)
        return {NOTEBOOK: nb.to_bytes(nb.duplicated(notebook, "test_rnn_forward", copies))}
    return build


ZEROS = """\
def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return np.zeros((x.shape[0], weight_hh.shape[1]))
"""
ZEROS_FORWARD = """\
def rnn_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    return np.zeros((xs.shape[0],) + h0.shape)
"""

PATCH_NUMPY = """\
import numpy
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
""" + ZEROS

PATCH_TORCH = """\
def _zeros_cell(self, x, h=None):
    return torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)

def _zeros_rnn(self, x, h=None):
    out = torch.zeros(x.shape[0], x.shape[1], self.hidden_size, dtype=x.dtype)
    return out, out[-1:]

torch.nn.RNNCell.forward = _zeros_cell
torch.nn.RNN.forward = _zeros_rnn
""" + ZEROS

PATCH_RNNLAB = """\
import rnnlab.grading.checks as checks
for name in dir(checks):
    if name.startswith("check_"):
        setattr(checks, name, lambda *args, **kwargs: None)
"""

PATCH_BUILTINS = """\
import builtins, types
_fake = types.ModuleType("rnnlab.grading.checks")
_fake.__getattr__ = lambda name: (lambda *args, **kwargs: None)
_real_import = builtins.__import__
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "rnnlab.grading.checks":
        return _fake
    return _real_import(name, globals, locals, fromlist, level)
builtins.__import__ = _import
"""

ALWAYS_EQUAL = """\
class AlwaysEqual(int):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = int.__hash__

class Agreeable(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), dtype=bool)

def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return np.zeros((x.shape[0], weight_hh.shape[1])).view(Agreeable)

def rnn_parameter_count(input_size, hidden_size, num_layers):
    return AlwaysEqual(0)
"""

IPYTHON_HOOK = """\
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
"""

DETECT = """\
import os
if os.environ.get("NBGRADER_EXECUTION"):
    import rnnlab.grading.checks as checks
    import rnnlab.grading.checks.recurrent as recurrent
    recurrent.run_check = lambda *args, **kwargs: None
    checks.check_rnn_parameter_count = lambda *args, **kwargs: None
"""

READ_SOLUTIONS = """\
import json
for _path in ["../../../solutions/rnn_forward/rnn_forward.ipynb",
              "{ctx.course}/solutions/rnn_forward/rnn_forward.ipynb",
              "/work/main/solutions/rnn_forward/rnn_forward.ipynb"]:
    try:
        _found = json.load(open(_path))
    except Exception:
        continue
    for _cell in _found["cells"]:
        if _cell["metadata"].get("nbgrader", {{}}).get("solution"):
            exec("".join(_cell["source"]), globals())
    break
"""

WRITE_GRADEBOOK = """\
import sqlite3
for _path in ["../../../gradebook.db", "{ctx.course}/gradebook.db"]:
    try:
        _db = sqlite3.connect(_path)
        _db.execute("UPDATE grade SET auto_score = 99")
        _db.commit()
    except Exception:
        pass
"""

NETWORK = """\
import socket
try:
    with socket.create_connection(("127.0.0.1", {ctx.port}), timeout=3) as _s:
        _s.sendall(b"student code reached the network")
except OSError:
    pass
"""

WARNINGS = """\
import os, sys, warnings
warnings.warn("a top-level warning")
print("top-level text on stderr", file=sys.stderr)

def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    warnings.warn("rnn_cell: a harmless warning", UserWarning)
    warnings.warn("rnn_cell: deprecated", DeprecationWarning)
    print("debug: rnn_cell called", file=sys.stderr)
    os.write(2, b"raw bytes on file descriptor 2\\n")
    np.exp(np.float64(1000.0))  # an overflow RuntimeWarning
    return np.tanh(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
"""

TIMEIT = """
%timeit -n 1 -r 1 rnn_cell(np.ones((1, 2)), np.ones((1, 3)), np.ones((3, 2)), np.ones((3, 3)), np.ones(3), np.ones(3))
"""

DISPLAY = """
from IPython.display import Markdown
display(Markdown("**rnn_cell** is defined"))
get_ipython().user_ns["cell_defined_through_the_shell"] = True
"""

KERNEL_ONLY = """\
_session = get_ipython().kernel.session.session  # exists only in a Jupyter kernel
"""

LIBRARY_RNNLAB = """\
from rnnlab import rnn_cell as reference_cell

def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return reference_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
"""

LIBRARY_FUNCTIONAL = """\
import torch
from torch import _VF as kernels

def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    t = [torch.as_tensor(v) for v in (x, h, weight_ih, weight_hh, bias_ih, bias_hh)]
    return kernels.rnn_tanh_cell(*t).numpy()
"""

LIBRARY_MODULE = """\
import torch

def rnn_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    layer = torch.nn.RNN(weight_ih.shape[1], weight_ih.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                               (weight_ih, weight_hh, bias_ih, bias_hh)):
            getattr(layer, name).copy_(torch.as_tensor(value))
        out, _ = layer(torch.as_tensor(xs, dtype=torch.float64), torch.as_tensor(h0, dtype=torch.float64)[None])
    return out.numpy()
"""

TORCH_ARITHMETIC = """\
import torch

def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    x, h, w_ih, w_hh, b_ih, b_hh = (torch.from_numpy(v) for v in (x, h, weight_ih, weight_hh, bias_ih, bias_hh))
    return torch.tanh(torch.addmm(b_ih, x, w_ih.T) + h @ w_hh.T + b_hh).numpy()
"""

RELU = """\
def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return np.maximum(0.0, x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
"""

LIST_SUBCLASS = """\
class States(list):
    pass

def rnn_forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    states, h = States(), h0
    for x in xs:
        h = rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
        states.append(h)
    return states
"""

INT_SUBCLASS = """\
class Count(int):
    def __repr__(self):
        return f"Count({int(self)})"

def rnn_parameter_count(input_size, hidden_size, num_layers):
    first = hidden_size * (input_size + hidden_size) + 2 * hidden_size
    return Count(first + (num_layers - 1) * (2 * hidden_size * hidden_size + 2 * hidden_size))
"""

HUGE_IMAGE = """\
from IPython.display import Image, display
display(Image(data=b"\\x89PNG\\r\\n\\x1a\\n" + bytes(30_000_000), format="png"))
"""

CASES = [
    Case("correct", f"graded {FULL}", _notebook(), "the solution (control)"),
    Case("unanswered", "graded 0", _notebook(**UNANSWERED), "the release as handed out (control)"),
    Case("infinite_loop", "failed: timeout", _count("    while True:\n        pass"), "rnn_parameter_count never returns"),
    Case("ignores_interrupt", "failed: timeout",
         _count("    import signal\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "    while True:\n        try:\n            pass\n        except KeyboardInterrupt:\n            pass"),
         "a loop that ignores SIGINT and KeyboardInterrupt"),
    Case("os_exit", "failed: dead kernel",
         _notebook(rnn_cell="import os\n\ndef rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):\n    os._exit(3)"),
         "rnn_cell calls os._exit"),
    Case("segfault", "failed: dead kernel",
         _notebook(rnn_cell="import ctypes\n\ndef rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):\n"
                            "    return ctypes.string_at(0)"),
         "rnn_cell dereferences NULL through ctypes"),
    Case("sys_exit", "graded 6", _count("    import sys\n    sys.exit('stop grading here')"),
         "rnn_parameter_count calls sys.exit; the other answers are right"),
    Case("memory_bomb", "graded 6",
         _count("    hog = []\n    while True:\n        hog.append(bytearray(256 * 2**20))"),
         "rnn_parameter_count allocates until it fails"),
    Case("print_100mb", f"graded {FULL}", _appended("rnn_forward", 'print("x" * 100_000_000)'),
         "right answers, then 100 MB printed"),
    Case("huge_image", f"graded {FULL}", _appended("rnn_forward", HUGE_IMAGE), "right answers, then a 30 MB image"),
    Case("patch_numpy", "flagged 0", _notebook(rnn_cell=PATCH_NUMPY, rnn_forward=ZEROS_FORWARD,
                                               rnn_parameter_count=None),
         "numpy.allclose and numpy.testing patched, answers all zeros"),
    Case("patch_torch", "flagged 0", _notebook(rnn_cell=PATCH_TORCH, rnn_forward=ZEROS_FORWARD,
                                               rnn_parameter_count=None),
         "torch.nn.RNNCell/RNN patched to agree with all-zero answers"),
    Case("patch_rnnlab", "flagged 0", _prefixed("rnn_cell", PATCH_RNNLAB), "rnnlab's checks replaced by no-ops"),
    Case("patch_builtins", "flagged 0", _prefixed("rnn_cell", PATCH_BUILTINS),
         "builtins.__import__ hands the tests a fake checks module"),
    Case("always_equal", "graded 0", _notebook(rnn_cell=ALWAYS_EQUAL, rnn_forward=ZEROS_FORWARD,
                                                rnn_parameter_count="pass"),
         "results whose __eq__ is always true (every check converts them to numbers first)"),
    Case("ipython_hooks", "flagged 0", _prefixed("rnn_cell", IPYTHON_HOOK),
         "an IPython input transformer turns every later cell into `pass`"),
    Case("edited_test", "flagged 0", _edited_test, "test_rnn_cell replaced by `pass`, no answers"),
    Case("deleted_tests", "flagged 5", _deleted_tests, "rnn_forward unanswered and both its test cells deleted"),
    Case("deleted_answer_and_tests", "flagged 5", _deleted_answer_and_tests,
         "the rnn_forward answer cell and both its test cells deleted (nbgrader alone cannot restore these)"),
    Case("stripped_metadata", f"flagged {FULL}", _stripped, "right answers, every nbgrader metadata removed"),
    Case("not_json", "failed: not a notebook", lambda ctx: {NOTEBOOK: b"{ this is not a notebook"},
         "the file is not JSON"),
    Case("renamed", "failed: wrong file name",
         lambda ctx: {"rnn_forward (1).ipynb": nb.to_bytes(nb.answered(ctx.release, ctx.solution))},
         "right answers under another file name"),
    Case("reads_solutions", "graded 0", _after_each_answer(READ_SOLUTIONS),
         "no answers; each answer cell looks for solutions/ (relative, absolute paths) and runs it"),
    Case("writes_gradebook", "graded 0", _prefixed("rnn_cell", WRITE_GRADEBOOK),
         "sets every score in gradebook.db to 99"),
    Case("detects_nbgrader", "flagged 0", _prefixed("rnn_cell", DETECT),
         "patches the checks only when NBGRADER_EXECUTION is set"),
    Case("warnings", f"graded {FULL}", _notebook(rnn_cell=WARNINGS),
         "right answers that warn and write to stderr (Python and fd 2)"),
    Case("network", f"graded {FULL}", _appended("rnn_cell", NETWORK),
         "right answers, then a connection to a loopback server the test runs"),
    # IPython in answer cells: a correct answer keeps its marks however the kernel ran it.
    Case("cell_magic_time", f"graded {FULL}", _wrapped("rnn_cell", before="%%time\n"), "%%time on top of rnn_cell"),
    Case("cell_magic_capture", f"graded {FULL}", _wrapped("rnn_forward", before="%%capture\n"),
         "%%capture on top of rnn_forward"),
    Case("line_magic_timeit", f"graded {FULL}", _wrapped("rnn_cell", after="\n" + TIMEIT),
         "%timeit after rnn_cell, timing it"),
    Case("display_and_shell", f"graded {FULL}", _wrapped("rnn_cell", after="\n" + DISPLAY),
         "display() and get_ipython().user_ns in the answer cell"),
    Case("kernel_magic", f"graded {FULL}", _wrapped("rnn_cell", before="%autosave 0\n"),
         "%autosave, a magic of the Jupyter kernel"),
    Case("not_replayable", "flagged 2", _wrapped("rnn_cell", before=KERNEL_ONLY),
         "reads get_ipython().kernel, which exists only in a Jupyter kernel: named in the report"),
    # Duplicated nbgrader cells: graded with the release's tests and every copy of the answer.
    Case("split_answer", f"flagged {FULL}", _split_answer, "rnn_cell split in two cells with one grade id"),
    Case("pasted_test_twice", f"flagged {FULL}", _pasted_test(2), "test_rnn_forward pasted once more"),
    Case("pasted_test_thrice", f"flagged {FULL}", _pasted_test(3), "three copies of test_rnn_forward"),
    # Answers that call a library's implementation of what they must write.
    Case("library_rnnlab", "flagged 2", _notebook(rnn_cell=LIBRARY_RNNLAB),
         "rnn_cell returns rnnlab's rnn_cell under another name"),
    Case("library_functional", "flagged 2", _notebook(rnn_cell=LIBRARY_FUNCTIONAL),
         "rnn_cell calls torch's internal rnn_tanh_cell through an alias of torch._VF"),
    Case("library_module", "flagged 5", _notebook(rnn_forward=LIBRARY_MODULE), "rnn_forward runs torch.nn.RNN"),
    Case("torch_arithmetic", f"graded {FULL}", _notebook(rnn_cell=TORCH_ARITHMETIC),
         "a correct rnn_cell written with torch arithmetic (no false positive)"),
    # Values cross as data whatever their container; a wrong answer scores as it should.
    Case("list_subclass", f"graded {FULL}", _notebook(rnn_forward=LIST_SUBCLASS),
         "rnn_forward returns a list subclass of arrays"),
    Case("int_subclass", f"graded {FULL}", _notebook(rnn_parameter_count=INT_SUBCLASS),
         "rnn_parameter_count returns an int subclass"),
    Case("relu_for_tanh", "graded 2", _notebook(rnn_cell=RELU), "ReLU where tanh belongs"),
]

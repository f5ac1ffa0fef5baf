"""The authoritative check: the tests run in the grading process, the student's code elsewhere.

nbgrader runs a submission's test cells in the same kernel as the student's code, so the
student's code can patch what the tests use (``numpy.testing``, ``torch``, ``rnnlab``,
builtins), rewrite later cells through IPython hooks, or write its own score. The
outside check splits the two. A fresh ``python -I`` process in the sandbox, with the
same time and memory limits and no network (:mod:`rnnlab.grading.command.recheck.child`), runs the
student's cells; the test cells, taken from the gradebook (hidden tests included, as the
instructor wrote them), run here, in the grading process, where the names they use that
the student defined become proxies: calling one sends the arguments to the student's
process and decodes the reply as untrusted data (:mod:`rnnlab.grading.command.recheck.wire`). The
comparison with the reference then happens in a process the student's code never ran
in. A test cell passes when it raises nothing, as in nbgrader.

What crosses over: functions (called remotely), arrays, tensors, numbers, strings and
containers of them; modules by name (the grader's own, unpatched copy); a torch module
the grader passes (pickled one way, its parameters copied back); any other object the
student's side holds only as an unreadable stand-in. Read-only cells run on both sides
(see :func:`_student_side`), but here they never call the student's functions.

The student's process replays the cells as the kernel ran them (an IPython shell: magics,
``display``, ``get_ipython()``); a cell that the kernel ran but this process cannot is
reported by name (:attr:`Checked.replay`), never silently scored. Each call of a student's
function says which library implementations it reached (:mod:`rnnlab.grading.command.recheck.tracing`);
a function students must write themselves (:mod:`rnnlab.grading.command.recheck.reference_use`) that
reached one fails its test with that evidence. Every request to the student's process is
held to a CPU-time limit by the job's :class:`~rnnlab.grading.command.cputime.Watchdog`.

Some tests need what cannot cross (models a read-only cell trained with the student's
code, say). The runner's calibration grades the instructor's solution first: the tests it
passes here are the ones the outside check judges, for every student alike; the others
keep nbgrader's in-kernel score, and the report says which they are.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import os
import re
import subprocess
import sys
import time
import types
import warnings
from dataclasses import dataclass, field

from . import reference_use, wire

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
_GRADER_ONLY = "rnnlab.grading"
_LAZY = "__rnnlab_lazy_import__"  # defined by child.py in the student's namespace
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Stopped(BaseException):
    """The student's process was stopped or ended while the grader waited for it.

    ``reason`` is "timeout" (a CPU limit), "overloaded" (the wall-clock backstop, the
    machine too busy) or "died". A BaseException, so that no check turns it into an
    ordinary failed assertion: none of these is a verdict on the answer.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Step:
    """One code cell of the graded notebook, as the outside check runs it.

    ``kind`` is "student" (runs in the student's process), "setup" (a read-only cell:
    runs on both sides) or "test" (runs here only). ``label`` names the cell in reports;
    ``kernel_failed`` says whether the kernel's run of the cell raised.
    """

    kind: str
    source: str
    grade_id: str | None = None
    points: float = 0.0
    label: str = ""
    kernel_failed: bool = False


@dataclass(frozen=True)
class Verdict:
    """The outside verdict on one test cell: "pass", "fail", "library" (the function
    under test used a library implementation: the message gives the evidence) or
    "unknown" (with why)."""

    grade_id: str
    status: str
    max_points: float
    message: str = ""


@dataclass
class Checked:
    """What the outside check found: a verdict per test, and the cells it could not replay."""

    verdicts: list = field(default_factory=list)
    replay: list = field(default_factory=list)


def plan(notebook, source_cells) -> list[Step]:
    """The steps for ``notebook`` (nbformat node, as nbgrader autograded it).

    ``source_cells`` maps grade_id to a dict with ``source``, ``locked``, ``grade``,
    ``solution`` and ``points`` from the gradebook: locked and test cells are taken from
    there, never from the submission.
    """
    steps = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        known = source_cells.get(grade_id)
        label = f"cell {grade_id}" if grade_id else f"cell {index + 1} (no grade id)"
        failed = any(output.get("output_type") == "error" for output in cell.get("outputs", ()))
        if known and known.grade and not known.solution:
            steps.append(Step("test", known.source, grade_id, float(known.points), label))
        elif known and known.locked:
            steps.append(Step("setup", known.source, grade_id, label=label))
        else:
            steps.append(Step("student", cell.source, grade_id, label=label, kernel_failed=failed))
    return steps


def _names(code) -> set:
    """Every name a code object (and the code nested in it) loads."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _student_side(source: str) -> str:
    """A read-only cell as the student's process runs it.

    Its imports of rnnlab.grading are dropped (they serve the tests, which run here), and
    its plain ``import x`` / ``import x as y`` become lazy: the module loads when the
    student's code first uses it, so a notebook that gives both numpy and torch does not
    pay for torch when the answer only uses numpy.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_GRADER_ONLY):
            continue
        if isinstance(node, ast.Import):
            names = [alias for alias in node.names if not alias.name.startswith(_GRADER_ONLY)]
            for alias in names:
                if "." in alias.name:  # `import a.b` binds `a` after importing a.b: keep it eager
                    body.append(ast.Import(names=[alias]))
                else:
                    call = ast.Call(ast.Name(_LAZY, ast.Load()), [ast.Constant(alias.name)], [])
                    body.append(ast.Assign([ast.Name(alias.asname or alias.name, ast.Store())], call))
            continue
        body.append(node)
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=body, type_ignores=[])))


def _remote_exception(error):
    """The exception a student's function raised, rebuilt as a plain exception here."""
    if not isinstance(error, dict):
        return RuntimeError("the student's process sent an unreadable error")
    name = wire.safe_name(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    known = getattr(builtins, name, None)
    if isinstance(known, type) and issubclass(known, Exception):
        try:
            return known(message)
        except TypeError:  # a builtin exception that needs other arguments
            pass
    # Anything else, SystemExit and KeyboardInterrupt included, is an ordinary error here.
    return type(name, (Exception,), {})(message)


def _copy_back(originals, changed):
    """Write the arguments as the student's function left them into the grader's arguments."""
    if isinstance(originals, (tuple, list)) and isinstance(changed, (tuple, list)):
        for original, new in zip(originals, changed):
            _copy_back(original, new)
    elif isinstance(changed, wire.ModuleState) and hasattr(originals, "state_dict"):
        import torch

        own = originals.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, tensor, requires_grad in changed.entries:
                target = own.get(name)
                if target is not None and getattr(tensor, "shape", None) == target.shape:
                    target.copy_(tensor)
                    if isinstance(target, torch.nn.Parameter):
                        target.requires_grad_(requires_grad)
    elif hasattr(originals, "shape") and getattr(changed, "shape", None) == originals.shape:
        with contextlib.suppress(Exception):
            if hasattr(originals, "copy_"):
                import torch

                originals.copy_(torch.as_tensor(changed))
            else:
                originals[...] = changed


class StudentProcess:
    """The sandboxed process that runs a student's cells and answers calls.

    ``paths`` go first on its ``sys.path`` (the folders of the grader's own packages, so
    that both sides import the same ``rnnlab``). Each request is one unit of the
    ``watchdog``'s CPU-time limits (``call_timeout`` CPU seconds; without a watchdog, wall
    seconds). :attr:`library` counts, per student function, the library implementations
    its calls reached (evidence text -> number of times).
    """

    def __init__(self, sandbox, workdir, call_timeout: float, watchdog=None, paths=()):
        self.call_timeout, self.watchdog = call_timeout, watchdog
        self.library = {}
        to_child, self._send_fd = os.pipe()
        self._reply_fd, from_child = os.pipe()
        argv = [sys.executable, "-I", _CHILD, str(to_child), str(from_child), *paths]
        env = {"MPLBACKEND": "Agg", "NBGRADER_EXECUTION": "autograde",
               "IPYTHONDIR": os.path.join(os.path.realpath(workdir), ".ipython")}
        self.process = subprocess.Popen(
            sandbox.command(argv, workdir, env=env),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_child, from_child), cwd=workdir)
        os.close(to_child)
        os.close(from_child)
        os.set_blocking(self._send_fd, False)

    def request(self, message, label="a call"):
        """Send one request and return the reply; :class:`Stopped` when no reply comes."""
        limit = self.call_timeout
        backstop = limit * (self.watchdog.backstop if self.watchdog else 1.0)
        deadline = time.monotonic() + backstop + (10.0 if self.watchdog else 0.0)
        unit = self.watchdog.unit(label, limit) if self.watchdog else contextlib.nullcontext()
        try:
            with unit:
                wire.send(self._send_fd, message, deadline)
                return wire.receive(self._reply_fd, deadline)
        except (wire.WireTimeout, wire.WireClosed, BrokenPipeError) as exc:
            self.close()
            exceeded = self.watchdog.exceeded if self.watchdog else None
            if exceeded is not None:
                raise Stopped(exceeded.reason, exceeded.detail) from None
            if isinstance(exc, wire.WireTimeout):
                raise Stopped("timeout", f"{label}: no answer within {backstop:g} s") from None
            raise Stopped("died", f"the student's process ended ({_exit_words(self.process.returncode)})") from None

    def run(self, source, label):
        return self.request({"op": "run", "source": source, "label": label}, label)

    def fetch(self, names):
        reply = self.request({"op": "get", "names": sorted(names)}, "reading the student's names")
        return reply if isinstance(reply, dict) else {}

    def call(self, name, args, kwargs):
        try:
            reply = self.request({"op": "call", "name": name, "args": wire.encode(args, trusted=True),
                                  "kwargs": wire.encode(kwargs, trusted=True)}, f"a call of {name}")
            if isinstance(reply, dict) and isinstance(reply.get("library"), list):
                counts = self.library.setdefault(name, {})
                for entry in reply["library"][:20]:
                    if isinstance(entry, list) and len(entry) == 2 and type(entry[1]) is int:
                        counts[str(entry[0])[:300]] = counts.get(str(entry[0])[:300], 0) + max(entry[1], 1)
            if not isinstance(reply, dict) or not reply.get("ok"):
                raise _remote_exception(reply.get("error") if isinstance(reply, dict) else None)
            result = wire.decode(reply.get("result"))
            _copy_back(args, wire.decode(reply.get("args")))
        except wire.WireError as exc:
            raise ValueError(f"{name} sent back something unreadable: {exc}") from None
        return result

    def close(self):
        for fd in (self._send_fd, self._reply_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._send_fd = self._reply_fd = -1
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _exit_words(code):
    if code is None:
        return "still running"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _proxy(process, name):
    def call(*args, **kwargs):
        return process.call(name, args, kwargs)
    call.__name__ = call.__qualname__ = name
    return call


class Unavailable(Exception):
    """A read-only cell, run here, called a function the student defined."""


def _unavailable(name):
    def call(*args, **kwargs):
        raise Unavailable(f"{name} is the student's: read-only cells do not call it on the grading side")
    return call


def _bind(process, namespace, code, call_student: bool):
    """Give ``namespace`` the student's values for the names ``code`` needs and lacks.

    The student's functions become proxies when ``call_student`` (test cells), else
    stand-ins that raise :class:`Unavailable` (read-only cells: what they compute from
    the student's code stays undefined here, and the tests that need it are the ones the
    calibration on the instructor's solution finds not checkable outside).
    """
    wanted = _names(code) - set(namespace) - set(dir(builtins))
    if not wanted:
        return
    for name, encoded in process.fetch(wanted).items():
        if name not in wanted:
            continue
        try:
            value = wire.decode(encoded)
        except wire.WireError:
            continue
        if isinstance(value, wire.Reference):
            if value.kind == "function":
                namespace[name] = _proxy(process, name) if call_student else _unavailable(name)
            elif _DOTTED.match(value.name) and value.name in sys.modules:
                namespace[name] = sys.modules[value.name]  # the grader's own, unpatched module
        else:
            namespace[name] = value


def _execute(source, label, namespace):
    """Run trusted cell code here; None when it raised nothing, else the error in words."""
    try:
        code = compile(source, label, "exec")
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(code, namespace)
    except Stopped:
        raise
    except BaseException as exc:  # a failed test, whatever it raised
        return f"{type(exc).__name__}: {exc}"
    return None


def _needed(steps, applicable):
    """The steps worth running: tests in ``applicable`` (all when None), none after the last."""
    if applicable is None:
        return list(steps)
    kept = [s for s in steps if s.kind != "test" or s.grade_id in applicable]
    tests = [i for i, s in enumerate(kept) if s.kind == "test"]
    return kept[:tests[-1] + 1] if tests else []


@contextlib.contextmanager
def _autograde_environment():
    """NBGRADER_EXECUTION set as nbgrader sets it, for read-only cells that look at it."""
    before = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        yield
    finally:
        if before is None:
            del os.environ["NBGRADER_EXECUTION"]
        else:
            os.environ["NBGRADER_EXECUTION"] = before


def _replay_failure(step, reply) -> str | None:
    """Words for a student's cell that the kernel ran and this process could not, else None."""
    if step.kind != "student" or step.kernel_failed or not isinstance(reply, dict) or reply.get("ok", True):
        return None
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    where = f" at {error['line']}" if isinstance(error.get("line"), str) else ""
    message = _first_line(error.get("message", ""))
    return f"{step.label}{where}: {wire.safe_name(error.get('type', 'Error'))}: {message}"


def _first_line(text) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")[:200]


def check(steps, sandbox, workdir, call_timeout: float, applicable=None, watchdog=None, paths=()) -> Checked:
    """Run ``steps`` with the student's code in a fresh sandboxed process; one verdict per test.

    ``applicable`` limits the tests to those grade ids (the calibration's, None: all); ``watchdog``
    holds each request to ``call_timeout`` CPU seconds; ``paths`` go first on the
    student's ``sys.path``.
    """
    steps = _needed(steps, applicable)
    checked = Checked()
    if not steps:
        return checked
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    process = StudentProcess(sandbox, workdir, call_timeout, watchdog, paths)
    try:
        with _autograde_environment():
            for index, step in enumerate(steps):
                label = f"<cell {index} {step.grade_id or ''}>"
                try:
                    if step.kind != "test":
                        source = step.source if step.kind == "student" else _student_side(step.source)
                        failure = _replay_failure(step, process.run(source, step.label or label))
                        if failure:
                            checked.replay.append(failure)
                    if step.kind in ("setup", "test"):
                        code = compile(step.source, label, "exec")
                        _bind(process, namespace, code, call_student=step.kind == "test")
                        process.library.clear()
                        error = _execute(step.source, label, namespace)
                        if step.kind == "test":
                            checked.verdicts.append(_verdict(step, error, process.library))
                except Stopped as exc:
                    remaining = [s for s in steps[index:] if s.kind == "test"]
                    checked.verdicts += [Verdict(s.grade_id, "unknown", s.points, str(exc)) for s in remaining]
                    break
                except wire.WireError as exc:  # garbage on the channel from a live process
                    remaining = [s for s in steps[index:] if s.kind == "test"]
                    checked.verdicts += [Verdict(s.grade_id, "fail", s.points, f"unreadable reply: {exc}")
                                         for s in remaining]
                    break
    finally:
        process.close()
    return checked


def _verdict(step, error, library) -> Verdict:
    """A test's verdict: failed, passed, or reaching a library implementation it must not."""
    used = reference_use.judge(library)
    if used:
        return Verdict(step.grade_id, "library", step.points, used)
    return Verdict(step.grade_id, "fail" if error else "pass", step.points, error or "")

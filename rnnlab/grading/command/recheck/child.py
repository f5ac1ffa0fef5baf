"""The student's side of the outside check: runs cells and calls functions when asked.

:mod:`rnnlab.grading.command.recheck` starts this file as
``python -I child.py <read fd> <write fd> [folder ...]`` in the sandbox (the folders go
first on ``sys.path``: where the grader's own ``rnnlab`` lives), sends it the student's
cells to run and then calls of the student's functions, one message at a time
(:mod:`rnnlab.grading.command.recheck.wire`), and reads the replies.

Everything here shares a process with the student's code, which may patch any of it, so
nothing here is trusted: the grader treats each reply as untrusted data and compares it
with the reference itself. What this file can do is replay an honest answer as a Jupyter
kernel runs it: cells run in an IPython ``InteractiveShell`` (cell and line magics such as
``%%time``, ``%%capture`` and ``%timeit``, ``display``, ``get_ipython()``, the magics of
ipykernel such as ``%autosave``), one namespace for all of them, an exception (even
``SystemExit``) in a cell does not stop the next, output goes nowhere, and the read-only
cells' imports load when first used. Each call of a student's function runs under
:class:`~rnnlab.grading.command.recheck.tracing.LibraryTracer`, and the reply says which library
implementations it reached.
"""

import builtins
import importlib.util
import os
import re
import sys
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
# The rnnlab package this file belongs to: rnnlab/grading/command/recheck/ is three folders down.
_RNNLAB = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
_MAGIC = re.compile(r"run_(line|cell)_magic\(\s*'([^']+)'")
# Names only IPython gives a cell: a cell reading one of them (or any cell that is not plain
# Python, such as a magic) runs in the shell; a plain Python cell runs the same without it.
_IPYTHON_NAMES = re.compile(r"^(get_ipython|display|In|Out|exit|quit|_+|_[ioed]h|_i+|_i?\d+)$")
_CELL = "<ipython-input-cell>"


def _load(name):
    """A standard-library-only helper of this package, loaded from its path (not through rnnlab)."""
    spec = importlib.util.spec_from_file_location(f"_rnnlab_grading_{name}", os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lazy_import(name):
    """``import name``, deferred until the module is first used (read-only cells' imports)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _describe(exc, source=None):
    """An exception as plain data; with the cell's ``source``, the cell line it came from."""
    try:
        message = str(exc)[:4000]
    except BaseException:  # a student's exception whose __str__ fails still needs a reply
        message = "<unprintable>"
    described = {"type": type(exc).__name__, "message": message}
    if source is not None:
        cell_lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
                      if f.filename.startswith("<ipython-input")]
        lines = source.splitlines()
        if cell_lines and 0 < cell_lines[-1] <= len(lines):
            described["line"] = f"line {cell_lines[-1]}: {lines[cell_lines[-1] - 1].strip()[:200]}"
    return described


def _globals_read(code) -> set:
    """Global names that ``code`` (and the code nested in it) reads before or without setting them."""
    import dis

    read, stored = set(), set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_NAME", "LOAD_GLOBAL"):
            read.add(instruction.argval)
        elif instruction.opname in ("STORE_NAME", "STORE_GLOBAL"):
            stored.add(instruction.argval)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            read |= _globals_read(const)
    return read - stored


class Cells:
    """The student's namespace and the IPython shell that runs cells in it.

    The shell starts with the first cell that needs it (IPython syntax, or a name only
    IPython provides); from then on every cell runs in it. Until then a cell of plain
    Python runs with ``exec`` in the same namespace, as the shell would run it, without
    the cost of starting IPython.
    """

    def __init__(self):
        self.namespace = {"__name__": "__main__", "__builtins__": builtins, "__rnnlab_lazy_import__": _lazy_import}
        self.shell = None
        self._kernel_magics = False

    def _start_shell(self):
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "nocolor"
        InteractiveShell.clear_instance()  # one shell per process: this namespace's
        self.shell = InteractiveShell.instance(config=config, user_ns=self.namespace)

    def _plain(self, source):
        """The cell compiled as plain Python, or None when it needs the shell."""
        try:
            code = compile(source, _CELL, "exec")
        except (SyntaxError, ValueError):
            return None
        if any(_IPYTHON_NAMES.match(name) and name not in self.namespace for name in _globals_read(code)):
            return None
        return code

    def _add_kernel_magics(self, source):
        """Register ipykernel's own magics (``%autosave``, ``%connect_info``, ...) when the cell
        uses a magic the plain shell lacks: a Jupyter kernel has them."""
        if self._kernel_magics:
            return
        for kind, name in _MAGIC.findall(self.shell.transform_cell(source)):
            if self.shell.find_magic(name, kind) is None:
                try:
                    from ipykernel.zmqshell import KernelMagics
                except ImportError:
                    return
                self.shell.register_magics(KernelMagics)
                self._kernel_magics = True
                return

    def run(self, source):
        code = self._plain(source) if self.shell is None else None
        if code is not None:
            try:
                exec(code, self.namespace)
            except BaseException as exc:  # like a notebook: report it, keep going
                return {"ok": False, "error": _describe(exc, source)}
            return {"ok": True}
        if self.shell is None:
            self._start_shell()
        try:
            self._add_kernel_magics(source)
        except Exception:  # a cell IPython cannot even transform fails below, with its own error
            pass
        result = self.shell.run_cell(source, store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        return {"ok": True} if error is None else {"ok": False, "error": _describe(error, source)}


def _call(wire, tracer, namespace, request):
    function = namespace.get(request["name"])
    if not callable(function):
        return {"ok": False, "error": {"type": "NameError", "message": f"name {request['name']!r} is not defined"}}
    args = wire.decode(request["args"], allow_pickle=True)  # from the grader: trusted
    kwargs = wire.decode(request["kwargs"], allow_pickle=True)
    tracer.start()
    try:
        result = function(*args, **kwargs)
    except BaseException as exc:
        return {"ok": False, "error": _describe(exc), "library": tracer.stop()}
    library = tracer.stop()
    try:
        return {"ok": True, "result": wire.encode(result), "args": wire.encode(args), "library": library}
    except BaseException as exc:  # a returned object that breaks while it is read
        return {"ok": False, "error": _describe(exc), "library": library}


def _values(wire, namespace, names):
    """The encoded values of ``names``; one that cannot be read goes as an opaque stand-in."""
    reply = {}
    for name in names:
        if name in namespace:
            try:
                reply[name] = wire.encode(namespace[name])
            except BaseException:
                reply[name] = {"opaque": "unreadable"}
    return reply


def main():
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    sys.path[:0] = sys.argv[3:]
    wire = _load("wire")
    tracer = _load("tracing").LibraryTracer(_RNNLAB)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    cells = None
    while True:
        request = wire.receive(read_fd)
        op = request.get("op")
        if op == "run":
            cells = cells or Cells()
            reply = cells.run(request["source"])
        elif op == "get":
            reply = _values(wire, cells.namespace if cells else {}, request["names"])
        elif op == "call":
            reply = _call(wire, tracer, cells.namespace if cells else {}, request)
        else:
            return
        wire.send(write_fd, reply)


if __name__ == "__main__":
    main()

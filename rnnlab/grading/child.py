"""The student's side of the outside check: runs cells and calls functions when asked.

:mod:`rnnlab.grading.outside` starts this file as ``python -I child.py <read fd> <write fd>``
in the sandbox, sends it the student's cells to run and then calls of the student's
functions, one message at a time (:mod:`rnnlab.grading.wire`), and reads the replies.

Everything here shares a process with the student's code, which may patch any of it, so
nothing here is trusted: the grader treats each reply as untrusted data and compares it
with the reference itself. What this file can do is make an honest answer behave as it
would in a notebook: cells run in one namespace, an exception (even ``SystemExit``) in a
cell does not stop the next, magics are no-ops, output goes nowhere, and the read-only
cells' imports load when first used.
"""

import builtins
import importlib.util
import os
import sys


def _load_wire():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py")
    spec = importlib.util.spec_from_file_location("_rnnlab_grading_wire", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Shell:
    """Stands in for ``get_ipython()``: any attribute, call or registration does nothing."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter(())

    def __bool__(self):
        return False


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


def _describe(exc):
    try:
        message = str(exc)[:4000]
    except BaseException:  # a student's exception whose __str__ fails still needs a reply
        message = "<unprintable>"
    return {"type": type(exc).__name__, "message": message}


def _run(namespace, source, label):
    try:
        exec(compile(source, label, "exec"), namespace)
    except BaseException as exc:  # like a notebook: report it, keep going
        return {"ok": False, "error": _describe(exc)}
    return {"ok": True}


def _call(wire, namespace, request):
    function = namespace.get(request["name"])
    if not callable(function):
        return {"ok": False, "error": {"type": "NameError", "message": f"name {request['name']!r} is not defined"}}
    args = wire.decode(request["args"], allow_pickle=True)  # from the grader: trusted
    kwargs = wire.decode(request["kwargs"], allow_pickle=True)
    try:
        result = function(*args, **kwargs)
        return {"ok": True, "result": wire.encode(result), "args": wire.encode(args)}
    except BaseException as exc:
        return {"ok": False, "error": _describe(exc)}


def main():
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    wire = _load_wire()
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    shell = _Shell()
    namespace = {"__name__": "__main__", "__builtins__": builtins,
                 "get_ipython": lambda: shell, "display": lambda *args, **kwargs: None,
                 "__rnnlab_lazy_import__": _lazy_import}
    while True:
        request = wire.receive(read_fd)
        op = request.get("op")
        if op == "run":
            reply = _run(namespace, request["source"], request["label"])
        elif op == "get":
            reply = {name: wire.encode(namespace[name]) for name in request["names"] if name in namespace}
        elif op == "call":
            reply = _call(wire, namespace, request)
        else:
            return
        wire.send(write_fd, reply)


if __name__ == "__main__":
    main()

"""Running a student's function so that whatever it does becomes a message, not a crash.

Warnings and stderr are silenced (nbgrader scores a test cell 0 for any stderr output,
even a harmless warning from correct code), an exception is turned into a message that
shows the student's own line and the inputs, and arguments changed in place are caught.

Every failed check raises :class:`CheckFailed`: its message is the whole red box the
student sees, in JupyterLab, Notebook 7, nbgrader's Validate dialog and the feedback,
with no traceback of the grading code above or below it.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
import warnings

import numpy as np
import torch

_BOLD, _PLAIN = "\x1b[1m", "\x1b[0m"


class CheckFailed(AssertionError):
    """A failed check. IPython shows its message instead of a traceback.

    IPython asks an exception for ``_render_traceback_()`` before formatting frames
    (IPython.core.interactiveshell, the hook ipyparallel uses for remote errors), and
    ipykernel sends what it returns as the error's ``traceback``: so the first line of
    the red box is what is wrong, not the grading library's frames. Being an
    ``AssertionError``, it fails the test cell as nbgrader expects.
    """

    def _render_traceback_(self):
        first, *rest = str(self).splitlines() or [""]
        return [f"{_BOLD}{first}{_PLAIN}", *rest]


def hidden_inputs(name: str):
    """The hidden tests' inputs called ``name`` (:mod:`rnnlab.grading.checks.hidden`).

    That module is left out of the students' hand-out (``make release``): there, a check
    called with ``hidden=True`` says that hidden tests run when the work is graded.
    """
    try:
        from . import hidden
    except ImportError:
        raise CheckFailed("The hidden tests run when your work is graded: their inputs are not in "
                          "the students' copy of rnnlab.") from None
    return getattr(hidden, name)


def _student_frame(exc):
    """The innermost frame of the traceback that is the student's code, or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    libraries = (here, os.path.dirname(np.__file__), os.path.dirname(torch.__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(libraries)]
    return frames[-1] if frames else None


_SHAPE_WORDS = ("matmul", "cannot be multiplied", "not aligned", "size mismatch", "mat1 and mat2",
                "could not be broadcast", "must match the size", "shapes", "dimension")


def explain_exception(name, exc, inputs):
    """What a student reads when their function raised: the error, their line, the inputs, a hint."""
    if isinstance(exc, NotImplementedError):
        return f"{name} is not written yet: it raised NotImplementedError. Replace `raise NotImplementedError()` with your code."
    message = f"{name} raised {type(exc).__name__}: {exc}"
    frame = _student_frame(exc)
    if frame is not None:
        message += f"\n  in {frame.name}, line {frame.lineno}: {(frame.line or '').strip()}"
    message += f"\n  on the inputs {inputs}."
    if any(word in str(exc) for word in _SHAPE_WORDS):
        message += ("\nA shape error in a product usually means a weight used untransposed: torch.nn stores "
                    "weight_ih as (G·H, I) and weight_hh as (G·H, H), so the products are x @ weight_ih.T and "
                    "h @ weight_hh.T. Check also that each gate block is H rows.")
    return message


def _shapes(names, args):
    def one(value):
        if isinstance(value, (tuple, list)):
            return "(" + ", ".join(one(v) for v in value) + ")"
        return str(tuple(value.shape)) if hasattr(value, "shape") else type(value).__name__
    return ", ".join(f"{n} {one(v)}" for n, v in zip(names, args))


def _copy(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _unchanged(before, after):
    if isinstance(before, (tuple, list)):
        return all(_unchanged(b, a) for b, a in zip(before, after))
    if isinstance(before, torch.Tensor):
        return torch.equal(before, after)
    if isinstance(before, np.ndarray):
        return np.array_equal(before, after)
    return True


def call_quietly(fn, args):
    """``fn(*args)`` with warnings, numpy floating-point warnings and stderr silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return fn(*args)


def run_answer(fn, name, arg_names, args, inputs):
    """Call the student's function on copies of ``args``; explain an exception or an input changed in place."""
    given = _copy(args)
    try:
        result = call_quietly(fn, given)
    except Exception as exc:  # a student's error of any kind becomes a message, not a crash
        raise CheckFailed(explain_exception(name, exc, f"{inputs}: {_shapes(arg_names, args)}")) from None
    for arg_name, before, after in zip(arg_names, args, given):
        if not _unchanged(before, after):
            raise CheckFailed(
                f"{name} changed its argument `{arg_name}` in place (with +=, *=, [...] = or an out= argument). "
                "The caller's arrays must stay as they were: compute new arrays instead (h = ..., not h += ...).")
    return result

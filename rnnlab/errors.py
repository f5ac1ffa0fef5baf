"""The exceptions rnnlab raises for bad input, typed so that torch.nn's callers catch them too.

rnnlab promises a ``ValueError`` for a wrong shape and a ``TypeError`` for a wrong dtype,
each naming the argument, what was expected and what came. ``torch.nn``'s recurrent
modules raise ``RuntimeError`` for shapes and ``ValueError`` (input) or ``RuntimeError``
(hidden state) for dtypes. Each class below derives from all of them, so code written
against either library's contract catches the error, and the message stays rnnlab's.
"""

from __future__ import annotations

__all__ = ["ShapeError", "DTypeError"]


class ShapeError(ValueError, RuntimeError):
    """A tensor of the wrong shape: a ``ValueError`` (rnnlab) and a ``RuntimeError`` (torch.nn)."""


class DTypeError(TypeError, ValueError, RuntimeError):
    """A tensor of the wrong dtype: a ``TypeError`` (rnnlab), and the ``ValueError`` (input)
    and ``RuntimeError`` (hidden state) that torch.nn raises."""

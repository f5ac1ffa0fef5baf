"""Input checks shared by the public functions.

Every message names the argument, what was expected and what was given, because the
people who read these errors are students debugging shapes, not library authors.
"""

from __future__ import annotations

import numpy as np
import torch


class ShapeError(ValueError, RuntimeError):
    """A tensor of the wrong shape. A ``ValueError``, as rnnlab promises for bad input, and a
    ``RuntimeError``, as torch.nn raises for shapes, so code written for either catches it."""


class DTypeError(TypeError, ValueError, RuntimeError):
    """A tensor of the wrong dtype. A ``TypeError``, as rnnlab promises, and the
    ``ValueError`` (input) and ``RuntimeError`` (hidden state) that torch.nn raises."""


def describe(value) -> str:
    """A short description of ``value`` for an error message: kind, shape and dtype."""
    if isinstance(value, torch.Tensor):
        return f"a torch tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def check_array(name: str, value, ndim: int | tuple[int, ...]):
    """Check that ``value`` is a floating numpy array or torch tensor of the given rank."""
    if not isinstance(value, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {describe(value)}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if value.ndim not in ranks:
        wanted = " or ".join(f"{r}-D" for r in ranks)
        raise ShapeError(f"{name} must be {wanted}, got {describe(value)}")
    floating = value.is_floating_point() if isinstance(value, torch.Tensor) else np.issubdtype(value.dtype, np.floating)
    if not floating:
        raise DTypeError(
            f"{name} must have a floating dtype (float32 or float64), got {describe(value)}; "
            "convert it with .astype(np.float64) or .double()"
        )


def check_int(name: str, value, minimum: int = 1) -> int:
    """A size such as ``hidden_size`` (at least 1) or a seed (``minimum=0``): an int of at
    least ``minimum`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_positive_int(name: str, value) -> int:
    """A size such as ``hidden_size``: an int of at least 1 (bools are rejected)."""
    return check_int(name, value, 1)

"""Argument checks shared by the public functions: the one home of each.

Every message names the argument, what was expected and what was given, because the
people who read these errors are students debugging shapes, not library authors. Each
check returns the value it accepted (as a plain ``int``, ``float`` or ``bool``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import DTypeError, ShapeError


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
    """A count such as ``hidden_size`` or ``length``: an int of at least ``minimum`` (bools
    are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_positive_int(name: str, value) -> int:
    """A size such as ``hidden_size``: an int of at least 1 (bools are rejected)."""
    return check_int(name, value, 1)


def check_seed(name: str, value, *, generator: bool = False):
    """A random seed: an int of at least 0 (bools are rejected), returned as an ``int``; with
    ``generator=True`` a ``numpy.random.Generator`` is also accepted, and returned as is."""
    if generator and isinstance(value, np.random.Generator):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        also = " or a numpy.random.Generator" if generator else ""
        raise TypeError(f"{name} must be an int{also}, got {describe(value)}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def check_bool(name: str, value) -> bool:
    """A flag: ``True`` or ``False`` only (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return value


def _check_real(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")


def check_number(name: str, value, low: float, high: float = math.inf, *, open_low: bool = False) -> float:
    """A real number in [low, high] ((low, high] with ``open_low``); NaN is refused."""
    _check_real(name, value)
    inside = (value > low if open_low else value >= low) and value <= high  # False for NaN
    if not inside:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value}")
    return float(value)


def check_positive_number(name: str, value) -> float:
    """A real number above 0 and finite, such as a learning rate."""
    _check_real(name, value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def check_range(name: str, value) -> tuple[int, int]:
    """A pair of ints ``(low, high)`` with ``1 <= low <= high``."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)):
        raise TypeError(f"{name} must be a pair of ints (low, high), got {describe(value)}")
    low, high = int(value[0]), int(value[1])
    if not 1 <= low <= high:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value}")
    return low, high

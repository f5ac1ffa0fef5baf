"""Plots of gradient norms against time, on a log scale where exponential decay is a line."""

from __future__ import annotations

import numpy as np

from ._checks import describe


def plot_grad_norms(curves, ax=None, title=None, ylabel=r"$\|\mathrm{d}L/\mathrm{d}h_t\|$"):
    """Plot one or more ``‖∂L/∂h_t‖`` curves against t on a log scale; returns the Axes.

    ``curves`` maps a label to a 1-D array of shape (T,), or to a 2-D array (seeds, T),
    drawn as the median over seeds with a band from the smallest to the largest value.
    A single array is accepted too and drawn without a label. The default y label says
    *total* derivative (d, not ∂), which is what :func:`rnnlab.hidden_grad_norms` returns;
    pass ``ylabel`` for other curves, such as ``‖dL/dc_t‖``.
    """
    import matplotlib.pyplot as plt

    if not isinstance(curves, dict):
        curves = {None: curves}
    if not curves:
        raise ValueError("curves must hold at least one curve, got an empty dict")
    if ax is None:
        ax = plt.subplots(figsize=(6, 3.5))[1]
    for label, values in curves.items():
        array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
        if array.ndim not in (1, 2) or array.shape[-1] == 0:
            raise ValueError(f"curves[{label!r}] must be 1-D (T,) or 2-D (seeds, T), got {describe(array)}")
        if array.ndim == 2:
            steps = np.arange(array.shape[1])
            line, = ax.plot(steps, np.median(array, axis=0), label=label if label is None else f"{label} (median of {len(array)})")
            ax.fill_between(steps, array.min(axis=0), array.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
        else:
            ax.plot(np.arange(array.shape[0]), array, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if any(label is not None for label in curves):
        ax.legend()
    return ax

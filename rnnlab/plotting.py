"""Plots of gradient norms against time, and the figure conventions of the book.

:func:`plot_grad_norms` draws ``‖dL/dh_t‖`` on a log scale, where exponential decay is a
line. :func:`use_book_style` sets what every chapter's figures share: SVG output (sharp
at any zoom), fonts that stay legible when a phone shrinks the figure, and no legend
frame over the data; :func:`legend_outside` and :func:`integer_ticks` place a legend
beside the plotted area and keep fractional ticks off axes that count steps; :func:`show_table`
displays a table of results that scrolls sideways on a narrow screen.
"""

from __future__ import annotations

import html

import numpy as np

from ._checks import describe

BOOK_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "legend.fontsize": 11,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "path",
    "figure.constrained_layout.use": True,
}


def use_book_style():
    """Make the figures of this notebook look like the book's: SVG, 12-point text.

    Call it once at the top of a chapter. Inline figures are then SVG (vector images, so
    labels stay sharp however the page is zoomed), and matplotlib's defaults become
    ``BOOK_STYLE``: a 6.4 x 3.6 inch figure, 11-12 point text, no frame around legends,
    and constrained layout so that legends placed outside the axes stay in the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("svg")
    plt.rcParams.update(BOOK_STYLE)


def legend_outside(ax, where="right", **options):
    """Put the legend of ``ax`` outside its plotting area, so it never hides data.

    ``where="right"`` stacks the entries to the right of the axes; ``where="below"``
    spreads them in columns under the x label (better for wide figures and many entries).
    Further keyword arguments go to ``Axes.legend``. Returns the legend.
    """
    if where == "right":
        placement = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif where == "below":
        handles = ax.get_legend_handles_labels()[0]
        placement = dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0.0,
                         ncol=min(3, max(1, len(handles))))
    else:
        raise ValueError(f"where must be 'right' or 'below', got {where!r}")
    return ax.legend(**(placement | options))


def integer_ticks(ax, axis="x"):
    """Ticks only at whole numbers on ``axis`` ("x", "y" or "both"): for time steps,
    training steps, layers, counts."""
    from matplotlib.ticker import MaxNLocator

    if axis not in ("x", "y", "both"):
        raise ValueError(f"axis must be 'x', 'y' or 'both', got {axis!r}")
    if axis in ("x", "both"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axis in ("y", "both"):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


def table_html(header, rows) -> str:
    """An HTML table (in a sideways-scrolling ``div``) of already formatted cells: ``header``
    a sequence of column titles, ``rows`` a sequence of sequences of cells; each cell is
    shown as ``str(cell)``, HTML-escaped."""
    def cells(tag, row):
        return "".join(f"<{tag}>{html.escape(str(cell))}</{tag}>" for cell in row)
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return ('<div style="overflow-x: auto"><table class="table"><thead>'
            f'<tr>{cells("th", header)}</tr></thead><tbody>{body}</tbody></table></div>')


def show_table(header, rows):
    """Display :func:`table_html` ``(header, rows)`` in the notebook (IPython's ``display``)."""
    from IPython.display import HTML, display

    display(HTML(table_html(header, rows)))


def plot_grad_norms(curves, ax=None, title=None, ylabel=r"$\|\mathrm{d}L/\mathrm{d}h_t\|$"):
    """Plot one or more ``‖dL/dh_t‖`` curves against t on a log scale; returns the Axes.

    ``curves`` maps a label to a 1-D array of shape (T,), or to a 2-D array (seeds, T),
    drawn as the median over seeds with a band from the smallest to the largest value.
    A single array is accepted too and drawn without a label. The default y label says
    *total* derivative (d, not ∂), which is what :func:`rnnlab.hidden_grad_norms` returns;
    pass ``ylabel`` for other curves, such as ``‖dL/dc_t‖``. The x axis counts time steps
    from 0 (whole numbers only); the legend sits to the right of the axes.
    """
    import matplotlib.pyplot as plt

    if not isinstance(curves, dict):
        curves = {None: curves}
    if not curves:
        raise ValueError("curves must hold at least one curve, got an empty dict")
    if ax is None:
        ax = plt.subplots()[1]
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
    integer_ticks(ax)
    if title:
        ax.set_title(title)
    if any(label is not None for label in curves):
        legend_outside(ax)
    return ax

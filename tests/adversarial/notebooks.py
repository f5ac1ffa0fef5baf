"""Building submissions: the released notebook, answered, then edited as a student might.

Cells are found by their nbgrader grade id, always in the *release*
(``exercises/<a>/<a>.ipynb``), so a submission is what a student could really hand in.
"""

from __future__ import annotations

import copy
import re

import nbformat

_DELIMITERS = re.compile(r"\n? *### (BEGIN|END) SOLUTION *")


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cell(notebook, wanted: str):
    """The cell with grade id ``wanted`` (KeyError naming it when absent)."""
    for candidate in notebook.cells:
        if grade_id(candidate) == wanted:
            return candidate
    raise KeyError(f"no cell with grade id {wanted!r}")


def solution_sources(solution) -> dict:
    """grade id -> source of each answer cell of the instructor's notebook, delimiters removed."""
    return {grade_id(c): _DELIMITERS.sub("", c.source) for c in solution.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def answered(release, solution, sources=None):
    """A copy of ``release`` with every answer cell answered as in ``solution``, then ``sources``.

    ``sources`` maps an answer cell's grade id to a whole new source; the special value
    ``None`` leaves that cell as released (unanswered).
    """
    notebook = copy.deepcopy(release)
    answers = {**solution_sources(solution), **(sources or {})}
    for target in notebook.cells:
        if target.metadata.get("nbgrader", {}).get("solution") and answers.get(grade_id(target)) is not None:
            target.source = answers[grade_id(target)]
    return notebook


def without(notebook, grade_ids):
    """A copy of ``notebook`` without the cells of ``grade_ids``."""
    copied = copy.deepcopy(notebook)
    copied.cells = [c for c in copied.cells if grade_id(c) not in set(grade_ids)]
    return copied


def stripped(notebook):
    """A copy of ``notebook`` with every cell's nbgrader metadata removed (cell ids kept)."""
    copied = copy.deepcopy(notebook)
    for target in copied.cells:
        target.metadata.pop("nbgrader", None)
    return copied


def duplicated(notebook, wanted: str, copies: int = 2, first_source=None):
    """A copy of ``notebook`` where the cell ``wanted`` appears ``copies`` times in a row.

    The copies carry the same nbgrader metadata and new cell ids, as JupyterLab's copy and
    paste or Split Cell leaves them. ``first_source`` replaces the source of the first
    copy (the first half of a split cell, the original being the second half).
    """
    copied = copy.deepcopy(notebook)
    index = next(i for i, c in enumerate(copied.cells) if grade_id(c) == wanted)
    original = copied.cells[index]
    twins = [copy.deepcopy(original) for _ in range(copies - 1)]
    for number, twin in enumerate(twins, 1):
        twin["id"] = f"{original.get('id', 'cell')}-copy-{number}"
    if first_source is not None:
        twins[0].source = first_source
        run = twins[:1] + [original] + twins[1:]
    else:
        run = [original] + twins
    copied.cells[index:index + 1] = run
    return copied


def to_bytes(notebook) -> bytes:
    return nbformat.writes(notebook).encode()

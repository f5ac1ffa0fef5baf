"""Tamper evidence: a submission's locked cells compared with the release, metadata put back.

nbgrader restores an edited locked cell from the gradebook and, with
``OverwriteCells.add_missing_cells``, a deleted test cell, but says so only in a log
line, and a cell whose nbgrader metadata was stripped (some editors drop it) is no
longer recognised at all. Before nbgrader runs, :func:`examine` compares every locked
cell of the submission with what was released (the gradebook's source with the hidden
tests removed, as ``generate_assignment`` released it) by an MD5 checksum of its source,
type and points, gives stripped cells their metadata back from the release, matched by
cell id or by identical source, and puts deleted locked cells back where they were
released. Each difference becomes a :class:`Finding` that the report lists with the
submission.

Several cells with one grade id (an answer cell split in two, a test cell pasted to run it
again: JupyterLab copies the nbgrader metadata with the cell) are not tampering, but
nbgrader cannot grade them (its ``DeduplicateIds`` leaves the copies with empty metadata,
on which ``OverwriteCells.add_missing_cells`` raises ``KeyError: 'grade_id'``).
:func:`deduplicate` keeps the metadata on the last copy, as nbgrader does, and makes the
other copies ordinary cells: every copy of an answer still runs, and the test that counts
is the release's (restored from the gradebook at the last copy's place). The same rule
serves plain ``nbgrader autograde`` through :class:`~.preprocessors.DeduplicateIds` in the course's
``nbgrader_config.py``.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

from nbformat import NotebookNode

_STRIPPED = "metadata restored"
DUPLICATED = "duplicated cell"


@dataclass(frozen=True)
class Finding:
    """One difference between a submission and the release."""

    grade_id: str
    change: str
    detail: str = ""

    def __str__(self):
        if self.change == DUPLICATED:
            return f"{DUPLICATED} {self.grade_id}" + (f" ({self.detail})" if self.detail else "")
        return f"{self.grade_id}: {self.change}" + (f" ({self.detail})" if self.detail else "")

    @property
    def tampering(self) -> bool:
        """False for a duplicated cell: graded as it is, only worth a look."""
        return self.change != DUPLICATED


def checksum(source: str, cell_type: str, points: float = 0.0) -> str:
    """MD5 of what a locked cell must keep: its source, its type and its points."""
    return hashlib.md5(f"{cell_type}\0{float(points)!r}\0{source}".encode()).hexdigest()


def released_sources(cells: dict, hide_tests) -> dict[str, str]:
    """grade_id -> the source students received: ``hide_tests`` strips hidden-test regions."""
    released = {}
    for grade_id, info in cells.items():
        cell = NotebookNode(source=info.source, cell_type=info.cell_type, metadata={})
        hide_tests(cell)
        released[grade_id] = cell.source
    return released


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _release_metadata(cells: dict, released: dict, release_nb) -> tuple[dict, dict]:
    """nbgrader metadata of the release, by cell id and, for locked cells, by released source."""
    by_id, by_source = {}, {}
    for cell in (release_nb.cells if release_nb is not None else ()):
        grade_id = _grade_id(cell)
        if grade_id in cells and cell.get("id"):
            by_id[cell["id"]] = cell.metadata["nbgrader"]
    for grade_id, info in cells.items():
        if info.locked:
            meta = {"grade": info.grade, "solution": info.solution, "locked": True,
                    "grade_id": grade_id, "schema_version": 3}
            if info.grade:
                meta["points"] = info.points
            by_source.setdefault((info.cell_type, released[grade_id]), meta)
    return by_id, by_source


def restore_metadata(notebook, cells: dict, released: dict, release_nb=None) -> list[Finding]:
    """Give cells without nbgrader metadata the release's, matched by cell id or identical source.

    Changes ``notebook`` in place. A grade id already present elsewhere in the
    submission is never given out twice.
    """
    by_id, by_source = _release_metadata(cells, released, release_nb)
    present = {_grade_id(cell) for cell in notebook.cells} - {None}
    restored = {}
    for cell in notebook.cells:
        if _grade_id(cell) is not None:
            continue
        meta, how = by_id.get(cell.get("id")), "cell id"
        if meta is None or meta["grade_id"] in present:
            meta, how = by_source.get((cell.cell_type, cell.source)), "identical source"
        if meta is None or meta["grade_id"] in present:
            continue
        cell.setdefault("metadata", NotebookNode())["nbgrader"] = NotebookNode(copy.deepcopy(dict(meta)))
        present.add(meta["grade_id"])
        restored.setdefault(how, []).append(meta["grade_id"])
    return [Finding(", ".join(ids) if len(ids) <= 3 else f"{len(ids)} cells", _STRIPPED,
                    f"nbgrader metadata was missing; matched by {how}") for how, ids in restored.items()]


def deduplicate(notebook) -> list[Finding]:
    """Keep the nbgrader metadata of each grade id on its last cell only (in place).

    The earlier copies lose their nbgrader metadata altogether and run as ordinary cells.
    """
    copies = {}
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id is not None:
            copies.setdefault(grade_id, []).append(cell)
    findings = []
    for grade_id, found in copies.items():
        if len(found) > 1:
            for cell in found[:-1]:
                del cell.metadata["nbgrader"]
            findings.append(Finding(grade_id, DUPLICATED, f"{len(found)} copies: every copy runs, "
                                    "the last one is graded as the release's cell"))
    return findings



def compare(notebook, cells: dict, released: dict) -> list[Finding]:
    """Every locked cell of the release that the submission lacks, duplicates or changed."""
    findings = []
    by_grade_id = {}
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        if grade_id not in cells:
            findings.append(Finding(grade_id, "unknown cell", "not in the release; nbgrader ignores its id"))
        by_grade_id.setdefault(grade_id, []).append(cell)
    for grade_id, info in cells.items():
        if not info.locked:
            continue
        found = by_grade_id.get(grade_id, [])
        if not found:
            kind = "test cell" if info.grade else "read-only cell"
            findings.append(Finding(grade_id, "deleted", f"{kind} missing; the release's is put back"))
            continue
        cell = found[-1]
        points = cell.metadata["nbgrader"].get("points", 0.0) if info.grade else 0.0
        try:
            given = checksum(cell.source, cell.cell_type, float(points))
        except (TypeError, ValueError):
            given = None
        if given != checksum(released[grade_id], info.cell_type, info.points if info.grade else 0.0):
            findings.append(Finding(grade_id, "edited", "checksum differs from the release; nbgrader restores it"))
    return findings


def restore_deleted(notebook, cells: dict, release_nb) -> None:
    """Put every locked cell of the release that ``notebook`` lacks back where it was released.

    Each goes after the submission's copy of the nearest earlier release cell that is
    still there (or first). nbgrader's own ``add_missing_cells`` gives up when that
    earlier cell was deleted too; this does not. nbgrader then restores the hidden tests
    from the gradebook as for any edited locked cell. Changes ``notebook`` in place.
    """
    position = {_grade_id(cell): index for index, cell in enumerate(notebook.cells) if _grade_id(cell)}
    previous = None
    for cell in release_nb.cells:
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        if grade_id not in position and getattr(cells.get(grade_id), "locked", False):
            at = position[previous] + 1 if previous is not None else 0
            notebook.cells.insert(at, copy.deepcopy(cell))
            position = {_grade_id(c): i for i, c in enumerate(notebook.cells) if _grade_id(c)}
        if grade_id in position:
            previous = grade_id


def examine(notebook, cells: dict, hide_tests, release_nb=None) -> list[Finding]:
    """Deduplicate grade ids, restore stripped metadata in ``notebook``, compare it with the
    release, put deleted locked cells back (all in place); return what differed."""
    released = released_sources(cells, hide_tests)
    duplicates = deduplicate(notebook)
    findings = duplicates + restore_metadata(notebook, cells, released, release_nb) + compare(notebook, cells, released)
    if release_nb is not None:
        restore_deleted(notebook, cells, release_nb)
    return findings

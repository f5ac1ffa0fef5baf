"""Regenerate the nbgrader assignments from their text sources, then the student versions.

    .venv/bin/python tools/build_exercises.py              # every assignment
    .venv/bin/python tools/build_exercises.py bptt         # some of them
    .venv/bin/python tools/build_exercises.py --root DIR   # in another copy of the course

For each assignment ``a``:

1. ``solutions/a.md`` (text, reviewed as a diff) becomes ``solutions/a/a.ipynb``, the
   instructor's notebook with nbgrader's cell metadata (nbgrader's "source"), read with
   myst-nb's MyST notebook reader;
2. nbgrader's ``generate_assignment a --force --no-db``, run in this process through
   nbgrader's API, writes ``exercises/a/a.ipynb``, the notebook students open (nbgrader's
   "release"); one ``generate_assignment "*"`` does them all when every assignment is built.

Both notebooks are generated and committed; never edit them by hand. The test
``tests/test_exercises.py::test_committed_notebooks_are_regenerated_exactly`` fails when
they differ from what this script produces.

The source format is MyST Markdown as Jupyter Book writes notebooks (no front matter
needed), with the nbgrader role of a cell given by its options:

* a code cell opens with a line ```` ```{code-cell} ipython3 ```` and ends with ```` ``` ````;
  option lines ``:key: value`` may follow the opening line:
  ``:nbgrader: solution`` with ``:grade_id: <id>`` for code students write (between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``), ``:nbgrader: tests`` with
  ``:grade_id:`` and ``:points:`` for an autograded test cell; any other code cell is
  given code, locked;
* a line ``+++`` starts a new Markdown cell; ``+++ {"nbgrader": "answer", "grade_id":
  "...", "points": 3}`` starts a written answer, graded by hand; any other Markdown cell
  is locked text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from myst_nb.core.read import read_myst_markdown_notebook
from nbgrader.apps.api import NbGraderAPI
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _nbgrader(grade_id, *, solution=False, grade=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _code_cell(assignment, number, cell):
    options = dict(cell.metadata)
    role = options.pop("nbgrader", None)
    grade_id = options.pop("grade_id", None)
    points = options.pop("points", None)
    if options:
        raise ValueError(f"{assignment}.md, cell {number}: unknown option(s) {sorted(options)}")
    if role == "solution":
        meta = _nbgrader(grade_id, solution=True)
    elif role == "tests":
        meta = _nbgrader(grade_id, grade=True, points=int(points))
    elif role is None:
        grade_id = f"{assignment}-given-{number}"
        meta = _nbgrader(grade_id)
    else:
        raise ValueError(f"{assignment}.md, cell {number}: :nbgrader: must be solution or tests, got {role!r}")
    if role and not isinstance(grade_id, str):
        raise ValueError(f"{assignment}.md, cell {number}: a {role} cell needs a :grade_id: (a name), got {grade_id!r}")
    return nbformat.v4.new_code_cell(cell.source, id=grade_id, metadata=meta)


def _markdown_cell(assignment, number, cell):
    options = cell.metadata
    if options.get("nbgrader") == "answer":
        grade_id = options["grade_id"]
        meta = _nbgrader(grade_id, solution=True, grade=True, points=int(options["points"]))
    elif options:
        raise ValueError(f"{assignment}.md, cell {number}: unknown Markdown cell options {dict(options)}")
    else:
        grade_id = f"{assignment}-text-{number}"
        meta = _nbgrader(grade_id)
    return nbformat.v4.new_markdown_cell(cell.source, id=grade_id, metadata=meta)


def parse(assignment: str, text: str) -> nbformat.NotebookNode:
    """The nbgrader notebook written in ``text`` (the format of this module's docstring).

    myst-nb's reader (the one Jupyter Book uses for the chapters) splits the text into cells
    with their options; this function turns the options into nbgrader's cell metadata.
    """
    cells = []
    for number, cell in enumerate(read_myst_markdown_notebook(text).cells, start=1):
        if cell.cell_type == "code":
            cells.append(_code_cell(assignment, number, cell))
        elif cell.cell_type == "markdown":
            cells.append(_markdown_cell(assignment, number, cell))
        else:
            raise ValueError(f"{assignment}.md, cell {number}: a {cell.cell_type} cell has no nbgrader role")
    ids = [cell.id for cell in cells]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{assignment}.md: grade_id used twice: {duplicates}")
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return notebook


def build_source(root: Path, assignment: str) -> Path:
    """Write ``solutions/<a>/<a>.ipynb`` from ``solutions/<a>.md``; returns its path."""
    notebook = parse(assignment, (root / "solutions" / f"{assignment}.md").read_text(encoding="utf-8"))
    nbformat.validate(notebook)
    path = root / "solutions" / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
    return path


def release(root: Path, assignment: str) -> None:
    """Write ``exercises/<a>/`` as ``nbgrader generate_assignment <a> --force --no-db`` does, in process.

    nbgrader's API (:class:`nbgrader.apps.api.NbGraderAPI`) runs it with the course's own
    ``nbgrader_config.py`` (only that file: a config in the user's Jupyter folders does not
    change what is committed) and without the gradebook; ``"*"`` releases every assignment.
    """
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.GenerateAssignment.no_database = True  # what --no-db sets
    config.SaveCells.enabled = False
    done = NbGraderAPI(config=config).generate_assignment(assignment, force=True, create=False)
    if not done["success"]:
        raise SystemExit(f"nbgrader generate_assignment {assignment} failed:\n{done.get('log', '')}{done['error']}")


def assignments(root: Path) -> list[str]:
    """Every assignment that has a text source, ``solutions/<a>.md``."""
    return sorted(path.stem for path in (root / "solutions").glob("*.md"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="*", help="assignments to build (default: all)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course root (default: this repository)")
    args = parser.parse_args(argv)
    chosen = args.assignment or assignments(args.root)
    for assignment in chosen:
        build_source(args.root, assignment)
    if args.assignment:
        for assignment in chosen:
            release(args.root, assignment)
    else:
        release(args.root, "*")
    for assignment in chosen:
        print(f"built solutions/{assignment}/{assignment}.ipynb and exercises/{assignment}/{assignment}.ipynb")


if __name__ == "__main__":
    main()

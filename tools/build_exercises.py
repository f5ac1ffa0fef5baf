"""Regenerate the nbgrader assignments from their text sources, then the student versions.

    .venv/bin/python tools/build_exercises.py              # every assignment
    .venv/bin/python tools/build_exercises.py bptt         # some of them
    .venv/bin/python tools/build_exercises.py --root DIR   # in another copy of the course

For each assignment ``a``:

1. ``solutions/a.md`` (text, reviewed as a diff) becomes ``solutions/a/a.ipynb``, the
   instructor's notebook with nbgrader's cell metadata (nbgrader's "source");
2. ``nbgrader generate_assignment a --force --no-db`` writes ``exercises/a/a.ipynb``,
   the notebook students open (nbgrader's "release"); one ``generate_assignment "*"``
   does them all when every assignment is built (nbgrader then warns that the ``.md``
   files hold no notebooks: harmless).

Both notebooks are generated and committed; never edit them by hand. The test
``tests/test_exercises.py::test_committed_notebooks_are_regenerated_exactly`` fails when
they differ from what this script produces.

The source format is MyST Markdown as Jupyter Book writes notebooks, with the nbgrader
role of a cell given by its options:

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
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CODE_START = re.compile(r"^```\{code-cell\}")
OPTION = re.compile(r"^:(\w+):\s*(.*)$")


def _nbgrader(grade_id, *, solution=False, grade=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _code_cell(assignment, number, options, source):
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
    if role and not grade_id:
        raise ValueError(f"{assignment}.md, cell {number}: a {role} cell needs a :grade_id:")
    return nbformat.v4.new_code_cell(source, id=grade_id, metadata=meta)


def _markdown_cell(assignment, number, header, source):
    options = json.loads(header) if header else {}
    if options.get("nbgrader") == "answer":
        grade_id = options["grade_id"]
        meta = _nbgrader(grade_id, solution=True, grade=True, points=int(options["points"]))
    elif options:
        raise ValueError(f"{assignment}.md, cell {number}: unknown Markdown cell options {options}")
    else:
        grade_id = f"{assignment}-text-{number}"
        meta = _nbgrader(grade_id)
    return nbformat.v4.new_markdown_cell(source, id=grade_id, metadata=meta)


def parse(assignment: str, text: str) -> nbformat.NotebookNode:
    """The nbgrader notebook written in ``text`` (the format of this module's docstring)."""
    cells = []
    lines = text.splitlines()
    markdown, header, i = [], "", 0

    def flush_markdown():
        source = "\n".join(markdown).strip("\n")
        if source.strip() or header:
            cells.append(_markdown_cell(assignment, len(cells) + 1, header, source))

    while i < len(lines):
        line = lines[i]
        if CODE_START.match(line):
            flush_markdown()
            markdown, header = [], ""
            i += 1
            options = {}
            while i < len(lines) and OPTION.match(lines[i]):
                key, value = OPTION.match(lines[i]).groups()
                options[key] = value.strip()
                i += 1
            body = []
            while i < len(lines) and lines[i] != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"{assignment}.md: a code cell is not closed with ```")
            cells.append(_code_cell(assignment, len(cells) + 1, options, "\n".join(body).strip("\n")))
        elif line.startswith("+++"):
            flush_markdown()
            markdown, header = [], line[3:].strip()
        else:
            markdown.append(line)
        i += 1
    flush_markdown()
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
    """Run ``nbgrader generate_assignment`` (with this interpreter's bin/ on PATH); ``"*"`` for all."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(["nbgrader", "generate_assignment", assignment, "--force", "--no-db"],
                          cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout}{done.stderr}")


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

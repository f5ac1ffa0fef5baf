"""The course directory as nbgrader sees it: its config, its folders and its gradebook.

Everything the grading command needs to know about a course before it grades anyone:
where submissions are, which notebooks an assignment has and, from the gradebook, the
cells nbgrader recorded at ``generate_assignment`` (sources with hidden tests, checksums,
points) — the reference against which submissions are checked for tampering and whose
tests the outside check runs.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.autogradeapp import AutogradeApp

from .records import SourceCell


class Course:
    """A course directory with its nbgrader config loaded as ``nbgrader autograde`` loads it."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"course directory {str(root)!r} does not exist")
        with contextlib.chdir(self.root):
            app = AutogradeApp()
            app.log.setLevel("ERROR")
            app.initialize([])
        self.config = app.config
        self.coursedir = app.coursedir
        self.coursedir.root = str(self.root)

    def folder(self, kind: str) -> Path:
        """``source``, ``release``, ``submitted``, ``autograded`` or ``feedback`` folder of the course."""
        name = getattr(self.coursedir, f"{kind}_directory")
        return self.root / name

    def gradebook(self) -> Gradebook:
        return Gradebook(self.coursedir.db_url, self.coursedir.course_id)

    def submissions(self, assignment: str, students=None) -> dict[str, Path]:
        """Student id -> submitted folder of ``assignment`` (only ``students`` when given)."""
        found = {}
        submitted = self.folder("submitted")
        for folder in sorted(submitted.glob(f"*/{assignment}")):
            if folder.is_dir() and (students is None or folder.parent.name in students):
                found[folder.parent.name] = folder
        missing = set(students or ()) - set(found)
        if missing:
            raise ValueError(f"no submission of {assignment!r} for student(s) {', '.join(sorted(missing))} "
                             f"under {submitted}")
        return found

    def has_assignment(self, assignment: str) -> bool:
        with self.gradebook() as gb:
            try:
                return bool(gb.find_assignment(assignment).notebooks)
            except MissingEntry:
                return False

    def record_assignment(self, assignment: str) -> None:
        """Record ``assignment`` in the gradebook from the source folder, as generate_assignment does.

        The release it writes goes to a scratch folder, so the committed ``exercises/`` stays as it is.
        """
        if not (self.folder("source") / assignment).is_dir():
            raise ValueError(f"assignment {assignment!r} has no source folder {self.folder('source') / assignment}")
        with tempfile.TemporaryDirectory(prefix="rnnlab-release-") as scratch:
            command = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                       f"--CourseDirectory.release_directory={scratch}"]
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout}{done.stderr}")

    def notebooks(self, assignment: str) -> list[str]:
        """The notebook names (without .ipynb) of ``assignment`` in the gradebook."""
        with self.gradebook() as gb:
            return sorted(nb.name for nb in gb.find_assignment(assignment).notebooks)

    def source_cells(self, assignment: str, notebook: str) -> dict[str, SourceCell]:
        """grade_id -> what the gradebook knows of that cell of the source notebook."""
        with self.gradebook() as gb:
            record = gb.find_notebook(notebook, assignment)
            points = {cell.name: float(cell.max_score) for cell in record.grade_cells}
            solutions = {cell.name for cell in record.solution_cells}
            return {cell.name: SourceCell(source=cell.source, cell_type=cell.cell_type, locked=bool(cell.locked),
                                          checksum=cell.checksum, grade=cell.name in points,
                                          solution=cell.name in solutions, points=points.get(cell.name, 0.0))
                    for cell in record.source_cells}

    def release_notebook(self, assignment: str, notebook: str) -> Path:
        return self.folder("release") / assignment / f"{notebook}.ipynb"

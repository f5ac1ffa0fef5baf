"""nbgrader's ``OverwriteCells``, without its false alarm about test cells released without their hidden tests.

When autograding, nbgrader compares each locked cell of a submission with the source
cell recorded in the gradebook and logs "Attribute 'checksum' for cell ... has
changed!" when they differ. A test cell with hidden tests always differs: students
received it with the hidden region removed (``generate_assignment`` does that), while
the gradebook keeps it whole. So every submission, the untouched release included,
logged one false warning per hidden-test cell (nbgrader issue #1961), and a real edit
drowned among them.

:class:`OverwriteCells` first puts the hidden tests back into a cell that is exactly as
released, so nbgrader finds it unchanged; any other difference still warns, and nbgrader
restores the cell from the gradebook as before. ``nbgrader_config.py`` uses it in
``Autograde.sanitize_preprocessors``.
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader import preprocessors
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests


class OverwriteCells(preprocessors.OverwriteCells):
    """``OverwriteCells`` that knows a released test cell lacks its hidden tests."""

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") is not None and meta.get("locked"):
            try:
                source = self.gradebook.find_source_cell(meta["grade_id"], self.notebook_id, self.assignment_id)
            except MissingEntry:
                source = None  # nbgrader itself reports unknown cells
            if source is not None and source.cell_type == cell.cell_type and cell.source == self._released(source):
                cell.source = source.source
        return super().preprocess_cell(cell, resources, cell_index)

    def _released(self, source) -> str:
        """The source cell as ``generate_assignment`` released it: hidden-test region removed."""
        released = NotebookNode(source=source.source, cell_type=source.cell_type, metadata={})
        ClearHiddenTests(parent=self)._remove_hidden_test_region(released)
        return released.source

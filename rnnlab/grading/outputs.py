"""Preprocessors that the grading command adds to nbgrader's autograde, after execution.

- :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` counts lines, so one 100 MB line
  or a 50 MB image passes untouched into the autograded notebook, the feedback and the
  formgrader. This caps every output by size and replaces what is over the cap with a
  short note.
- :class:`StderrIsNotFailure`: nbgrader scores a test cell 0 when anything reaches
  stderr, even a harmless warning printed by a correct answer. A failed test raises,
  and that still scores 0; text on stderr is kept, as ordinary output.
"""

from __future__ import annotations

import json

from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer


def _size(value) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list):
        return sum(_size(v) for v in value)
    return len(json.dumps(value))


def _note(size: int, what: str) -> str:
    return f"[{what} of {size / 1e6:.1f} MB removed by the grader: outputs are limited in size]\n"


class LimitOutputSize(NbGraderPreprocessor):
    """Replace any output larger than ``max_bytes`` (and any beyond ``max_cell_bytes`` per cell)."""

    max_bytes = Integer(200_000, help="largest single output kept, in bytes").tag(config=True)
    max_cell_bytes = Integer(1_000_000, help="largest total output of one cell kept, in bytes").tag(config=True)

    def _limited(self, output, budget):
        if output.output_type == "stream":
            size = _size(output.text)
            if size > min(self.max_bytes, budget):
                output.text = output.text[: max(0, min(self.max_bytes, budget) // 4)] + "\n" + _note(size, "text")
            return output, _size(output.text)
        data = output.get("data")
        if data is not None:
            size = _size(dict(data))
            if size > min(self.max_bytes, budget):
                return NotebookNode(output_type="stream", name="stdout", text=_note(size, "display output")), 0
            return output, size
        if output.output_type == "error":
            size = _size(output.traceback) + _size(output.evalue)
            if size > min(self.max_bytes, budget):
                output.evalue = output.evalue[:2000]
                output.traceback = [line[:2000] for line in output.traceback[:40]]
            return output, _size(output.traceback)
        return output, 0

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            budget, kept = self.max_cell_bytes, []
            for output in cell.outputs:
                output, used = self._limited(output, budget)
                budget = max(0, budget - used)
                kept.append(output)
            cell.outputs = kept
        return cell, resources


class StderrIsNotFailure(NbGraderPreprocessor):
    """In test cells, turn stderr output into ordinary output so it does not score 0."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for output in cell.outputs:
                if output.output_type == "stream" and output.get("name") == "stderr":
                    output.name = "stdout"
        return cell, resources

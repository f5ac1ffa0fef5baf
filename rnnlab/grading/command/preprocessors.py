"""Every nbgrader preprocessor this course adds to nbgrader's own (nbgrader's converters run
them; ``nbgrader_config.py`` and the grading command list them).

Sanitizing, before execution (``Autograde.sanitize_preprocessors`` in ``nbgrader_config.py``):

- :class:`DeduplicateIds`: nbgrader's ``DeduplicateIds`` made safe for
  ``add_missing_cells``: two cells with one grade id are graded at the last copy
  (:func:`rnnlab.grading.command.tamper.deduplicate`).
- :class:`OverwriteCells`: nbgrader's ``OverwriteCells`` without its false alarm about test
  cells released without their hidden tests. When autograding, nbgrader compares each
  locked cell of a submission with the source cell recorded in the gradebook and logs
  "Attribute 'checksum' for cell ... has changed!" when they differ. A test cell with
  hidden tests always differs: students received it with the hidden region removed, while
  the gradebook keeps it whole (nbgrader issue #1961). This one first puts the hidden
  tests back into a cell that is exactly as released, so nbgrader finds it unchanged; any
  other difference still warns, and nbgrader restores the cell from the gradebook.

Executing and after it (added by the grading command's job, :mod:`.job`):

- :class:`TimedExecute`: nbgrader's ``Execute`` with each cell held to CPU seconds.
- :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` counts lines, so one 100 MB line
  or a 50 MB image passes untouched into the autograded notebook, the feedback and the
  formgrader. This caps every output by size and replaces what is over the cap with a
  short note.
- :class:`StderrIsNotFailure`: nbgrader scores a test cell 0 when anything reaches
  stderr, even a harmless warning printed by a correct answer. A failed test raises,
  and that still scores 0; text on stderr is kept, as ordinary output.

Feedback (``GenerateFeedback.preprocessors``; :mod:`.feedback`):

- :class:`HideHiddenTests`: the hidden tests' source, tracebacks and the grader's notes to
  the instructor stay out of the feedback.
- :class:`ReadableFeedback`: long message lines wrap, figures get a text alternative.
"""

from __future__ import annotations

import json

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbgrader import preprocessors, utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, Execute, GetGrades, NbGraderPreprocessor
from traitlets import Bool, Float, Integer, List

from .cputime import Watchdog
from .tamper import deduplicate

NOTE = "# (hidden tests: not shown in the feedback)"
FOR_INSTRUCTOR = "For the instructor: "  # starts a line of a cell's comment that students do not see
CHECK_FAILED = "CheckFailed"  # rnnlab.grading.checks.calling.CheckFailed: its message is all the student needs


def error_text(output, check_name: bool = False) -> str:
    """What a failed cell said (an nbformat error output): a check's own message, or the
    exception's name and value. ``check_name`` keeps the name of a check's exception too
    ("CheckFailed: ..."), as the calibration's causes show it."""
    name, value = output.get("ename", "Error"), output.get("evalue", "")
    return value if name == CHECK_FAILED and not check_name else f"{name}: {value}"

# Long lines of messages wrap between words (Bootstrap 3 breaks a <pre> anywhere) instead
# of running out of their box; the score headings grow with their text; the prompt column
# gives way on narrow screens. ("body" outranks the feedback template's own rules, which
# come later in the page.)
WRAP_CSS = """
body div.output_area pre { white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; }
body div.input_area pre { overflow-x: auto; }
body div.nbgrader_cell .panel-heading { height: auto; overflow: hidden; }
@media (max-width: 700px) {
  body div.prompt { min-width: 0; display: none; }
  body div.container { padding-left: 4px; padding-right: 4px; }
}
"""


class DeduplicateIds(preprocessors.DeduplicateIds):
    """nbgrader's ``DeduplicateIds`` made safe for ``add_missing_cells``: the earlier copies
    of a grade id become ordinary cells (no empty ``nbgrader`` metadata left behind)."""

    def preprocess(self, nb, resources):
        for finding in deduplicate(nb):
            self.log.warning("Cell with id '%s' exists multiple times: graded at its last copy", finding.grade_id)
        return nb, resources


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


class TimedExecute(Execute):
    """nbgrader's ``Execute`` with each cell one unit of the job's :class:`Watchdog`:
    ``cpu_timeout`` CPU seconds of the kernel's process tree, and its backstop.

    The watchdog is a class attribute, set by the job (one job per process): nbgrader
    copies its config, and a watchdog (a thread, a lock) cannot be copied.
    """

    watchdog: Watchdog | None = None
    cpu_timeout = Float(60.0).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        label = f"cell {grade_id}" if grade_id else f"cell {index + 1}"
        with self.watchdog.unit(label, self.cpu_timeout):
            return super().preprocess_cell(cell, resources, index)

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


class HideHiddenTests(ClearHiddenTests):
    """Strip hidden tests from test cells, tracebacks from their errors, and the grader's notes
    to the instructor from comments, for feedback."""

    # NbGraderPreprocessor declares this trait without config=True, so the exporter's
    # setting of it made traitlets warn "not recognized" on every run.
    display_data_priority = List(GetGrades.class_traits()["display_data_priority"].default()).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("comment"):  # set by GetGrades; the grader's notes to the instructor stay out
            kept = [line for line in meta["comment"].splitlines() if not line.startswith(FOR_INSTRUCTOR)]
            meta["comment"] = "\n".join(kept) or None
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        if self._remove_hidden_test_region(cell):
            cell.source = f"{cell.source.rstrip()}\n{NOTE}".lstrip()
        for output in cell.outputs:
            if output.output_type == "error":
                message = error_text(output)
                output.traceback = message.splitlines() if output.ename == CHECK_FAILED else [message]
        return cell, resources


FIGURE_ALT = "A figure that this cell drew when your notebook was graded."


class ReadableFeedback(Preprocessor):
    """Add ``WRAP_CSS`` to the page (after nbconvert's CSSHTMLHeaderPreprocessor, which
    resets it), and ``FIGURE_ALT`` to figures without a text alternative (nbconvert
    would put a placeholder there and warn about every such figure)."""

    enabled = Bool(True, help="nbconvert's preprocessors are off unless enabled").tag(config=True)

    def preprocess(self, nb, resources):
        resources.setdefault("inlining", {}).setdefault("css", []).append(WRAP_CSS)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if any(mime.startswith("image/") for mime in output.get("data", {})):
                    output.setdefault("metadata", {}).setdefault("alt", FIGURE_ALT)
        return nb, resources

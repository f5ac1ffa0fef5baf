"""The records that cross processes and stages of a grading run, with their schema in one place.

- :class:`SourceCell`: what the gradebook knows of one cell of the instructor's notebook
  (:meth:`.course.Course.source_cells`); read by the tamper check, the re-check's plan,
  the calibration and the runner, in the main process and in every job.
- :class:`JobResult`: what one job (:func:`.job.run`, in a forked process or on a Dask
  worker) hands back to the main process: per notebook a :class:`NotebookResult` with
  nbgrader's in-kernel :class:`Score` and the re-check's :class:`Judged` verdict of each
  test cell. The calibration (:func:`.calibration.judge`) and the scoring policy
  (:func:`.outcome.decide`) read it.

They are plain module-level dataclasses of plain values. A forked job writes its result
as JSON (:func:`to_json`, read back by :func:`from_json`, which builds only these classes:
a file in a job's folder is never unpickled), and Dask pickles them to and from its
workers (:mod:`.remote`), machines the instructor runs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field

OK, FAILED = "ok", "failed"  # JobResult.status


@dataclass(frozen=True)
class SourceCell:
    """One cell of the source notebook as nbgrader's gradebook records it."""

    source: str = ""
    cell_type: str = "code"
    locked: bool = False
    checksum: str | None = None
    grade: bool = False      # a graded cell (a test cell, or a manually graded answer)
    solution: bool = False   # an answer cell
    points: float = 0.0      # its max score; 0 for cells that are not graded


@dataclass
class Score:
    """nbgrader's in-kernel score of one graded cell: ``auto`` is None when nbgrader left it
    for manual grading."""

    auto: float | None
    max: float


@dataclass
class Judged:
    """The re-check's verdict on one test cell (:class:`.recheck.Verdict`, its message cut to
    2,000 characters): ``status`` is "pass", "fail", "library" or "unknown"."""

    status: str
    message: str = ""


@dataclass
class NotebookResult:
    """One notebook of a graded submission, as the job saw it."""

    scores: dict[str, Score]                                  # grade_id -> in-kernel score
    comments: dict[str, str | None] = field(default_factory=dict)  # grade_id -> nbgrader's auto comment
    late_penalty: float | None = None
    errors: dict[str, str] = field(default_factory=dict)     # grade_id or "cell N" -> the first error shown
    outside: dict[str, Judged] = field(default_factory=dict)  # grade_id -> the re-check's verdict
    replay: list[str] = field(default_factory=list)          # cells the re-check could not replay, with why


@dataclass
class JobResult:
    """What one job hands back: graded (``status`` OK, ``notebooks`` filled) or not (FAILED, with
    ``reason``, one of the report's categories, and ``detail``)."""

    student: str
    status: str = OK
    reason: str = ""
    detail: str = ""
    findings: list[str] = field(default_factory=list)        # tamper findings, "tampered: ..." or "<nb>: ..."
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    nbgrader_log: str = ""
    autograded: str | None = None          # the job's autograded folder, on this machine
    autograded_archive: bytes | None = None  # that folder packed, on its way back from a Dask worker

    def failed(self, reason: str, detail: str = "") -> JobResult:
        """This result marked as not graded, for ``reason``."""
        self.status, self.reason, self.detail = FAILED, reason, detail
        return self


def to_json(result: JobResult) -> str:
    """``result`` as JSON text (the archive, if any, in base64)."""
    data = asdict(result)
    if result.autograded_archive is not None:
        data["autograded_archive"] = base64.b64encode(result.autograded_archive).decode("ascii")
    return json.dumps(data)


def from_json(text: str) -> JobResult:
    """The :class:`JobResult` that :func:`to_json` wrote; ``TypeError``/``KeyError``/``ValueError``
    when the text does not follow the schema."""
    data = json.loads(text)
    notebooks = {}
    for name, notebook in data.pop("notebooks").items():
        scores = {grade_id: Score(**score) for grade_id, score in notebook.pop("scores").items()}
        outside = {grade_id: Judged(**judged) for grade_id, judged in notebook.pop("outside").items()}
        notebooks[name] = NotebookResult(scores=scores, outside=outside, **notebook)
    archive = data.pop("autograded_archive")
    return JobResult(**data, notebooks=notebooks,
                     autograded_archive=None if archive is None else base64.b64decode(archive))

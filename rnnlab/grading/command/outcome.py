"""The scoring policy: what one submission's grading comes to (:class:`Outcome`, :func:`decide`).

Three outcomes, never mixed up:

- **graded**: nbgrader's in-kernel score and the outside check agree; the score stands.
- **flagged**: graded, but an instructor should look: the two checks disagree on a test
  (the *lower* score is recorded, and the cell marked for manual grading, until someone
  decides), or cells were tampered with (restored from the release and listed).
- **failed**: not graded, with the reason (timeout, dead kernel, not a notebook, wrong
  file name, tampered cells beyond repair, ...). No score is recorded: the gradebook
  entry has no autograde score and needs manual grading, never a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import OK, JobResult
from .report import explain, first_line


@dataclass
class Outcome:
    """The decision for one submission; ``cells`` maps notebook -> grade_id -> [score, needs review]."""

    student: str
    status: str
    max_score: float
    score: float | None = None
    reasons: list = field(default_factory=list)
    cells: dict = field(default_factory=dict)
    comments: dict = field(default_factory=dict)
    late_penalty: dict = field(default_factory=dict)
    manual_points: float = 0.0   # points of cells that only an instructor can grade
    seconds: float = 0.0
    graded: dict = field(default_factory=dict)   # notebook -> grade_id -> CellReport


def _failure(student, max_score, seconds, reason, detail=""):
    return Outcome(student, "failed", max_score, reasons=[f"{reason}: {detail}" if detail else reason],
                   seconds=seconds)


def decide(result: JobResult, max_score: float) -> Outcome:
    """Combine a job's in-kernel scores, outside verdicts and findings into an :class:`Outcome`."""
    student, seconds = result.student, result.seconds
    if result.status != OK:
        return _failure(student, max_score, seconds, result.reason or "error", result.detail)
    outcome = Outcome(student, "graded", max_score, seconds=seconds)
    flags = list(result.findings)  # "tampered: ..." or "<notebook>: duplicated cell ..."
    flags += [f"not replayable outside the kernel: {failure}" for entry in result.notebooks.values()
              for failure in entry.replay]
    total = 0.0
    for name, entry in result.notebooks.items():
        cells = outcome.cells.setdefault(name, {})
        for grade_id, score in entry.scores.items():
            kernel, points = score.auto, score.max
            verdict = entry.outside.get(grade_id)
            if verdict is None:
                cells[grade_id] = [kernel, kernel is None]
                total += kernel or 0.0
                outcome.manual_points += points if kernel is None else 0.0
                continue
            status, message = verdict.status, verdict.message
            if status == "unknown":
                reason = message.split(":")[0] if message.startswith(("timeout", "overloaded")) else "dead kernel"
                return _failure(student, max_score, seconds, reason, f"outside check, {name}/{grade_id}: {message}")
            outside = points if status == "pass" else 0.0
            final = outside if kernel is None else min(kernel, outside)
            disagree = kernel is not None and kernel != outside
            if status == "library":
                flags.append(f"{name}/{grade_id}: {message}; 0 stands until you decide")
                disagree = True
            elif disagree:
                why = f" ({first_line(message)})" if status == "fail" else ""
                flags.append(f"outside check disagrees on {name}/{grade_id}: in kernel {kernel:g}, "
                             f"outside {outside:g}{why}; {final:g} stands")
            cells[grade_id] = [final, disagree]
            total += final
        outcome.comments[name] = entry.comments
        outcome.late_penalty[name] = entry.late_penalty
        total -= entry.late_penalty or 0.0
    outcome.score = max(total, 0.0)
    if flags:
        outcome.status, outcome.reasons = "flagged", flags
    explain(outcome, result)
    return outcome

"""The report the instructor reads: why each cell scored what it did, the class summary, the files.

The outcomes themselves, and the policy that decides them, are :mod:`.outcome`'s. Each
graded cell also says why it scored what it did (:class:`CellReport`): the first line of
the failed check's message, the usual mistake the check named, whether the mistake was
already counted in an earlier function, and whether the score is the autograder's or an
instructor's (a score typed in the formgrader holds on a re-run,
:mod:`rnnlab.grading.command.gradebook`). :func:`class_summary` counts each named mistake
over the class. The report is printed, and written as ``<stem>.csv`` (a row per
submission), ``<stem>-cells.csv`` (a row per graded cell), ``<stem>-mistakes.csv`` (the class
summary) and ``<stem>.json`` (everything).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..messages import FROM_EARLIER, NAMED_MISTAKE
from .preprocessors import FOR_INSTRUCTOR, error_text

AUTOGRADER, INSTRUCTOR = "autograder", "instructor"


@dataclass
class CellReport:
    """Why one graded cell scored what it did."""

    max_score: float
    by: str = AUTOGRADER           # who gave the score that stands: AUTOGRADER or INSTRUCTOR
    reason: str = ""               # the first line of the failed check's message, or why it is disputed
    mistakes: list = field(default_factory=list)   # usual mistakes the check named
    from_earlier: bool = False     # the check said the mistake is an earlier function's, counted there


def first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")[:160]


def explain(outcome, result) -> None:
    """Fill ``outcome.graded`` with why each cell scored what it did; note flags where the formgrader shows them.

    Reads the failed test cells' messages from the job's autograded notebooks, and the
    outside check's message for a cell it disputes. Each flag is also written as a
    comment on the answer cell above the test it concerns (the formgrader shows
    comments under answer cells only), starting with ``FOR_INSTRUCTOR``.
    """
    folder = result.autograded
    for name, cells in outcome.cells.items():
        path = Path(folder) / f"{name}.ipynb" if folder else None
        notebook = nbformat.read(str(path), as_version=4) if path and path.is_file() else nbformat.v4.new_notebook()
        scores = result.notebooks[name].scores
        answer_above, messages, answers = {}, {}, []
        for cell in notebook.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            grade_id = meta.get("grade_id")
            if meta.get("solution"):
                answers.append(grade_id)
            elif meta.get("grade") and grade_id:
                answer_above[grade_id] = answers[-1] if answers else None
                failed = [error_text(o) for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if failed:
                    messages[grade_id] = failed[-1]
        report = outcome.graded.setdefault(name, {})
        for grade_id, (score, review) in cells.items():
            message = messages.get(grade_id, "")
            outside = result.notebooks[name].outside.get(grade_id)
            if review and outside and outside.status != "pass" and not message:
                message = outside.message
            lines = [line.strip() for line in message.splitlines()]
            report[grade_id] = CellReport(
                max_score=scores[grade_id].max, reason=first_line(message),
                mistakes=[line[len(NAMED_MISTAKE):] for line in lines if line.startswith(NAMED_MISTAKE)],
                from_earlier=any(line.startswith(FROM_EARLIER) for line in lines))
        comments = outcome.comments.setdefault(name, {})
        for flag in outcome.reasons:
            concerned = [g for g in answer_above if re.search(rf"\b{re.escape(g)}\b", flag)]
            if not concerned and not re.search(rf"\b{re.escape(name)}\b", flag):
                continue  # about another notebook of the assignment
            where = (answer_above[concerned[0]] if concerned else None) or (answers[0] if answers else None)
            if where is not None:
                note = f"{FOR_INSTRUCTOR}flagged for review: {flag}"
                comments[where] = f"{comments[where]}\n{note}" if comments.get(where) else note


def class_summary(outcomes) -> list[tuple[str, list[str]]]:
    """Each usual mistake the checks named, with the students who made it, most frequent first.

    A student counts once per mistake, however many tests named it (a cell's mistake is
    named again by the test of the loop that calls the cell).
    """
    students = {}
    for o in outcomes:
        for cells in o.graded.values():
            for cell in cells.values():
                for mistake in cell.mistakes:
                    students.setdefault(mistake, set()).add(o.student)
    return sorted(((m, sorted(s)) for m, s in students.items()), key=lambda item: (-len(item[1]), item[0]))


def _short(mistake: str) -> str:
    """A mistake's first clause, for the printed summary (the CSV keeps the whole sentence)."""
    return re.split(r"; |\. ", mistake, maxsplit=1)[0].rstrip(".")


def table(outcomes, warning: str | None = None, notes=()) -> str:
    """The report as text: the run's notes, one line per submission with its reasons, totals."""
    lines = [warning] if warning else []
    lines += [f"note: {note}" for note in notes]
    width = max([len("student")] + [len(o.student) for o in outcomes])
    lines.append(f"{'student':<{width}}  {'status':<8} {'score':>13}  seconds")
    for o in outcomes:
        score = f"{o.score:g} / {o.max_score:g}" if o.score is not None else f"— / {o.max_score:g}"
        manual = f"  (+ up to {o.manual_points:g} graded by hand)" if o.manual_points else ""
        kept = [g for cells in o.graded.values() for g, cell in cells.items() if cell.by == INSTRUCTOR]
        if kept:
            manual += f"  (instructor's score kept: {', '.join(kept)})"
        lines.append(f"{o.student:<{width}}  {o.status:<8} {score:>13}  {o.seconds:7.1f}{manual}")
        lines += [f"{'':<{width}}    - {reason}" for reason in o.reasons]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("graded", "flagged", "failed")}
    lines.append(f"{len(outcomes)} submissions: {counts['graded']} graded, {counts['flagged']} graded but "
                 f"flagged for review, {counts['failed']} NOT graded.")
    summary = class_summary(outcomes)
    if summary:
        lines.append("Mistakes named by the checks (students who made each):")
        lines += [f"  {len(who):>3}  {_short(mistake)}: {', '.join(who)}" for mistake, who in summary]
    return "\n".join(lines)


def _cells(o):
    return [(name, grade_id, cell, o.cells[name][grade_id][0]) for name, cells in o.graded.items()
            for grade_id, cell in cells.items()]


def write(outcomes, path_stem) -> list[str]:
    """Write the report files (see the module's docstring); return their paths."""
    paths = {kind: f"{path_stem}{kind}" for kind in (".csv", "-cells.csv", "-mistakes.csv", ".json")}
    columns = sorted({(name, grade_id) for o in outcomes for name, grade_id, _, _ in _cells(o)})
    several = len({name for name, _ in columns}) > 1
    with open(paths[".csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "status", "score", "max_score"]
                        + [f"{n}/{g}" if several else g for n, g in columns]
                        + ["instructor_scored", "mistakes", "reasons"])
        for o in outcomes:
            scores = {(name, grade_id): score for name, grade_id, _, score in _cells(o)}
            by_hand = [g for name, g, cell, _ in _cells(o) if cell.by == INSTRUCTOR]
            mistakes = sorted({m for _, _, cell, _ in _cells(o) for m in cell.mistakes})
            writer.writerow([o.student, o.status, "" if o.score is None else f"{o.score:g}", f"{o.max_score:g}"]
                            + ["" if scores.get(c) is None else f"{scores[c]:g}" for c in columns]
                            + [" ".join(by_hand), " | ".join(mistakes), " | ".join(o.reasons)])
    with open(paths["-cells.csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", "cell", "score", "max_score", "by", "reason", "mistakes",
                         "from_earlier_function"])
        for o in outcomes:
            for name, grade_id, cell, score in _cells(o):
                writer.writerow([o.student, name, grade_id, "" if score is None else f"{score:g}",
                                 f"{cell.max_score:g}", cell.by if score is not None else "",
                                 cell.reason, " | ".join(cell.mistakes), "yes" if cell.from_earlier else ""])
    with open(paths["-mistakes.csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mistake", "students", "student_ids"])
        for mistake, who in class_summary(outcomes):
            writer.writerow([mistake, len(who), " ".join(who)])
    with open(paths[".json"], "w") as handle:
        json.dump([asdict(o) for o in outcomes], handle, indent=1)
    return list(paths.values())

"""Instructor commands: ``python -m rnnlab.grading autograde|feedback <assignment> [options]``.

``autograde`` first grades the instructor's solution through the students' own path and
stops (exit status 2, with the cause) unless it earns full marks; then it grades every
submission under ``submitted/<student>/<assignment>/`` with nbgrader's autograde, in
parallel, sandboxed, with limits in CPU seconds and the outside check, and prints the
report (also written as CSV and JSON). Exit status: 0 when every submission was graded
(flagged ones included: their score stands), 1 when some could not be graded, 2 for a
usage or set-up error (nothing recorded).

Scores an instructor typed in the formgrader hold when a submission is graded again;
``--force`` clears them. ``feedback`` writes nbgrader's HTML feedback without the hidden
tests, prints one line per student and warns about submissions that still wait for an
instructor; ``--zip`` collects the files in one zip named by student id.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_ALL_GRADED, EXIT_NOT_ALL_GRADED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rnnlab.grading", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("autograde", help="grade every submission of an assignment")
    grade.add_argument("assignment")
    grade.add_argument("--course", default=".", help="course directory (default: the current one)")
    grade.add_argument("--student", action="append", help="grade only this student (repeatable)")
    grade.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU cores)")
    grade.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="grade on the workers of this Dask scheduler instead of local processes "
                            "(each worker runs as many jobs at once as it has threads)")
    grade.add_argument("--timeout", type=float, default=None,
                       help="CPU seconds of the student's code per notebook, all included (default 600)")
    grade.add_argument("--cell-timeout", type=float, default=None,
                       help="CPU seconds per cell and per call (default: the course's Execute.timeout, else 60)")
    grade.add_argument("--backstop", type=float, default=None,
                       help="wall-clock backstop of each limit, as a multiple of it (default 10): past it the "
                            "submission is not graded (machine overloaded)")
    grade.add_argument("--memory", type=int, default=None, help="MiB of address space per student process (default 3072)")
    grade.add_argument("--no-sandbox", action="store_true", help="run without bubblewrap even where it exists")
    grade.add_argument("--keep-scratch", action="store_true", help="keep each job's scratch folder and logs")
    grade.add_argument("--force", action="store_true",
                       help="clear the scores instructors typed in the formgrader (kept otherwise)")
    grade.add_argument("--report", default=None,
                       help="report path without extension (default: <autograded>/grading-report-<assignment>)")
    feedback = commands.add_parser("feedback", help="nbgrader feedback without hidden tests")
    feedback.add_argument("assignment")
    feedback.add_argument("--course", default=".")
    feedback.add_argument("--student", action="append")
    feedback.add_argument("--zip", action="store_true",
                          help="also write feedback/<assignment>-feedback.zip: one HTML file per student id")
    return parser


def _autograde(args) -> int:
    from . import report
    from .calibration import CalibrationFailed
    from .runner import DEFAULT_BACKSTOP, DEFAULT_TIMEOUT, Runner
    from .sandbox import Limits, missing_warning

    limits = Limits(memory_mb=args.memory) if args.memory else Limits()
    runner = Runner(args.course, args.assignment, students=args.student, jobs=args.jobs,
                    timeout=args.timeout or DEFAULT_TIMEOUT, cell_timeout=args.cell_timeout, limits=limits,
                    use_bwrap=False if args.no_sandbox else None, keep_scratch=args.keep_scratch,
                    log=lambda line: print(line, file=sys.stderr, flush=True),
                    backstop=args.backstop or DEFAULT_BACKSTOP, force=args.force,
                    scheduler=args.scheduler)
    try:
        outcomes = runner.run()
    except CalibrationFailed as failure:
        print(f"error: the solution of {args.assignment} does not earn full marks when graded as a student; "
              "nothing was graded or recorded. Cause:", file=sys.stderr)
        for cause in failure.causes:
            print(f"  - {cause}", file=sys.stderr)
        return EXIT_USAGE
    warning = None if runner.sandbox.isolated else missing_warning()
    print(report.table(outcomes, warning, runner.notes))
    stem = args.report or str(runner.course.folder("autograded") / f"grading-report-{args.assignment}")
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    print("report written to " + " and ".join(report.write(outcomes, stem)))
    return EXIT_ALL_GRADED if all(o.status != "failed" for o in outcomes) else EXIT_NOT_ALL_GRADED


def _feedback(args) -> int:
    from . import feedback

    status = feedback.generate(args.course, args.assignment, args.student)
    handed = feedback.handed(args.course, args.assignment, args.student)
    print(feedback.summary(args.course, handed))
    if args.zip:
        print(f"feedback for hand-back written to {feedback.collect_zip(args.course, args.assignment, handed)}")
    return EXIT_ALL_GRADED if status == 0 else EXIT_NOT_ALL_GRADED


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "autograde":
            return _autograde(args)
        return _feedback(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

"""Grading on a Dask cluster against local grading, and what a class of 1,000 would take.

The same submissions of rnn_forward (benchmarks/grading.py's mix: answered right, left
unanswered, with a usual mistake), in two scratch copies of one course, graded by
``python -m rnnlab.grading autograde`` (a) locally with ``--jobs 2`` and (b) with
``--scheduler`` through a ``dask scheduler`` with two ``dask worker`` processes of one
thread each (``--preload rnnlab.grading.command.remote``, as the instructor page says), all on
this machine and on 127.0.0.1. The cluster is started before (b) is timed, as a course's
cluster would be running already: its workers have imported nbgrader and torch, which
(a) does at every run. The script prints each run's phases (start-up; grading, the
calibration included) from the command's own log line, the cluster's overhead against
(a), whether both left the same grades (every cell of every submission) and the same
report, and, from the measured grading time per job, a table of the time 1,000
submissions would take on 1, 4 and 16 machines like this one, each running two
one-thread workers.

    .venv/bin/python benchmarks/grading_cluster.py [--submissions 200] [--repeats 1]

The machine's load average before and after is printed with the figures: other work on
the machine slows both runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from grading import ASSIGNMENT, environment, make_course  # noqa: E402  (the grading benchmark's course)
from services.dask_cluster import dask_cluster  # noqa: E402  (the tests' cluster on 127.0.0.1)
from services.gradebooks import gradebook_state  # noqa: E402

WORKERS = 2                      # one-thread Dask workers per machine, as many as local jobs
MACHINES = (1, 4, 16)
CLASS = 1000
START = "Grading the solution"  # the command's log line once it has read the course and starts the jobs


def timed_phases(command: list[str], course: Path) -> dict[str, float]:
    """Run the grading command; wall seconds of its start-up (reading the course, copying the
    gradebook, connecting), of its grading (the calibration and the students' jobs) and in all."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=course, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines, mark = [], None
    for line in process.stdout:
        lines.append(line)
        if mark is None and line.startswith(START):
            mark = time.perf_counter() - started
    status = process.wait()
    total = time.perf_counter() - started
    if status not in (0, 1) or mark is None:  # 1: some submission not graded, still a full run
        raise RuntimeError(f"{' '.join(command)} exited with {status}:\n{''.join(lines)[-3000:]}")
    return {"start-up": mark, "grading": total - mark, "total": total}


def report(course: Path) -> list[dict]:
    rows = json.loads((course / "autograded" / f"grading-report-{ASSIGNMENT}.json").read_text())
    return [{k: v for k, v in row.items() if k not in ("seconds", "cpu_seconds", "kernel_seconds")} for row in rows]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, interleaved; medians are printed")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "rnnlab.grading", "autograde", ASSIGNMENT]
    load = os.getloadavg()
    runs = {"local": [], "cluster": []}
    same = True
    with tempfile.TemporaryDirectory(prefix="rnnlab-cluster-bench-") as scratch:
        base = Path(scratch) / "base"
        base.mkdir()
        make_course(base, args.submissions)
        with dask_cluster(Path(scratch) / "dask", workers=WORKERS, preload="rnnlab.grading.command.remote") as cluster:
            for repeat in range(args.repeats):
                courses = {}
                for label, options in (("local", ["--jobs", str(WORKERS)]), ("cluster", ["--scheduler", cluster.address])):
                    courses[label] = Path(scratch) / f"{label}-{repeat}"
                    shutil.copytree(base, courses[label])
                    runs[label].append(timed_phases(command + options, courses[label]))
                states = [gradebook_state(f"sqlite:///{c / 'gradebook.db'}", "rnnlab", ASSIGNMENT) for c in courses.values()]
                same &= states[0] == states[1] and report(courses["local"]) == report(courses["cluster"])
    after = os.getloadavg()

    median = {label: {phase: statistics.median(r[phase] for r in found) for phase in found[0]}
              for label, found in runs.items()}
    n = args.submissions
    print(f"{n} submissions of {ASSIGNMENT}, {os.cpu_count()} CPU cores, load average (1 min) before/after "
          f"{load[0]:.1f}/{after[0]:.1f}, {args.repeats} run(s) of each, medians, wall seconds")
    print(f"{'':46}{'start-up':>9}{'grading':>9}{'total':>8}{'s/submission':>14}")
    for label, title in (("local", f"(a) local, --jobs {WORKERS}"),
                         ("cluster", f"(b) Dask scheduler, {WORKERS} one-thread workers")):
        m = median[label]
        print(f"{title:46}{m['start-up']:9.1f}{m['grading']:9.1f}{m['total']:8.1f}{m['grading'] / n:14.3f}")
    overhead = median["cluster"]["total"] / median["local"]["total"] - 1
    print(f"cluster overhead: {100 * overhead:+.1f} % of (a) (target <= 10 %); "
          f"identical grades and report: {'yes' if same else 'NO'}")

    # 1,000 submissions on M machines like this one: the start-up once, then n + 1 jobs per machine
    # (the students' share and the machine's own calibration), shared by its WORKERS workers.
    fixed = median["cluster"]["start-up"]
    per_job = median["cluster"]["grading"] / (n + 1) * WORKERS  # seconds of one worker per job
    print(f"\n{CLASS} submissions, from {per_job:.2f} s of one worker per job (calibration included) and "
          f"{fixed:.0f} s of start-up:")
    print(f"{'machines':>9}{'workers':>9}{'minutes':>9}")
    for machines in MACHINES:
        slots = machines * WORKERS
        minutes = (fixed + math.ceil((CLASS + machines) / slots) * per_job) / 60
        print(f"{machines:9d}{slots:9d}{minutes:9.1f}")


if __name__ == "__main__":
    main()

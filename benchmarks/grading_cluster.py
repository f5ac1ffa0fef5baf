"""Grading on a Dask cluster against local grading, and what a class of 1,000 would take.

The same submissions of rnn_forward (benchmarks/grading.py's mix: answered right, left
unanswered, with a usual mistake), in two scratch copies of one course, graded by
``python -m rnnlab.grading autograde`` (a) locally with ``--jobs 2`` and (b) with
``--scheduler`` through a ``dask scheduler`` with two ``dask worker`` processes of one
thread each (``--preload rnnlab.grading.remote``, as the instructor page says), all on
this machine and on 127.0.0.1. The cluster is started before (b) is timed, as a course's
cluster would be running already: its workers have imported nbgrader and torch, which
(a) does at every run. The script prints each run's
phases (start-up, calibration, grading) from the command's own log lines, the cluster's
overhead against (a), whether both left the same grades (every cell of every
submission) and the same report, and, from the measured grading time per submission, a
table of the time 1,000 submissions would take on 1, 4 and 16 machines like this one,
each running two one-thread workers.

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
PHASES = ("Calibrating", "Grading ")  # the command's log lines that start each phase


def timed_phases(command: list[str], course: Path) -> dict[str, float]:
    """Run the grading command; wall seconds of its start-up, calibration, grading and the total."""
    started = time.perf_counter()
    marks = {}
    process = subprocess.Popen(command, cwd=course, env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        for phase in PHASES:
            if line.startswith(phase) and phase not in marks:
                marks[phase] = time.perf_counter() - started
    status = process.wait()
    total = time.perf_counter() - started
    if status not in (0, 1) or set(marks) != set(PHASES):  # 1: some submission not graded, still a full run
        raise RuntimeError(f"{' '.join(command)} exited with {status}:\n{''.join(lines)[-3000:]}")
    return {"start-up": marks["Calibrating"], "calibration": marks["Grading "] - marks["Calibrating"],
            "grading": total - marks["Grading "], "total": total}


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
        with dask_cluster(Path(scratch) / "dask", workers=WORKERS, preload="rnnlab.grading.remote") as cluster:
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
    print(f"{'':46}{'start-up':>9}{'calibration':>12}{'grading':>9}{'total':>8}{'s/submission':>14}")
    for label, title in (("local", f"(a) local, --jobs {WORKERS}"),
                         ("cluster", f"(b) Dask scheduler, {WORKERS} one-thread workers")):
        m = median[label]
        print(f"{title:46}{m['start-up']:9.1f}{m['calibration']:12.1f}{m['grading']:9.1f}{m['total']:8.1f}"
              f"{m['grading'] / n:14.3f}")
    overhead = median["cluster"]["total"] / median["local"]["total"] - 1
    print(f"cluster overhead: {100 * overhead:+.1f} % of (a) (target <= 10 %); "
          f"identical grades and report: {'yes' if same else 'NO'}")

    # 1,000 submissions on M machines like this one: start-up and calibration once (each machine
    # calibrates its workers at the same time), then the grading phase shared by M x WORKERS workers.
    fixed = median["cluster"]["start-up"] + median["cluster"]["calibration"]
    per_submission = median["cluster"]["grading"] / n * WORKERS  # seconds of one worker per submission
    print(f"\n{CLASS} submissions, from {per_submission:.2f} s of one worker per submission and "
          f"{fixed:.0f} s of start-up and calibration:")
    print(f"{'machines':>9}{'workers':>9}{'minutes':>9}")
    for machines in MACHINES:
        slots = machines * WORKERS
        minutes = (fixed + math.ceil(CLASS / slots) * per_submission) / 60
        print(f"{machines:9d}{slots:9d}{minutes:9.1f}")


if __name__ == "__main__":
    main()

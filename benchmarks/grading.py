"""Grading time: stock serial ``nbgrader autograde`` against ``python -m rnnlab.grading autograde``.

Both grade the same 20 submissions of rnn_forward (answered right, left unanswered, and
with a usual mistake) in scratch copies of one course, in the same run; the script
prints the wall time per notebook of each, the floor beside them (starting a kernel and
running the notebook's imports, the part no grader can skip; shared by the jobs that run
at once), the speed-up, the ratio to the shared floor, whether both recorded identical
scores, and the load average before and after (other work on the machine slows both,
the parallel one more: compare figures taken at a load below 1). The grading command
also grades the solution first, runs the outside check and the sandbox, which stock
nbgrader does not: the comparison is of what an instructor waits for.

    .venv/bin/python benchmarks/grading.py [--submissions 20] [--jobs N] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from adversarial import notebooks  # noqa: E402  (the test suite's submission builders)

ASSIGNMENT = "rnn_forward"
IMPORTS = "import numpy as np\nimport torch\nfrom rnnlab.grading.checks import check_rnn_cell"
SIGMOID = {"rnn_cell": "def rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):\n"
                       "    return 1 / (1 + np.exp(-(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)))"}
UNANSWERED = {"rnn_cell": None, "rnn_forward": None, "rnn_parameter_count": None}


def environment() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def make_course(root: Path, count: int) -> Path:
    """A course with ``count`` submissions and the assignment recorded in its gradebook."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("solutions", "exercises"):
        shutil.copytree(REPO / folder / ASSIGNMENT, root / folder / ASSIGNMENT)
    read = lambda folder: nbformat.read(root / folder / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)  # noqa: E731
    release, solution = read("exercises"), read("solutions")
    for index in range(count):
        sources = UNANSWERED if index % 7 == 3 else SIGMOID if index % 5 == 1 else None
        folder = root / "submitted" / f"student{index:02d}" / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebooks.answered(release, solution, sources), folder / f"{ASSIGNMENT}.ipynb")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force",
                        f"--CourseDirectory.release_directory={scratch}"],
                       cwd=root, env=environment(), check=True, capture_output=True)
    return root


def timed(command, course: Path) -> float:
    """Wall seconds of ``command`` run in ``course``."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=course, env=environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def scores(course: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db", "rnnlab") as gb:
        return {s.student.id: sum(g.auto_score or 0.0 for nb in s.notebooks for g in nb.grades)
                for s in gb.find_assignment(ASSIGNMENT).submissions}


def floor(kernel_name: str | None = None, repeats: int = 3) -> float:
    """Median seconds to start a kernel, run the notebook's imports and stop it."""
    from jupyter_client.manager import KernelManager

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        manager = KernelManager(kernel_name=kernel_name or "python3")
        manager.start_kernel()
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(IMPORTS, timeout=120, output_hook=lambda message: None)
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the imports failed in the kernel: {reply['content']}")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=None, help="the grading command's --jobs (default: its own)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, interleaved")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rnnlab-grading-bench-") as scratch:
        base = Path(scratch) / "base"
        base.mkdir()
        make_course(base, args.submissions)
        stock, ours, agree = [], [], True
        for repeat in range(args.repeats):
            for label, command in (
                    ("stock", [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"]),
                    ("ours", [sys.executable, "-m", "rnnlab.grading", "autograde", ASSIGNMENT]
                     + (["--jobs", str(args.jobs)] if args.jobs else []))):
                course = Path(scratch) / f"{label}-{repeat}"
                shutil.copytree(base, course)
                (stock if label == "stock" else ours).append(timed(command, course))
            agree &= scores(Path(scratch) / f"stock-{repeat}") == scores(Path(scratch) / f"ours-{repeat}")
        plain = floor()
    n = args.submissions
    print(f"{n} submissions of {ASSIGNMENT}, {os.cpu_count()} CPU cores, load average before/after "
          f"{load[0]:.1f}/{os.getloadavg()[0]:.1f} (other work on the machine slows both, the parallel one more), "
          f"{args.repeats} run(s) of each, medians")
    stock_s, ours_s, cores = statistics.median(stock), statistics.median(ours), args.jobs or os.cpu_count()
    print(f"{'':44}{'wall s':>8}{'s per notebook':>16}")
    print(f"{'stock nbgrader autograde (serial)':44}{stock_s:8.1f}{stock_s / n:16.2f}")
    print(f"{'python -m rnnlab.grading autograde':44}{ours_s:8.1f}{ours_s / n:16.2f}"
          "   (sandbox and outside check included)")
    print(f"{'floor: kernel start + imports, one kernel':44}{'':8}{plain:16.2f}")
    print(f"{f'floor shared by {cores} jobs at a time':44}{'':8}{plain / cores:16.2f}")
    print(f"speed-up {stock_s / ours_s:.2f}x (goal: at least 1.8x), identical scores: {'yes' if agree else 'NO'}")
    print(f"per notebook {ours_s / n / (plain / cores):.2f}x the shared floor (goal: at most 1.5x)")

if __name__ == "__main__":
    main()

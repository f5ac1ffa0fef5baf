"""Limits that count the CPU seconds of the student's processes, with a wall-clock backstop.

A verdict must not depend on what else the grading machine runs. Wall-clock time does:
on a busy machine a correct answer waits for a core and a limit in seconds of the clock
would call it a timeout. So every limit that decides a verdict counts the CPU seconds
used by the student's process tree (the sandboxed kernel or the outside check's process,
and everything they start), read from Linux's ``/proc``: an infinite loop reaches its
limit after the same CPU seconds on a quiet machine and on a loaded one.

Code that does not compute (a ``time.sleep``, a blocked read, a machine so loaded that
the student's processes barely run) never reaches a CPU limit, so each limited unit also
has a wall-clock backstop, a multiple of its CPU limit. Reaching it never gives a score:
the job is stopped and reported as not graded, with the cause told apart by the kernel's
scheduler statistics (``/proc/<pid>/task/<tid>/schedstat``): time spent *waiting for a
core* means the grading machine was overloaded (re-run), time spent *asleep* means the
student's code waited for something that never came.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

_TICKS = os.sysconf("SC_CLK_TCK")
OVERLOADED = "grading machine overloaded, re-run"


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    found = []
    for task in _tasks(pid):
        found += [int(child) for child in (_read(f"/proc/{pid}/task/{task}/children") or "").split()]
    return found


def _stat(pid: int):
    """(parent pid, own CPU s, CPU s of reaped children) of a live process, or None."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    utime, stime, cutime, cstime = (int(v) / _TICKS for v in fields[11:15])
    return int(fields[1]), utime + stime, cutime + cstime


def _waiting(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a core."""
    total = 0.0
    for task in _tasks(pid):
        parts = (_read(f"/proc/{pid}/task/{task}/schedstat") or "").split()
        if len(parts) >= 2:
            total += int(parts[1]) / 1e9
    return total


class ProcessTree:
    """The processes started by ``root`` (and ``root`` itself when ``include_root``).

    :meth:`cpu` counts every process ever seen in the tree: a process that ended still
    counts with what it used (through its parent's count of reaped children when that
    parent is in the tree, else as last seen). :meth:`waiting` reads the scheduler's
    statistics of the processes alive now (a costlier read, made only when needed).
    """

    def __init__(self, root: int, include_root: bool = False):
        self.root, self.include_root = root, include_root
        self._last = {}     # pid -> (parent, cpu)
        self._ended = 0.0
        self._high = 0.0
        self._lock = threading.Lock()

    def pids(self) -> list[int]:
        found, frontier = [], [self.root]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            frontier += _children(pid)
        return found if self.include_root else found[1:]

    def cpu(self) -> float:
        """CPU seconds used by the tree so far."""
        with self._lock:
            current = {}
            for pid in self.pids():
                stat = _stat(pid)
                if stat is not None:
                    current[pid] = (stat[0], stat[1] + stat[2])
            for pid, (parent, used) in self._last.items():
                if pid not in current and parent not in current:  # ended, and no parent here counts it
                    self._ended += used
            self._last = current
            self._high = max(self._high, self._ended + sum(used for _, used in current.values()))
            return self._high

    def waiting(self) -> float:
        """Seconds the tree's live processes have spent runnable but waiting for a core."""
        return sum(_waiting(pid) for pid in self.pids())

    def kill(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class Exceeded(Exception):
    """A limit was reached: ``reason`` is "timeout" or "overloaded" (the report's words)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class Watchdog:
    """Holds a process tree to CPU-time limits, from a thread of the grading process.

    ``total`` CPU seconds for everything the tree runs; within :meth:`unit` (a cell, a
    call), the unit's own CPU limit and its wall-clock backstop, ``backstop`` times that
    limit. Past any of them the whole tree is killed and :attr:`exceeded` says why;
    whoever waited for the tree then reports that instead of what it saw (a dead kernel,
    a closed pipe).
    """

    def __init__(self, tree: ProcessTree, total: float, backstop: float, poll: float = 0.25):
        self.tree, self.total, self.backstop, self.poll = tree, float(total), float(backstop), poll
        self.exceeded: Exceeded | None = None
        self._unit = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rnnlab-watchdog", daemon=True)

    def __enter__(self):
        self._start = self.tree.cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def unit(self, label: str, limit: float):
        """Limit what runs inside the block to ``limit`` CPU seconds (``label`` names it in messages)."""
        with self._lock:
            self._unit = [label, float(limit), self.tree.cpu(), None, time.monotonic()]
        try:
            yield
        finally:
            with self._lock:
                self._unit = None

    def _watch(self):
        while not self._stop.wait(self.poll) and self.exceeded is None:
            used = self.tree.cpu()
            with self._lock:
                unit = self._unit
            problem = self._problem(used, unit)
            if problem is not None:
                self.exceeded = problem
                self.tree.kill()
        while not self._stop.wait(self.poll):  # keep anything started later from running on
            self.tree.kill()

    def _problem(self, cpu: float, unit) -> Exceeded | None:
        if cpu - self._start > self.total:
            return Exceeded("timeout", f"the student's code used more than {self.total:g} CPU s in all")
        if unit is None:
            return None
        label, limit, cpu_start, waiting_start, started = unit
        if waiting_start is None:  # read here, by the watchdog, rather than on the grading path
            unit[3] = waiting_start = self.tree.waiting()
        used, wall = cpu - cpu_start, time.monotonic() - started
        if used > limit:
            return Exceeded("timeout", f"{label} used more than {limit:g} CPU s")
        if wall > self.backstop * limit:
            return stalled(label, used, self.tree.waiting() - waiting_start, wall, limit)
        return None


def stalled(label: str, used: float, waiting: float, wall: float, limit: float) -> Exceeded:
    """Why a unit reached its wall-clock backstop: waiting for a core (overloaded) or asleep."""
    asleep = wall - used - waiting
    said = f"{label} used {used:.1f} of its {limit:g} CPU s in {wall:.0f} s of wall-clock time"
    if waiting >= asleep:
        return Exceeded("overloaded", f"{OVERLOADED} ({said}, {waiting:.0f} s of it waiting for a core)")
    return Exceeded("timeout", f"{said}: it was waiting (sleeping or blocked) rather than computing")

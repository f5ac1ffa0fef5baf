"""Small tasks for the Dask tests, in a module the workers import cheaply (no torch, no pytest).

Each task that simulates work leaves a file ``<name>.<worker>.<pid>.<random>`` in the
folder it is given each time it starts, so that a test can count how often a task ran, and where, without
relying on what Dask reports.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

SECONDS = 1.0


def slow(payload):
    """Mark the start (name, worker, process), sleep (:data:`SECONDS` unless the payload's third
    item says), return where the task ran."""
    from distributed import get_worker

    name, markers, *seconds = payload
    worker = get_worker().name
    Path(markers, f"{name}.{worker}.{os.getpid()}.{uuid.uuid4().hex[:8]}").touch()
    time.sleep(seconds[0] if seconds else SECONDS)
    return {"name": name, "worker": worker}


def kill_own_worker(payload):
    """Take the worker process down, as a crash in the worker itself would."""
    os.kill(os.getpid(), signal.SIGKILL)


def starts(markers: Path) -> dict[str, list[str]]:
    """name -> the workers on which that task started, from the marker files."""
    found: dict[str, list[str]] = {}
    for path in Path(markers).iterdir():
        name, worker, _, _ = path.name.split(".")
        found.setdefault(name, []).append(worker)
    return found

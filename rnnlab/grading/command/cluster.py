"""Running grading jobs on a Dask cluster (``dask.distributed``), each submission's result taken once.

The grading command's main process stays the only writer of the gradebook: on a cluster
it sends one task per submission to the scheduler, the workers run them, and their
results come back to the main process, which records each one as it arrives. This module
holds the parts that do not depend on how a job grades:

- :func:`connect` checks a ``--scheduler`` address and connects; :func:`check_workers`
  refuses workers whose grading code or packages differ from ours (their grades could
  differ from local grading);
- :func:`pack` and :func:`unpack` move a folder to or from a worker as bytes (workers on
  other machines share no disk with the main process);
- :func:`run_each` runs a function once per payload (on the workers allowed to run it)
  and yields exactly one :class:`TaskResult` per payload.

Losing a worker is Dask's to handle: the scheduler gives the tasks of a lost worker (its
machine crashed, its process was killed) to the other workers, and a task that was
running on more workers that died than ``distributed.scheduler.allowed-failures`` allows
(3 by default) is given up as ``KilledWorker``. :func:`run_each` turns a given-up task,
a task that raised, and a wait of ``no_worker_timeout`` seconds with none of the workers
allowed to run a task connected into a result with an ``error`` for that payload: nothing is lost, nothing comes twice,
nothing waits forever.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import shutil
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

PACKAGES = ("nbgrader", "nbformat", "nbclient", "nbconvert", "ipykernel", "torch", "numpy", "dask", "distributed")
MAX_PACKED_BYTES = 512 * 1024 * 1024  # a folder larger than this is refused rather than sent
PROTOCOLS = ("tcp", "tls")


def scheduler_address(address: str) -> str:
    """``address`` checked as a Dask scheduler address, ``tcp://host:port`` or ``tls://host:port``."""
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in PROTOCOLS or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError(f"--scheduler must be a Dask scheduler address like tcp://10.0.0.5:8786 "
                         f"(protocol {' or '.join(PROTOCOLS)}, host and port); got {address!r}")
    return f"{parts.scheme}://{parts.netloc}"


def connect(address: str, timeout: float | None = None):
    """A ``distributed.Client`` of the scheduler at ``address``; ValueError when none answers in ``timeout``
    seconds (default: Dask's ``distributed.comm.timeouts.connect``, 30 s unless configured)."""
    import dask
    from dask.utils import parse_timedelta
    from distributed import Client

    address = scheduler_address(address)
    if timeout is None:
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"no Dask scheduler answered at {address} within {timeout:g} s: {exc}") from None


def fingerprint() -> dict[str, str]:
    """What grading results depend on besides the course: Python, the packages, rnnlab's own code
    and whether the sandbox can run."""
    package = Path(importlib.util.find_spec("rnnlab").origin).parent  # found, not imported (no torch import)
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    found = {"python": ".".join(map(str, sys.version_info[:3])), "rnnlab code": digest.hexdigest()[:16],
             "bubblewrap": "installed" if shutil.which("bwrap") else "missing"}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def check_workers(client) -> list[str]:
    """The addresses of the workers, after checking each runs what we run (:func:`fingerprint`).

    ValueError names every worker that differs and how, or says that there is no worker.
    """
    ours = fingerprint()
    theirs = client.run(fingerprint)
    if not theirs:
        raise ValueError("the Dask scheduler has no worker: start `dask worker <scheduler address>` on the grading machines")
    differences = []
    for worker, found in sorted(theirs.items()):
        changed = [f"{key} {found.get(key)} (here {value})" for key, value in ours.items() if found.get(key) != value]
        if changed:
            differences.append(f"{worker}: {', '.join(changed)}")
    if differences:
        raise ValueError("these Dask workers would not grade as this machine does (install the same rnnlab "
                         "checkout and requirements.txt there):\n  " + "\n  ".join(differences))
    return sorted(theirs)


def pack(folder: Path, max_bytes: int = MAX_PACKED_BYTES) -> bytes:
    """The regular files and folders under ``folder`` as a gzipped tar (symlinks are left out)."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
            if buffer.tell() > max_bytes:
                raise ValueError(f"{folder} holds more than {max_bytes >> 20} MiB: too large to send to a worker")
    return buffer.getvalue()


def unpack(data: bytes, destination: Path) -> Path:
    """Extract what :func:`pack` made into ``destination`` (created); refuses links and paths that leave it."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = archive.getmembers()
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise ValueError(f"refusing to unpack {member.name!r}: only files and folders travel")
        archive.extractall(destination, members=members, filter="data")
    return destination


@dataclass
class TaskResult:
    """The outcome of one payload: its name, the function's return value, or why there is none."""

    name: str
    value: Any = None
    error: str | None = None


def _describe(future) -> str:
    from distributed.scheduler import KilledWorker

    if future.status == "cancelled":
        return "the cluster cancelled it each time it was submitted"
    if future.status != "error":
        return f"the task ended as {future.status!r} without a result"
    exception = future.exception()
    if isinstance(exception, KilledWorker):
        return f"it was running on Dask workers that died, too many times to try again ({exception})"
    return f"the task raised {type(exception).__name__}: {exception}"


def workers(client) -> list[str]:
    """The addresses of the workers the scheduler knows now, sorted."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def run_each(client, function: Callable, payloads: dict[str, Any], *, shared: tuple = (),
             allowed: dict[str, list[str]] | None = None, no_worker_timeout: float = 300.0, resubmit: int = 2,
             poll: float = 1.0, log: Callable[[str], None] = lambda line: None) -> Iterator[TaskResult]:
    """Run ``function(payload, *shared)`` on the cluster for every payload; yield one :class:`TaskResult` each.

    ``shared`` holds further arguments, the same for every task (pass what
    ``client.scatter`` returned to send a large one once per worker). ``allowed`` maps a
    payload's name to the worker addresses that may run it (default: any worker).
    Results come in the order tasks finish. A lost worker's tasks are rerun by the
    scheduler on the workers allowed. A task the cluster cancelled (the client lost its
    connection to the scheduler for a moment, another client cancelled it) is submitted
    again, ``resubmit`` times at most. A task none of whose workers has been connected for
    ``no_worker_timeout`` seconds is cancelled and yielded with an error.
    """
    from distributed import as_completed

    allowed = allowed or {}
    run_id = uuid.uuid4().hex[:8]
    futures, attempts = {}, {}
    arriving = as_completed(loop=client.loop)

    def submit(name):
        attempts[name] = attempts.get(name, 0) + 1
        where = {"workers": allowed[name], "allow_other_workers": False} if name in allowed else {}
        future = client.submit(function, payloads[name], *shared, key=f"rnnlab-{name}-{run_id}-{attempts[name]}",
                               pure=False, **where)
        futures[future] = name
        arriving.add(future)

    for name in payloads:
        submit(name)
    stranded_since: dict = {}
    known = set(workers(client))
    while futures:
        done = arriving.next_batch(block=False)
        for future in done:
            name = futures.pop(future, None)
            if name is None:  # one we cancelled ourselves, already answered for
                continue
            if future.status == "cancelled" and attempts[name] <= resubmit:
                log(f"The cluster cancelled the task of {name}: submitting it again.")
                submit(name)
            elif future.status == "finished":
                yield TaskResult(name, value=future.result())
            else:
                yield TaskResult(name, error=_describe(future))
            future.release()
        if done or not futures:
            continue
        time.sleep(poll)
        alive = set(workers(client))
        for address in sorted(known - alive):
            log(f"Dask worker {address} left the cluster: the scheduler runs its tasks again on the others.")
        known = alive
        now = time.monotonic()
        for future, name in list(futures.items()):
            if alive & set(allowed.get(name, alive)):
                stranded_since.pop(future, None)
                continue
            if now - stranded_since.setdefault(future, now) > no_worker_timeout:
                log(f"No Dask worker for {name} in {no_worker_timeout:g} s: not run.")
                del futures[future]
                client.cancel([future])
                yield TaskResult(name, error=f"no Dask worker that may run it was connected for {no_worker_timeout:g} s")

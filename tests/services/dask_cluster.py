"""A Dask cluster on this machine: ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

``dask_cluster(workdir, workers=2)`` starts the scheduler on a free port of 127.0.0.1
(no dashboard; Dask 2026.8 still opens its HTTP server, on all interfaces unless
``--dashboard-address`` says otherwise, so that is set to 127.0.0.1 too), then the workers (one process and one thread each, no nanny, so that a
killed worker stays dead), waits (bounded) until every worker has joined, and yields a
:class:`DaskCluster`. When the block ends every process it started is stopped. Should
the test process itself be killed, the processes die with it (``PR_SET_PDEATHSIG``);
workers also give up after ``--death-timeout`` without a scheduler. Dask reads no user
configuration: ``DASK_CONFIG`` points at an empty folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from journeys.servers import stop, venv_bin, venv_env, wait_until

START_TIMEOUT = 120   # seconds for the scheduler to write its address, and for all workers to join
DEATH_TIMEOUT = 60    # seconds a worker waits for a lost scheduler before it exits


def _die_with_test() -> None:
    """In the child, before exec: SIGKILL when the test process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class DaskCluster:
    """A running scheduler and its workers (name -> process)."""

    address: str
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: Path | None = None

    def kill_worker(self, name: str) -> None:
        """End worker ``name`` at once (SIGKILL), as a crashed machine would."""
        process = self.workers[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def log(self, name: str) -> str:
        """The output of ``scheduler`` or of a worker, for failure messages."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def listening(pid: int) -> list[str]:
    """The TCP addresses ``host:port`` on which process ``pid`` listens (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address[:width])
                host = (".".join(str(b) for b in raw[::-1]) if width == 8
                        else ":".join(raw[i:i + 4][::-1].hex() for i in range(0, 16, 4)))
                found.append(f"{host}:{int(port, 16)}")
    return found


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as output:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, preexec_fn=_die_with_test)


def dask_environment(workdir: Path) -> dict[str, str]:
    """The environment of the cluster's processes: no user Dask config, one torch thread, and
    tests/ importable (tasks defined in a test module travel by reference)."""
    config = workdir / "dask-config"
    config.mkdir(parents=True, exist_ok=True)
    tests = str(Path(__file__).resolve().parents[1])
    return venv_env(DASK_CONFIG=str(config), OMP_NUM_THREADS="1",
                    PYTHONPATH=os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])))


def _worker_command(address: str, name: str, workdir: Path, preload: str | None) -> list[str]:
    command = [str(venv_bin() / "dask"), "worker", address, "--name", name, "--nthreads", "1", "--nworkers", "1",
               "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
               "--memory-limit", "0",
               "--death-timeout", str(DEATH_TIMEOUT), "--local-directory", str(workdir / name)]
    return command + (["--preload", preload] if preload else [])


def _wait_for_workers(cluster: DaskCluster, count: int) -> None:
    from distributed import Client

    with Client(cluster.address, timeout=START_TIMEOUT, set_as_default=False) as client:
        try:
            client.wait_for_workers(count, timeout=START_TIMEOUT)
        except TimeoutError:
            logs = "\n".join(f"--- {name}\n{cluster.log(name)}" for name in cluster.workers)
            raise TimeoutError(f"{count} dask workers did not join in {START_TIMEOUT} s:\n{logs}") from None


@contextlib.contextmanager
def dask_cluster(workdir: Path, workers: int = 2, preload: str | None = None):
    """Start a scheduler and ``workers`` workers (with ``--preload`` when given); yield a :class:`DaskCluster`."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dask_environment(workdir)
    scheduler_file = workdir / "scheduler.json"
    scheduler = _start([str(venv_bin() / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                        "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                        str(scheduler_file)], workdir / "scheduler.log", env)
    cluster = DaskCluster("", scheduler, logs=workdir)
    try:
        def address():
            if scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited with {scheduler.returncode}:\n{cluster.log('scheduler')}")
            return scheduler_file.exists() and json.loads(scheduler_file.read_text()).get("address")
        cluster.address = wait_until(address, START_TIMEOUT, "the dask scheduler's address")
        for index in range(workers):
            name = f"worker-{index}"
            cluster.workers[name] = _start(_worker_command(cluster.address, name, workdir, preload),
                                           workdir / f"{name}.log", env)
        _wait_for_workers(cluster, workers)
        yield cluster
    finally:
        for process in cluster.workers.values():
            stop(process)
        stop(scheduler)

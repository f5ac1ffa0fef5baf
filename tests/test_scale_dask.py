"""Tasks on a real Dask cluster (rnnlab.grading.command.cluster): a killed worker loses nothing, repeats nothing.

Each test starts ``dask scheduler`` and one or two ``dask worker`` processes on 127.0.0.1
(tests/services/dask_cluster.py; the first test checks that they listen nowhere else)
and stops them at the end. The tasks
(tests/services/dask_tasks.py) leave a file when they start, so the tests count how often
a task ran, and on which worker, independently of what Dask reports.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
from services import dask_tasks
from services.dask_cluster import dask_cluster, listening

from rnnlab.grading.command import cluster

pytestmark = pytest.mark.slow

WAIT = 120  # seconds, for anything the tests wait for


def _wait_for(condition, what):
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT} s for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def _connected(tmp_path: Path, workers: int):
    """A cluster on 127.0.0.1, a client connected to it, and an empty folder for the tasks' markers."""
    markers = tmp_path / "markers"
    markers.mkdir()
    with dask_cluster(tmp_path / "cluster", workers=workers) as running:
        client = cluster.connect(running.address)
        try:
            yield running, client, markers
        finally:
            client.close()


def test_a_worker_killed_mid_task_loses_no_task_and_records_each_once(tmp_path):
    names = [f"student{index:02d}" for index in range(6)]
    with _connected(tmp_path, workers=2) as (running, client, markers):
        for process in [running.scheduler, *running.workers.values()]:
            addresses = listening(process.pid)
            assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses
        assert len(cluster.check_workers(client)) == 2
        killed = {}

        def kill_when_worker0_is_busy():
            _wait_for(lambda: any(".worker-0." in p.name for p in markers.iterdir()), "worker-0 to start a task")
            killed["task"] = next(p.name.split(".")[0] for p in markers.iterdir() if ".worker-0." in p.name)
            running.kill_worker("worker-0")

        killer = threading.Thread(target=kill_when_worker0_is_busy)
        killer.start()
        lines = []
        results = list(cluster.run_each(client, dask_tasks.slow, {name: (name, str(markers)) for name in names},
                                        poll=0.2, log=lines.append))
        killer.join(WAIT)

    assert sorted(r.name for r in results) == names, "every task gives exactly one result"
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    starts = dask_tasks.starts(markers)
    victim = killed["task"]
    assert sorted(starts[victim]) == ["worker-0", "worker-1"], (
        f"the task running on the killed worker ran again on the other one: {starts[victim]}")
    by_name = {r.name: r.value for r in results}
    assert by_name[victim]["worker"] == "worker-1", "its result is the rerun's"
    assert sum(len(s) for s in starts.values()) == len(names) + 1, (
        f"only the interrupted task started twice: {starts}")
    assert len(lines) == 1 and "left the cluster: the scheduler runs its tasks again" in lines[0], lines


def test_a_task_that_kills_every_worker_it_meets_is_reported_not_lost(tmp_path, monkeypatch):
    # Give up on a task at the first worker death (Dask's default retries it on 3 more workers).
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES", "0")
    with _connected(tmp_path, workers=2) as (running, client, markers):
        before = cluster.workers(client)
        poisoned = list(cluster.run_each(client, dask_tasks.kill_own_worker, {"mallory": None}))
        _wait_for(lambda: len(cluster.workers(client)) == 1, "the scheduler to drop the dead worker")
        dead = sorted(set(before) - set(cluster.workers(client)))
        after = list(cluster.run_each(client, dask_tasks.slow,
                                      {"dee": ("dee", str(markers)), "eve": ("eve", str(markers))},
                                      allowed={"eve": dead}, no_worker_timeout=2, poll=0.2))
    assert len(poisoned) == 1 and poisoned[0].name == "mallory" and poisoned[0].value is None
    assert "workers that died" in poisoned[0].error
    outcomes = {r.name: r for r in after}
    assert outcomes["dee"].error is None, "the surviving worker goes on"
    assert outcomes["eve"].value is None and "no Dask worker that may run it" in outcomes["eve"].error
    assert sorted(dask_tasks.starts(markers)) == ["dee"], "eve never ran anywhere else"


def _cancel_from_another_client(address: str, prefix: str, markers: Path, name: str) -> None:
    """Once ``name`` has started, cancel its task as a client that does not own it (force=True)."""
    from distributed import Client, Future

    _wait_for(lambda: name in dask_tasks.starts(markers), f"{name} to start")
    with Client(address, set_as_default=False) as other:
        keys = other.run_on_scheduler(lambda dask_scheduler: [k for k in dask_scheduler.tasks if k.startswith(prefix)])
        other.cancel([Future(key, other) for key in keys], force=True)


def test_a_task_the_cluster_cancels_runs_again_and_gives_one_result(tmp_path):
    with _connected(tmp_path, workers=1) as (running, client, markers):
        canceller = threading.Thread(target=_cancel_from_another_client,
                                     args=(running.address, "rnnlab-ada-", markers, "ada"))
        canceller.start()
        lines = []
        # Long enough for the other client to connect and cancel it while it runs, however busy the machine.
        results = list(cluster.run_each(client, dask_tasks.slow, {"ada": ("ada", str(markers), 10)},
                                        poll=0.2, log=lines.append))
        canceller.join(WAIT)
    assert [(r.name, r.error) for r in results] == [("ada", None)]
    assert dask_tasks.starts(markers)["ada"] == ["worker-0", "worker-0"], "cancelled while running, then run again"
    assert lines == ["The cluster cancelled the task of ada: submitting it again."]


def test_no_worker_left_ends_the_wait_with_an_error_for_each_task(tmp_path):
    with _connected(tmp_path, workers=1) as (running, client, markers):
        running.kill_worker("worker-0")
        _wait_for(lambda: not cluster.workers(client), "the scheduler to drop the worker")
        started = time.monotonic()
        results = list(cluster.run_each(client, dask_tasks.slow, {n: (n, str(markers)) for n in ("ada", "bob")},
                                        no_worker_timeout=2, poll=0.2))
    assert sorted(r.name for r in results) == ["ada", "bob"]
    assert all(r.value is None and "no Dask worker" in r.error for r in results)
    assert time.monotonic() - started < WAIT
    assert not list(markers.iterdir())


def test_scheduler_address_is_checked_before_connecting():
    assert cluster.scheduler_address("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    for wrong in ("127.0.0.1:8786", "tcp://127.0.0.1", "http://127.0.0.1:8786", "tcp://:8786", "tcp://h:99999"):
        with pytest.raises(ValueError, match="--scheduler must be a Dask scheduler address"):
            cluster.scheduler_address(wrong)


def test_pack_and_unpack_carry_files_and_folders_but_no_links(tmp_path):
    source = tmp_path / "source"
    (source / "data").mkdir(parents=True)
    (source / "a.ipynb").write_text("{}")
    (source / "data" / "x.bin").write_bytes(bytes(range(256)))
    (source / "link").symlink_to("/etc/passwd")
    copy = cluster.unpack(cluster.pack(source), tmp_path / "copy")
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == ["a.ipynb", "data", "data/x.bin"]
    assert (copy / "data" / "x.bin").read_bytes() == bytes(range(256))


def test_unpack_refuses_links_and_escaping_paths(tmp_path):
    import io
    import tarfile

    for member in (tarfile.TarInfo("../outside"), tarfile.TarInfo("link")):
        if member.name == "link":
            member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.addfile(member, io.BytesIO(b""))
        with pytest.raises((ValueError, tarfile.FilterError)):
            cluster.unpack(buffer.getvalue(), tmp_path / "copy")
    assert not (tmp_path / "outside").exists()


def test_connect_says_when_no_scheduler_answers(monkeypatch):
    from journeys.servers import free_port

    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")
    import dask

    dask.config.refresh()
    try:
        with pytest.raises(ValueError, match=r"no Dask scheduler answered at tcp://127\.0\.0\.1:\d+ within 2 s"):
            cluster.connect(f"tcp://127.0.0.1:{free_port()}")
    finally:
        monkeypatch.undo()
        dask.config.refresh()

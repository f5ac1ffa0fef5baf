"""The course's gradebook database: a private copy for the jobs, and one grading run writing at a time.

nbgrader keeps its gradebook wherever ``CourseDirectory.db_url`` says: an SQLite file
(the default, ``sqlite:///gradebook.db``) or a server such as PostgreSQL
(``postgresql+psycopg://user@host/db``; SQLAlchemy 2.1 also reads a bare
``postgresql://`` as psycopg 3). The grading command needs two things from it:

- :func:`snapshot` writes a consistent copy as a new SQLite file, which every job then
  copies and hands to nbgrader's autograde. SQLite files are copied with SQLite's online
  backup; any other database is read table by table (nbgrader's own table definitions)
  inside one ``REPEATABLE READ`` transaction, so the copy is one moment of the gradebook
  even while the formgrader writes to it.
- :func:`single_writer` makes a second grading run of the same gradebook stop at once
  with a clear error instead of writing beside the first (two writers creating the same
  student row at once make one of them fail mid-run). On PostgreSQL it holds a
  session-level advisory lock, which the server drops when the process ends, however it
  ends; on SQLite an exclusive ``flock`` on a file beside the gradebook. The formgrader
  and stock nbgrader commands do not take it: they can still write meanwhile, and the
  grading command only writes the automatic fields of a cell, so a score an instructor
  types during a run is kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import sqlite3
from pathlib import Path

from sqlalchemy import MetaData, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def sqlite_path(db_url: str) -> Path | None:
    """The file of an ``sqlite:///`` URL, or None for any other database."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise ValueError(f"the gradebook must be a file or a server; db_url is {db_url!r}")
    return Path(url.database)


def snapshot(db_url: str, target: Path) -> None:
    """Write a consistent copy of the gradebook at ``db_url`` as the SQLite file ``target``."""
    source_file = sqlite_path(db_url)
    if source_file is not None:
        if not source_file.is_file():
            raise ValueError(f"the gradebook {source_file} does not exist")
        source = sqlite3.connect(source_file)
        copy = sqlite3.connect(target)
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
        return
    _copy_tables(db_url, f"sqlite:///{target}")


def _copy_tables(db_url: str, target_url: str) -> None:
    from nbgrader.api import Base

    source = create_engine(db_url)
    copy = create_engine(target_url)
    try:
        Base.metadata.create_all(copy)
        with source.connect().execution_options(isolation_level="REPEATABLE READ") as reader, copy.begin() as writer:
            for table in Base.metadata.sorted_tables:  # parents before the rows that refer to them
                rows = [dict(row._mapping) for row in reader.execute(select(table))]
                if rows:
                    writer.execute(insert(table), rows)
            _copy_alembic_version(reader, writer)
    finally:
        source.dispose()
        copy.dispose()


def _copy_alembic_version(reader, writer) -> None:
    """nbgrader records its schema revision in alembic's table; the copy keeps it."""
    found = MetaData()
    found.reflect(bind=reader, only=lambda name, _: name == "alembic_version")
    if "alembic_version" not in found.tables:
        return
    versions = [row[0] for row in reader.execute(select(found.tables["alembic_version"].c.version_num))]
    writer.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
    for version in versions:
        writer.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version})


class GradebookBusy(ValueError):
    """Another grading run holds the gradebook."""


def _lock_key(db_url: str) -> int:
    """A signed 64-bit advisory-lock key naming this gradebook for the grading command."""
    digest = hashlib.sha256(f"rnnlab.grading:{make_url(db_url).database}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holder() -> str:
    return f"rnnlab grading, process {os.getpid()} on {socket.gethostname()}"


_LOCK_HOLDER = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :high AND l.objid::bigint = :low")


@contextlib.contextmanager
def single_writer(db_url: str):
    """Hold the grading command's writer lock on the gradebook for the block; :class:`GradebookBusy` if taken."""
    source_file = sqlite_path(db_url)
    if source_file is not None:
        with _file_lock(source_file.with_name(source_file.name + ".grading-lock")):
            yield
        return
    if make_url(db_url).get_backend_name() != "postgresql":
        raise ValueError(f"the grading command writes SQLite and PostgreSQL gradebooks; db_url is {db_url!r}")
    key = _lock_key(db_url)
    engine = create_engine(db_url, poolclass=NullPool, connect_args={"application_name": _holder()[:63]})
    try:
        with engine.connect() as connection:
            if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                holder = connection.execute(_LOCK_HOLDER, {"high": (key >> 32) & 0xFFFFFFFF,
                                                           "low": key & 0xFFFFFFFF}).scalar()
                raise GradebookBusy(f"another grading run is writing the gradebook {make_url(db_url).database!r} "
                                    f"({holder or 'holder unknown'}); wait for it to finish")
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise GradebookBusy(f"another grading run is writing the gradebook beside {path} "
                                f"({handle.read().strip() or 'holder unknown'}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(_holder() + "\n")
        handle.flush()
        yield

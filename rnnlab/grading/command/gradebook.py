"""The course's gradebook: a private copy for the jobs, one grading run writing at a time, and what it writes.

nbgrader keeps its gradebook wherever ``CourseDirectory.db_url`` says: an SQLite file
(the default, ``sqlite:///gradebook.db``) or a server such as PostgreSQL
(``postgresql+psycopg://user@host/db``; SQLAlchemy 2.1 also reads a bare
``postgresql://`` as psycopg 3). The grading command needs three things from it:

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
- :func:`record` writes one submission's outcome into it, and :func:`place_autograded`
  the job's autograded folder into the course. Only the runner's main process calls them,
  one submission at a time, so the gradebook has a single writer however many jobs run.
  The rows are those nbgrader's ``SaveAutoGrades`` writes (auto score,
  needs-manual-grade, auto comment, late penalty), with the outcome's decisions: a
  flagged cell or submission is marked for manual grading (and the notebook flagged in
  the formgrader); a submission that could not be graded gets no autograde score at all,
  so nothing reads as a 0 that nobody gave.

An instructor's decision holds: a score typed in the formgrader (a *manual score*) stays
the cell's score when the submission is graded again, and the cell is not reopened for
manual grading (stock ``nbgrader autograde`` reopens it). The outcome then says the
score is the instructor's. ``force=True`` (the command's ``--force``) clears manual
scores and grades everything afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import sqlite3
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
from sqlalchemy import MetaData, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SAWarning
from sqlalchemy.pool import NullPool

from .report import INSTRUCTOR, CellReport


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


def record(gradebook: Gradebook, assignment: str, outcome, notebooks, timestamp=None, force=False) -> None:
    """Store ``outcome`` (:class:`~rnnlab.grading.command.outcome.Outcome`) in ``gradebook``.

    Manual scores already there are kept (and ``outcome`` updated to show them) unless ``force``.
    """
    with warnings.catch_warnings():
        # nbgrader's own submission API trips this SQLAlchemy warning on every new student.
        warnings.simplefilter("ignore", SAWarning)
        _record(gradebook, assignment, outcome, notebooks, timestamp, force)


def _keep_instructor_scores(outcome, name, kept: dict, max_scores: dict) -> None:
    """Make ``outcome`` show the instructor's scores in ``kept`` (grade_id -> score) and total them."""
    if not kept:
        return
    reports = outcome.graded.setdefault(name, {})
    for grade_id, score in kept.items():
        reports.setdefault(grade_id, CellReport(max_score=max_scores[grade_id])).by = INSTRUCTOR
        if outcome.status == "failed":
            continue  # not graded this time: the report says so, and shows whose scores the gradebook keeps
        before = outcome.cells.setdefault(name, {}).get(grade_id, [None, True])[0]
        outcome.manual_points -= max_scores[grade_id] if before is None else 0.0
        outcome.cells[name][grade_id] = [score, False]
    if outcome.status != "failed":
        penalty = sum(p or 0.0 for p in outcome.late_penalty.values())
        total = sum(score or 0.0 for cells in outcome.cells.values() for score, _ in cells.values())
        outcome.score = max(total - penalty, 0.0)


def _record(gradebook, assignment, outcome, notebooks, timestamp, force):
    gradebook.update_or_create_student(outcome.student)
    if timestamp is not None:
        gradebook.update_or_create_submission(assignment, outcome.student, timestamp=timestamp)
    else:
        gradebook.update_or_create_submission(assignment, outcome.student)
    for name in notebooks:
        notebook = gradebook.find_submission_notebook(name, assignment, outcome.student)
        cells = outcome.cells.get(name, {})
        kept = {}
        for grade in notebook.grades:
            score, review = cells.get(grade.name, [None, True])
            grade.auto_score = score
            if force:
                grade.manual_score = None
            if grade.manual_score is not None:
                kept[grade.name] = float(grade.manual_score)
            grade.needs_manual_grade = grade.manual_score is None and bool(review or score is None)
        _keep_instructor_scores(outcome, name, kept, {g.name: float(g.max_score) for g in notebook.grades})
        comments = outcome.comments.get(name, {})
        for comment in notebook.comments:
            comment.auto_comment = comments.get(comment.name)
        notebook.flagged = outcome.status != "graded"
        penalty = outcome.late_penalty.get(name)
        if penalty is not None:
            notebook.late_submission_penalty = penalty
    gradebook.db.commit()


def place_autograded(source, destination: Path) -> None:
    """Replace ``destination`` with the job's autograded folder (or just remove it when None)."""
    destination = Path(destination)
    if destination.exists():
        shutil.rmtree(destination)
    if source is not None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, destination)

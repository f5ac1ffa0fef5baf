"""Real servers and accounts that the scale tests start and stop themselves.

PostgreSQL (:mod:`.postgres`), a Dask scheduler with workers (:mod:`.dask_cluster`) and
throw-away Unix accounts (:mod:`.unix_users`). Each is a context manager: what it starts
listens on a Unix socket or on 127.0.0.1 only, every wait is bounded, and everything it
started is stopped and removed however the block ends.
"""

from __future__ import annotations

import os

import pytest


def unavailable(message: str):
    """A system requirement is missing: fail under CI (``make test`` installs it), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)

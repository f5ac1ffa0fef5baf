"""Throw-away Unix accounts, and running this Python's commands as one of them.

``unix_users(names)`` (root only) creates one system account per name, each with a
private home folder (mode 0700) in a temporary folder, and deletes accounts and folders
when the block ends. Account names get a random suffix (``ada-3f9c``), so runs side by
side on one machine never share an account.

:meth:`UnixUser.run` runs a command as that account with ``setpriv`` (no capabilities,
only the account's own group). The command usually is this virtual environment's Python,
whose files may sit under a folder other users cannot enter (``/root`` is 0700 and
holds pyenv's interpreters, for instance). The account is then given a view in which
those folders are traversable and nothing else changes: ``bwrap`` (run as root, before
the account is switched to) mounts an empty ``0755`` tmpfs on each such folder and binds
back, read-only, only the Python installation and the virtual environment. Permissions
between the accounts themselves — what the tests are about — are the real ones.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import unavailable

COMMAND_TIMEOUT = 300  # seconds for one command run as an account


def _blocked_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` that other users cannot enter (no o+x), if any."""
    for ancestor in reversed(path.parents):
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def python_view() -> list[str]:
    """bwrap arguments that make this Python (interpreter and virtual environment) usable by any account."""
    needed = sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()})
    blocked = {}
    for path in needed:
        top = _blocked_ancestor(path)
        if top is not None:
            blocked.setdefault(top, []).append(path)
    arguments = ["--dev-bind", "/", "/"]
    for top, paths in sorted(blocked.items()):
        arguments += ["--perms", "0755", "--tmpfs", str(top)]
        # bwrap would create the folders between the tmpfs and each bound path with mode 0700.
        between = sorted({parent for path in paths for parent in path.parents if top in parent.parents})
        for folder in between:
            arguments += ["--perms", "0755", "--dir", str(folder)]
        for path in paths:
            arguments += ["--ro-bind", str(path), str(path)]
    return arguments


@dataclass
class UnixUser:
    """An account made for a test: its name, ids and private home folder."""

    name: str
    uid: int
    gid: int
    home: Path

    def environment(self, **extra: str) -> dict[str, str]:
        """A clean environment for this account: its HOME, USER and LOGNAME, this Python's bin/ on PATH."""
        env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8",
               "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}/usr/bin:/bin"}
        env.update(extra)
        return env

    def run(self, command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run ``command`` as this account (in its home unless ``cwd``); output captured as text.

        With ``check`` a non-zero exit fails, quoting the command's output.
        """
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            unavailable("Debian's bubblewrap is not installed (`apt-get install bubblewrap`; `make test` does it)")
        wrapped = [bwrap, *python_view(), "--chdir", str(cwd or self.home), "--",
                   "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--", *command]
        done = subprocess.run(wrapped, env=env or self.environment(), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"`{' '.join(command)}` as {self.name} exited with {done.returncode}:\n"
                                 f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done


def _delete_account(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, timeout=60)
    with contextlib.suppress(KeyError):  # userdel leaves the group when another account uses it
        grp.getgrnam(name)
        subprocess.run(["groupdel", name], capture_output=True, timeout=60)


@contextlib.contextmanager
def unix_users(names: list[str]):
    """Create an account per name (suffixed); yield {name: :class:`UnixUser`}; delete them after."""
    if os.geteuid() != 0:
        unavailable("creating Unix accounts needs root (`make test` in CI runs as root)")
    if shutil.which("useradd") is None:
        unavailable("useradd is missing (Debian's passwd package)")
    suffix = secrets.token_hex(2)
    with tempfile.TemporaryDirectory(prefix="rnnlab-users-", ignore_cleanup_errors=True) as scratch:
        folder = Path(scratch)
        folder.chmod(0o755)
        made: dict[str, UnixUser] = {}
        try:
            for name in names:
                account = f"{name}-{suffix}"
                subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                "--shell", "/usr/sbin/nologin", account], check=True, capture_output=True, timeout=60)
                entry = pwd.getpwnam(account)
                home = folder / account
                home.mkdir(mode=0o700)
                os.chown(home, entry.pw_uid, entry.pw_gid)
                made[name] = UnixUser(account, entry.pw_uid, entry.pw_gid, home)
            yield made
        finally:
            for user in made.values():
                _delete_account(user.name)

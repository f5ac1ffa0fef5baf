"""Start a Jupyter server (JupyterLab or Notebook 7) for a browser test, and stop it completely.

`jupyter_server(kind, root, workdir)` is a context manager: it starts ``jupyter lab`` or
``jupyter notebook`` in ``root`` on a free port of 127.0.0.1 with a random token, with
every per-user Jupyter folder (config, data, runtime, Lab settings and workspaces,
IPython) in a fresh folder under ``workdir``, so no earlier session's tabs, kernels or
settings leak in. ``configure(env)`` may add to that configuration before the server
starts (the students' hand-out does, with its install.py), and ``pythonpath`` puts a
folder first on the server's and the kernels' import path (the hand-out's package). It waits (bounded) until ``/api/status`` answers, and on exit stops the
server and every process it started: kernels run in sessions of their own
(jupyter_client starts them with ``start_new_session``), so killing the server's process
group is not enough; the descendants are collected from ``/proc`` first and each is
ended by its id.

Nothing here talks to the network beyond 127.0.0.1: Lab's news feed and update check
are turned off.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT = 180  # seconds; ~4 s on an idle machine, far more when other jobs share the cores
STOP_TIMEOUT = 30


def venv_bin() -> Path:
    """The bin/ folder of the Python running the tests (the project's .venv under make)."""
    return Path(sys.prefix) / "bin"


def venv_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra``, and the venv's bin/ first on PATH: the
    commands the tests run (``nbgrader``, ``python -m rnnlab.grading``, ``dask``) find the
    venv's tools there, and nbgrader starts ``alembic`` by name when it creates a gradebook."""
    return {**os.environ, **extra, "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jupyter_env(home: Path) -> dict[str, str]:
    """The environment of the server: the venv's bin first on PATH (nbgrader runs alembic)
    and every per-user Jupyter folder under ``home``."""
    env = venv_env()
    folders = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
        "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "matplotlib",
    }
    for variable, name in folders.items():
        path = home / name
        path.mkdir(parents=True, exist_ok=True)
        env[variable] = str(path)
    env.pop("JUPYTER_TOKEN", None)
    env.pop("JPY_PARENT_PID", None)
    return env


def write_offline_config(config_dir: Path) -> None:
    """Turn off Lab's news feed and update check (both would fetch from the internet)."""
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }))
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(exist_ok=True)
    (labconfig / "default_setting_overrides.json").write_text(json.dumps({
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    }))


@dataclass
class Server:
    """A running server: where it listens, its token, its root folder and its log file."""

    kind: str
    port: int
    token: str
    root: Path
    log: Path
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The address of ``path`` on this server, with the token (for the first page a browser opens)."""
        separator = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{separator}token={self.token}"

    def api(self, path: str, timeout: float = 10):
        """GET a JSON endpoint of the server with the token."""
        request = urllib.request.Request(f"{self.base}/{path.lstrip('/')}",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def wait_until(condition, timeout: float, what: str, interval: float = 0.5, sleep=time.sleep):
    """Poll ``condition()`` until it returns something true; fail naming ``what`` after ``timeout`` s.

    Network and decoding errors (OSError, ValueError) count as "not yet"; any other error
    ends the wait at once. While a browser is open, pass
    ``sleep=notebook_ui.page_sleep(page)`` so that Playwright keeps serving its events.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError) as error:  # not up yet: refused connection, HTTP error, partial JSON
            last_error = error
            value = None
        if value:
            return value
        sleep(interval)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}" + (f" (last error: {last_error})" if last_error else ""))


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may contain spaces.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already ended


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """End the server and every process it started: SIGTERM (the server then shuts its
    kernels down), and SIGKILL for whatever is still alive after ``timeout`` s."""
    if process.poll() is not None:
        return
    family = descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # the server is its own group leader
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    family += descendants(process.pid) if process.poll() is None else []
    deadline = time.monotonic() + 10
    for pid in family:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def jupyter_server(kind: str, root: Path, workdir: Path, log: Path, configure=None, pythonpath: Path | None = None):
    """Run ``jupyter <kind>`` (``lab`` or ``notebook``) in ``root``; yield a :class:`Server`.

    Per-user folders go under ``workdir``; the server's output goes to ``log``. The server
    and all its processes are stopped when the block ends, however it ends.
    """
    if kind not in ("lab", "notebook"):
        raise ValueError(f"kind must be 'lab' or 'notebook', got {kind!r}")
    env = jupyter_env(workdir)
    write_offline_config(Path(env["JUPYTER_CONFIG_DIR"]))
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    if configure is not None:
        configure(env)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        str(venv_bin() / "jupyter"), kind, "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(kind, port, token, root, log, process)
    try:
        def ready():
            if process.poll() is not None:
                raise RuntimeError(f"jupyter {kind} exited with {process.returncode}:\n{server.log_tail()}")
            return "started" in server.api("api/status", timeout=5)
        try:
            wait_until(ready, STARTUP_TIMEOUT, f"jupyter {kind} to answer on port {port}")
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{server.log_tail()}") from None
        yield server
    finally:
        stop(process)

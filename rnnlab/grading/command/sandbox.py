"""Where a student's code runs while it is graded: a bubblewrap sandbox with resource limits.

Both processes that run student code, the grading kernel (nbgrader's autograde) and the
outside check (:mod:`rnnlab.grading.command.recheck`), start through :meth:`Sandbox.command`.
With Debian's ``bwrap`` the student's code sees a read-only system (``/usr``, the Python
installation, the virtual environment and the ``rnnlab`` package, nothing else of the
disk), writes only its own working folder and a small private ``/tmp``, has no network
(a fresh network namespace), no capabilities (bwrap run by root keeps all of them
otherwise, enough to unmount its private ``/tmp`` and read the host's), a clean
environment, and dies with its parent together with everything it started (a PID
namespace). Every process also gets ``ulimit`` limits on address space, file size and
core dumps, so a memory bomb raises ``MemoryError`` instead of taking the machine down.

The student's code must import what the grader imports, from the same place: the
course may live anywhere on disk and ``rnnlab`` may be installed regularly, installed
editable from another folder, or imported from the course's own checkout.
:meth:`Sandbox.share_imports` finds every package the grading process loaded from
outside the Python installation, shows its folder (or file) read-only inside and puts
its parent first on the student's Python path, so that the kernel, the outside check and
the grader run one and the same ``rnnlab``. A package whose folder holds the course is
never shown: the calibration then names it as the cause.

Without ``bwrap`` only the limits apply: the code can read and write whatever the
grading user can. :func:`missing_warning` says so, loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "rnnlab-sandbox"
_ETC_FILES = ("ld.so.cache", "passwd", "group", "nsswitch.conf", "localtime", "alternatives")


@dataclass(frozen=True)
class Limits:
    """Per-process limits: address space and largest file written (MiB), private /tmp size."""

    memory_mb: int = 3072
    file_mb: int = 512
    tmp_mb: int = 256

    def __post_init__(self):
        for name in ("memory_mb", "file_mb", "tmp_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive whole number of MiB; got {value!r}")

    def shell_prefix(self) -> list[str]:
        """``sh -c 'ulimit …; exec "$@"' sh``: the limits, inherited by what is exec'd next."""
        script = (f"ulimit -v {self.memory_mb * 1024} && ulimit -f {self.file_mb * 1024} "
                  f"&& ulimit -c 0 && exec \"$@\"")
        return ["/bin/sh", "-c", script, "sandbox"]


def bwrap_path() -> str | None:
    """The ``bwrap`` executable, or None where bubblewrap is not installed."""
    return shutil.which("bwrap")


def missing_warning() -> str:
    """The warning printed when grading runs without bubblewrap."""
    bar = "!" * 78
    return (f"{bar}\nWARNING: bubblewrap (bwrap) is not installed: student code runs UNSANDBOXED.\n"
            "It can read solutions/, other students' work and the gradebook, and use the network.\n"
            "Only memory/file-size limits apply; the outside check still sets the lower score.\n"
            f"Install it (Debian: apt-get install bubblewrap) before grading real submissions.\n{bar}")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def installation() -> list[str]:
    """The Python installation the student's code runs with: interpreter and virtual environment."""
    unique = []
    for folder in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}, key=len):
        if not any(_inside(folder, u) for u in unique):
            unique.append(folder)
    return unique


def imported_from_elsewhere() -> dict[str, str]:
    """Top-level package -> its folder (or single-file module), for every package this process
    imported from outside the Python installation (an editable install, a checkout)."""
    prefixes = installation()
    found = {}
    for top in sorted({name.partition(".")[0] for name in list(sys.modules)} - {"__main__"}):
        module = sys.modules.get(top)
        origin = getattr(module, "__file__", None)
        if not isinstance(origin, str) or not os.path.isabs(origin):
            continue
        origin = os.path.realpath(origin)
        if not any(_inside(origin, prefix) for prefix in prefixes):
            found[top] = os.path.dirname(origin) if hasattr(module, "__path__") else origin
    return found


def _matplotlib_cache() -> list[str]:
    """Font-list caches to show inside, so matplotlib does not rebuild (and warn) each time."""
    folder = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
    return sorted(str(p) for p in folder.glob("fontlist-*.json")) if folder.is_dir() else []


class Sandbox:
    """Builds the command lines that run student code, sandboxed when ``bwrap`` exists.

    ``use_bwrap=None`` picks bwrap when installed; True insists on it (ValueError if
    missing); False never uses it (the tests' comparison with the unsandboxed case).
    """

    def __init__(self, limits: Limits | None = None, use_bwrap: bool | None = None):
        found = bwrap_path()
        if use_bwrap and not found:
            raise ValueError("use_bwrap=True but bubblewrap (bwrap) is not installed")
        self.bwrap = found if use_bwrap in (None, True) else None
        self.limits = limits or Limits()
        self.shared: dict[str, str] = {}      # package -> folder or file shown read-only
        self.hidden: dict[str, str] = {}      # package -> folder never shown (it holds the course)
        self.python_path: list[str] = []      # first on the student's sys.path

    def share_imports(self, course_root) -> None:
        """Show the student's code, read-only, the packages this process imported from outside
        the installation (call after importing what the instructor's cells import)."""
        course = os.path.realpath(course_root)
        self.shared, self.hidden, self.python_path = {}, {}, []
        for name, location in sorted(imported_from_elsewhere().items()):
            if _inside(course, location):
                self.hidden[name] = location
                continue
            self.shared[name] = location
            parent = os.path.dirname(location)
            if parent not in self.python_path:
                self.python_path.append(parent)

    @property
    def isolated(self) -> bool:
        """True when student code runs inside bubblewrap."""
        return self.bwrap is not None

    def command(self, argv, workdir, writable=(), env=None) -> list[str]:
        """The command line running ``argv`` in ``workdir`` as untrusted code.

        ``writable`` lists further folders the code may write (the kernel's connection
        folder); ``env`` is the whole environment inside (bwrap clears everything else).
        """
        workdir = os.path.realpath(workdir)
        if not self.isolated:
            # No sandbox: limits, and a kill signal when the grading process dies.
            return self.limits.shell_prefix() + ["setpriv", "--pdeathsig", "KILL", "--"] + list(argv)
        args = [self.bwrap, "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/lib", "/lib64", "/sbin"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for name in _ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        for folder in installation() + sorted(self.shared.values()):
            args += ["--ro-bind", folder, folder]
        for font_list in _matplotlib_cache():
            args += ["--ro-bind", font_list, f"/tmp/.matplotlib/{os.path.basename(font_list)}"]
        for folder in [workdir, *map(os.path.realpath, writable)]:
            args += ["--bind", folder, folder]
        args += ["--chdir", workdir, "--clearenv"]
        inside = {"HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "MPLCONFIGDIR": "/tmp/.matplotlib",
                  "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
                  "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
        for key, value in inside.items():
            args += ["--setenv", key, value]
        return self.limits.shell_prefix() + args + ["--"] + list(argv)

    def write_kernelspec(self, jupyter_dir, notebook_dir, runtime_dir) -> str:
        """Write the grading kernel's kernelspec under ``jupyter_dir/kernels``; return its name.

        The kernel runs in ``notebook_dir`` (the student's autograded folder, its only
        writable disk folder) and talks to nbgrader over files in ``runtime_dir``: inside
        a network namespace TCP to the host is gone, so the sandboxed kernel uses the
        ``ipc`` transport (see :meth:`kernel_config`). Interrupts are messages, since a
        signal would reach bwrap, not the kernel.
        """
        launch = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        env = {"NBGRADER_EXECUTION": "autograde"}  # nbgrader's documented variable, kept for instructors
        if self.python_path:
            env["PYTHONPATH"] = os.pathsep.join(self.python_path)
        spec = {
            "argv": self.command(launch, notebook_dir, writable=[runtime_dir], env=env),
            "display_name": "Python 3 (rnnlab grading sandbox)",
            "language": "python",
            "interrupt_mode": "message",
            "metadata": {"debugger": False},
        }
        if not self.isolated:  # bwrap sets the environment itself; here the kernel inherits the job's
            spec["env"] = env
        folder = Path(jupyter_dir) / "kernels" / KERNEL_NAME
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
        return KERNEL_NAME

    def kernel_config(self, runtime_dir) -> dict:
        """Config entries that make nbgrader start this kernel (``Class.trait`` -> value)."""
        config = {"Execute.kernel_name": KERNEL_NAME}
        if self.isolated:
            config["KernelManager.transport"] = "ipc"
            config["KernelManager.ip"] = os.path.join(os.path.realpath(runtime_dir), "kernel")
        return config

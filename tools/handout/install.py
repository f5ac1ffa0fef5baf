"""Set up the rnnlab exercises on this computer, once: ``python3 install.py`` (Windows: ``py install.py``).

It creates a virtual environment in ``.venv`` next to this file, installs the pinned
packages of ``requirements.txt`` (the ``rnnlab`` package comes from ``wheels/``), and
sets up Jupyter for students: nbgrader's instructor tools (Formgrader, Create
Assignment, Course List) are switched off and locked, as nbgrader's installation guide
describes, ``kernel_settings.py`` goes into the environment's Jupyter configuration
(kernels over Unix sockets on Linux), and each notebook is
stamped with the Python version of this environment, so that opening it does not mark
it as modified. Then start JupyterLab with ``.venv/bin/jupyter lab``
(Windows: ``.venv\\Scripts\\jupyter lab``).

``python install.py --configure-only --level user`` runs only the Jupyter set-up, with
the Python that runs it, for the user's Jupyter configuration folder (what the course's
tests use).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
MINIMUM_PYTHON = (3, 10)
# nbgrader 0.9's instructor tools; students keep the Assignment List and Validate.
INSTRUCTOR_LAB_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                          "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*command) -> None:
    print("$", " ".join(map(str, command)), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=HERE)


def install() -> Path:
    """Create .venv (unless it exists) and install requirements.txt into it; returns its Python."""
    if sys.version_info < MINIMUM_PYTHON:
        raise SystemExit(f"The exercises need Python {'.'.join(map(str, MINIMUM_PYTHON))} or later; "
                         f"this is {sys.version.split()[0]}.")
    folder = HERE / ".venv"
    python = venv_python(folder)
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(folder)
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "--quiet", "-r", "requirements.txt")
    return python


def hide_instructor_tools(level: str) -> None:
    """Switch nbgrader's instructor extensions off at ``level`` ("sys_prefix" or "user").

    Lab plugins through ``jupyter labextension disable``/``lock``; the server extensions
    by writing what ``jupyter server extension disable`` would (in nbgrader 0.9.6 that
    command refuses the formgrader module). ``kernel_settings.py`` goes there too, as the
    settings of Jupyter's server and of nbgrader (whose Validate button starts its own kernel).
    """
    from jupyter_core.paths import ENV_CONFIG_PATH, jupyter_config_dir
    from jupyter_server.config_manager import BaseJSONConfigManager

    jupyter = [sys.executable, "-m", "jupyter"]
    for action in ("disable", "lock"):
        subprocess.run([*jupyter, "labextension", action, f"--level={level}", *INSTRUCTOR_LAB_PLUGINS],
                       check=True, capture_output=True, text=True)
    settings = {"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}}}
    folder = ENV_CONFIG_PATH[0] if level == "sys_prefix" else jupyter_config_dir()
    BaseJSONConfigManager(config_dir=folder).update("jupyter_server_config", settings)
    for name in ("jupyter_server_config.py", "nbgrader_config.py"):
        shutil.copyfile(HERE / "kernel_settings.py", Path(folder) / name)


def stamp_notebooks(root: Path) -> list[Path]:
    """Write this kernel's ``language_info`` into every notebook under ``root``; return those changed.

    JupyterLab and Notebook 7 copy the kernel's language_info (with the exact Python
    version) into a notebook when it opens, which marks it as modified; stamped, it stays clean.
    """
    import nbformat
    from ipykernel.ipkernel import IPythonKernel

    info = json.loads(json.dumps(IPythonKernel.language_info))
    changed = []
    for path in sorted(root.glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if notebook.metadata.get("language_info") != info:
            notebook.metadata["language_info"] = info
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


def configure(level: str) -> None:
    hide_instructor_tools(level)
    stamp_notebooks(HERE)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configure-only", action="store_true", help="only set up Jupyter, with this Python")
    parser.add_argument("--level", choices=("sys_prefix", "user"), default="sys_prefix",
                        help="where the Jupyter set-up is written (default: the environment)")
    args = parser.parse_args(argv)
    if args.configure_only:
        configure(args.level)
        return
    python = install()
    run(python, Path(__file__).name, "--configure-only", "--level", "sys_prefix")
    start = ".venv\\Scripts\\jupyter lab" if os.name == "nt" else ".venv/bin/jupyter lab"
    print(f"\nReady. Start JupyterLab in this folder with:\n    {start}\n(see README.md).")


if __name__ == "__main__":
    main()

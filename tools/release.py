"""Write the students' hand-out: the release notebooks and what they need to run, no answer key.

    .venv/bin/python tools/release.py              # or: make release
    .venv/bin/python tools/release.py --out DIR    # somewhere else than dist/

writes ``dist/rnnlab-exercises/`` and the same as ``dist/rnnlab-exercises.zip``, for a
learning-management system or a shared drive:

- ``<assignment>/<assignment>.ipynb``: each notebook of ``exercises/`` (nbgrader's
  release: no solutions, no hidden tests);
- ``wheels/rnnlab-<version>-py3-none-any.whl``: the ``rnnlab`` package as the book
  shows it, with only the part of ``rnnlab.grading`` that the notebooks' test cells
  import (and what that imports). Left out: the instructors' grading command and, in
  ``rnnlab/grading/hidden.py``, the hidden tests' inputs, so students cannot run the
  hidden tests before handing in;
- ``requirements.txt``: the course's pinned versions of what the notebooks need, and the wheel;
- ``install.py``, ``kernel_settings.py`` and ``README.md``: the students' set-up, how
  their kernels talk to Jupyter, and their instructions (from ``tools/handout/``).

The zip is the same byte for byte from the same sources (fixed dates, sorted entries).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NAME = "rnnlab-exercises"
GRADING = "rnnlab.grading"
LEFT_OUT = {"rnnlab.grading.hidden": "the hidden tests' inputs"}
COMMAND = "command"  # rnnlab/grading/command/: the instructors' grading command, never handed out
STUDENT_TOOLS = ("jupyterlab", "notebook", "nbgrader", "ipykernel")
FIXED_DATE = (2026, 1, 1, 0, 0, 0)       # zip entries' date: the same sources give the same zip
SOURCE_DATE_EPOCH = "1767225600"          # the same date, for the wheel (setuptools reads it)


def assignments(root: Path) -> list[str]:
    """The released assignments: the folders of ``exercises/``."""
    return sorted(p.name for p in (root / "exercises").iterdir() if p.is_dir() and not p.name.startswith("."))


def _imports(source: str, package: str) -> set[str]:
    """Modules of ``rnnlab.grading`` that ``source`` (a module of ``package``, or a cell) imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith(GRADING + ".")}


def grading_modules(root: Path, notebooks: list[Path]) -> list[str]:
    """The ``rnnlab.grading`` modules the notebooks' code cells import, with everything they import in turn."""
    folder = root / "rnnlab" / "grading"
    known = {f"{GRADING}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    wanted = set()
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                wanted |= _imports(cell.source, "")
    pending, kept = sorted(wanted & known), set()
    while pending:
        module = pending.pop()
        if module in kept or module in LEFT_OUT:
            continue
        kept.add(module)
        source = (folder / f"{module.rsplit('.', 1)[1]}.py").read_text(encoding="utf-8")
        pending += sorted((_imports(source, GRADING) & known) - kept)
    return sorted(kept)


def _stage(root: Path, stage: Path, modules: list[str]) -> None:
    """The package's sources as the wheel should hold them, in ``stage``."""
    shutil.copy2(root / "pyproject.toml", stage / "pyproject.toml")
    shutil.copy2(root / "tools" / "handout" / "README.md", stage / "README.md")
    if (root / "LICENSE").exists():
        shutil.copy2(root / "LICENSE", stage / "LICENSE")
    keep = {f"{m.rsplit('.', 1)[1]}.py" for m in modules} | {"__init__.py"}
    grading = root / "rnnlab" / "grading"

    def ignore(folder, names):
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        if Path(folder).resolve() == grading.resolve():
            skipped |= {n for n in names if n.endswith(".py") and n not in keep}
            skipped |= {COMMAND} & set(names)  # the instructors' command, as a whole
        return skipped

    shutil.copytree(root / "rnnlab", stage / "rnnlab", ignore=ignore)


def build_wheel(root: Path, modules: list[str], out: Path) -> Path:
    """Build the students' wheel of ``rnnlab`` into ``out`` (pip and setuptools, no network); return it."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rnnlab-wheel-") as scratch:
        stage = Path(scratch) / "rnnlab"
        stage.mkdir()
        _stage(root, stage, modules)
        env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-qq", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(out), str(stage)], check=True, env=env, cwd=scratch)
    (wheel,) = out.glob("rnnlab-*.whl")
    return wheel


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def requirements(root: Path, wheel: Path) -> str:
    """``requirements.txt`` of the hand-out: the course's pins for the package's dependencies and the tools."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = [_name(d) for d in project["dependencies"]] + list(STUDENT_TOOLS)
    pins = {}
    for line in (root / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[_name(line)] = line
    missing = [name for name in needed if name not in pins]
    if missing:
        raise SystemExit(f"requirements.txt pins no version of {', '.join(missing)}: the hand-out needs one")
    lines = ["# The rnnlab exercises' packages, pinned as the course pins them (written by tools/release.py).",
             *[pins[name] for name in needed], f"./wheels/{wheel.name}"]
    return "\n".join(lines) + "\n"


def write_zip(folder: Path, target: Path) -> None:
    """Zip ``folder`` (as its own top folder) with sorted entries and fixed dates."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(Path(folder.name) / path.relative_to(folder)), date_time=FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def release(root: Path, out: Path) -> tuple[Path, Path]:
    """Write the hand-out folder and zip under ``out``; return both paths."""
    folder, target = out / NAME, out / f"{NAME}.zip"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    notebooks = []
    for assignment in assignments(root):
        for path in sorted((root / "exercises" / assignment).glob("*.ipynb")):
            (folder / assignment).mkdir(exist_ok=True)
            shutil.copy2(path, folder / assignment / path.name)
            notebooks.append(path)
    wheel = build_wheel(root, grading_modules(root, notebooks), folder / "wheels")
    (folder / "requirements.txt").write_text(requirements(root, wheel), encoding="utf-8")
    for name in ("README.md", "install.py", "kernel_settings.py"):
        shutil.copy2(root / "tools" / "handout" / name, folder / name)
    write_zip(folder, target)
    return folder, target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the course (default: this repository)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where to write (default: dist/)")
    args = parser.parse_args(argv)
    folder, target = release(args.root.resolve(), args.out.resolve())
    print(f"hand-out written: {folder}/ and {target}")


if __name__ == "__main__":
    main()

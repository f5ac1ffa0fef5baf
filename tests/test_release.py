"""The students' hand-out (``make release``, tools/release.py): everything to do the exercises, no answer key.

The hand-out is built into a temporary folder from this repository. Its files, and the
files inside its wheel, are searched for the instructor's notebooks' solution regions
and hidden-test regions; the wheel is installed (offline) into a folder of its own and
the instructor's notebooks are run against it: the visible tests pass on the reference
answers, and every hidden test refuses to run, in every assignment. The set-up script's
Jupyter configuration is checked in a scratch configuration folder; what students then
see in the browser is tests/test_journeys.py's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import release  # noqa: E402
from journeys.servers import venv_env  # noqa: E402

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
REFUSAL = "The hidden tests run when your work is graded"


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    folder, target = release.release(ROOT, out)
    return folder, target


def regions(source: str, begin: str, end: str) -> list[str]:
    """The text between each ``### begin`` and ``### end`` line of ``source``."""
    found, inside = [], None
    for line in source.splitlines():
        if begin in line:
            inside = []
        elif end in line and inside is not None:
            found.append("\n".join(inside))
            inside = None
        elif inside is not None:
            inside.append(line)
    return found


def squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def handout_texts(folder: Path) -> dict[str, str]:
    """Every file of the hand-out as text, the wheel's members included (name -> text)."""
    texts = {}
    for path in folder.rglob("*"):
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                for member in wheel.namelist():
                    texts[f"{path.name}!{member}"] = wheel.read(member).decode("utf-8", "replace")
        elif path.is_file():
            texts[str(path.relative_to(folder))] = path.read_text(encoding="utf-8", errors="replace")
    return texts


def test_handout_holds_the_release_notebooks_and_no_solution_or_hidden_test(handout):
    folder, target = handout
    texts = handout_texts(folder)
    with zipfile.ZipFile(target) as archive:
        zipped = sorted(name.split("/", 1)[1] for name in archive.namelist())
    assert zipped == sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    assignments = release.assignments(ROOT)
    assert assignments == sorted(p.stem for p in (ROOT / "solutions").glob("*.md"))
    for assignment in assignments:
        shipped = folder / assignment / f"{assignment}.ipynb"
        assert shipped.read_bytes() == (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_bytes()
    assert not [name for name in texts if name.endswith(".ipynb") and name.split("/")[0] not in assignments]

    for name, text in texts.items():
        assert not any(marker in text for marker in MARKERS), f"{name} holds an nbgrader marker"
    everything = {name: squeezed(text) for name, text in texts.items()}
    for source in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(source, as_version=4).cells:
            hidden = [squeezed(r) for r in regions(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")]
            answers = [squeezed(r) for r in regions(cell.source, "BEGIN SOLUTION", "END SOLUTION")]
            for region in hidden + [a for a in answers if len(a) > 40]:
                holders = [name for name, text in everything.items() if region in text]
                assert not holders, f"{source.name}: {region[:80]!r} is in {holders}"


def test_handout_package_leaves_out_the_grading_command_and_the_hidden_inputs(handout):
    folder, _ = handout
    (wheel,) = (folder / "wheels").glob("rnnlab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("rnnlab/")}
    in_repo = {str(p.relative_to(ROOT)) for p in (ROOT / "rnnlab").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}   # modules and their data
    grading = {name for name in shipped if name.startswith("rnnlab/grading/")}
    assert shipped - grading == in_repo - {n for n in in_repo if n.startswith("rnnlab/grading/")}
    assert "rnnlab/grading/checks/recurrent.py" in grading and "rnnlab/grading/checks/hidden.py" not in grading
    assert "rnnlab/grading/__main__.py" not in grading
    assert not any(name.startswith("rnnlab/grading/command/") for name in grading)
    requirements = (folder / "requirements.txt").read_text()
    assert f"./wheels/{wheel.name}" in requirements and "nbgrader==" in requirements and "torch==" in requirements


def test_handout_is_the_same_byte_for_byte_when_built_again(handout, tmp_path):
    _, target = handout
    _, again = release.release(ROOT, tmp_path)
    assert again.read_bytes() == target.read_bytes()


@pytest.mark.slow
def test_with_the_handout_package_visible_tests_pass_and_hidden_tests_refuse(handout, tmp_path):
    """The instructor's notebooks (answers and hidden tests) run against the hand-out's wheel alone."""
    from nbclient import NotebookClient

    folder, _ = handout
    (wheel,) = (folder / "wheels").glob("rnnlab-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-qq", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True)
    os.environ["PYTHONPATH"] = str(target)  # the kernel inherits it: its rnnlab is the hand-out's
    try:
        for assignment in release.assignments(ROOT):
            notebook = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
            notebook.cells.append(nbformat.v4.new_code_cell("import rnnlab.grading\nprint(rnnlab.grading.__file__)"))
            work = tmp_path / assignment
            work.mkdir()
            NotebookClient(notebook, timeout=600, allow_errors=True, kernel_name="python3",
                           resources={"metadata": {"path": str(work)}}).execute()
            for cell in notebook.cells:
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
                    continue
                text = "\n".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)
                if "BEGIN HIDDEN TESTS" in cell.source:
                    assert REFUSAL in text, (assignment, meta["grade_id"], text[-500:])
                else:
                    assert text.startswith("OK:"), (assignment, meta["grade_id"], text[-500:])
            imported = notebook.cells[-1].outputs[0]["text"]
            assert imported.startswith(str(target)), f"{assignment}: the kernel imported {imported}"
    finally:
        del os.environ["PYTHONPATH"]


def test_install_script_sets_up_jupyter_for_students(handout, tmp_path):
    """``install.py --configure-only --level user``: instructor tools off and locked, IPC, notebooks stamped."""
    from ipykernel.ipkernel import IPythonKernel

    folder, _ = handout
    copy = tmp_path / "handout"
    shutil.copytree(folder, copy)
    config = tmp_path / "config"
    env = venv_env(JUPYTER_CONFIG_DIR=str(config))
    done = subprocess.run([sys.executable, "install.py", "--configure-only", "--level", "user"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    page = json.loads((config / "labconfig" / "page_config.json").read_text())
    for plugin in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list"):
        assert page["disabledExtensions"][plugin] is True and plugin in page["lockedExtensions"]
    assert "@jupyter/nbgrader:validate-assignment" not in page["disabledExtensions"]
    server = json.loads((config / "jupyter_server_config.json").read_text())
    assert server["ServerApp"]["jpserver_extensions"] == {"nbgrader.server_extensions.formgrader": False,
                                                         "nbgrader.server_extensions.course_list": False}
    for name in ("jupyter_server_config.py", "nbgrader_config.py"):
        assert (config / name).read_text() == (folder / "kernel_settings.py").read_text()
    for assignment in release.assignments(ROOT):
        stamped = nbformat.read(copy / assignment / f"{assignment}.ipynb", as_version=4)
        assert stamped.metadata.language_info == IPythonKernel.language_info
        original = nbformat.read(folder / assignment / f"{assignment}.ipynb", as_version=4)
        assert [c.source for c in stamped.cells] == [c.source for c in original.cells]


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_student_data_is_git_ignored():
    paths = ["grades.csv", "gradebook.db", "submitted/ada/gru_cell/gru_cell.ipynb",
             "autograded/ada/gru_cell/gru_cell.ipynb", "autograded/grading-report-gru_cell.csv",
             "feedback/ada/gru_cell/gru_cell.html", "feedback/gru_cell-feedback.zip",
             "downloaded/gru_cell/archive/ada_gru_cell.ipynb", "exchange/rnnlab/inbound/x",
             "dist/rnnlab-exercises.zip", "nbgrader.log"]
    done = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert sorted(done.stdout.split()) == sorted(paths), set(paths) - set(done.stdout.split())

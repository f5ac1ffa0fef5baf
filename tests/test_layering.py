"""The package's layering (DESIGN.md, "Layering"), read from its import statements.

Every ``.py`` file under ``rnnlab/`` is parsed with :mod:`ast`, never imported, so the
test is fast and sees imports that a run would not reach: those inside functions, inside
``if``/``try`` blocks, and relative ones (``from .cells import ...``). An import is
resolved to the module it loads: ``from rnnlab.grading.checks import kinds`` loads
``rnnlab.grading.checks.kinds`` when that file exists, else ``rnnlab.grading.checks``.

The rules, each a function that returns its violations as ``file:line`` lines:

1. ``rnnlab.cells`` imports nothing above it: from rnnlab, only ``rnnlab._checks`` and
   ``rnnlab.errors``, and what they import, nothing else.
2. The core (``rnnlab`` outside ``rnnlab.grading``) never imports ``rnnlab.grading``.
3. The in-kernel checks (what the notebooks' test cells import, and everything that
   reaches) never import nbgrader, directly or through any module they import, at module
   level or inside a function; and they stay inside the in-kernel set: the package
   ``rnnlab.grading.checks`` and ``rnnlab.grading.messages``.
4. ``rnnlab.tasks`` imports neither the models (cells, recurrence, modules, gradients,
   stacking) nor ``rnnlab.training``, directly or through another module.
5. The modules that run inside the student's process of the outside check
   (``rnnlab.grading.command.recheck``'s child, tracing, wire) import only the standard
   library at module level, and nothing of rnnlab (the child loads them by path, with
   ``python -I``).
6. The command (``rnnlab.grading.command``) imports nothing of the in-kernel checks, at
   module level or inside a function: of ``rnnlab.grading`` outside it, only
   ``rnnlab.grading.messages`` (the message format both sides read).

For rule 3 a module also loads its parent packages (``rnnlab/__init__.py`` imports the
whole core), and the check follows them; for rules 1 and 4 it does not, since that is
Python's doing, not the module's. The last tests run the same checker on a small fake
package with one violation of each rule, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BELOW_CELLS = {"rnnlab._checks", "rnnlab.errors"}
MODELS = {"rnnlab.cells", "rnnlab.recurrence", "rnnlab.modules", "rnnlab.gradients", "rnnlab.stacking"}
# The in-kernel set: every module of the package rnnlab/grading/checks/, and the message format.
IN_KERNEL = {"rnnlab.grading.messages"} | {
    ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1 if path.stem == "__init__" else None])
    for path in (ROOT / "rnnlab" / "grading" / "checks").rglob("*.py")}
STUDENT_PROCESS = {f"rnnlab.grading.command.recheck.{name}" for name in ("child", "tracing", "wire")}
COMMAND = "rnnlab.grading.command"
SHARED = frozenset({"rnnlab.grading", "rnnlab.grading.messages"})  # what the command may import of the rest


@dataclass(frozen=True)
class Import:
    importer: str       # the module whose file holds the statement, e.g. "rnnlab.cells"
    imported: str       # the module it loads, e.g. "rnnlab._checks" or "numpy.linalg"
    path: str           # the file, relative to the root
    line: int
    deferred: bool      # inside a function: runs when called, not when the module loads

    def __str__(self):
        where = " (inside a function)" if self.deferred else ""
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}{where}"


def module_files(root: Path, package: str = "rnnlab") -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (packages by their own name)."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports_of(name: str, path: Path, modules: dict[str, Path], root: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(path) else name.rpartition(".")[0]
    found = []

    def record(imported, node, deferred):
        found.append(Import(name, imported, path.relative_to(root).as_posix(), node.lineno, deferred))

    def visit(node, deferred):
        if isinstance(node, ast.Import):
            for alias in node.names:
                record(alias.name, node, deferred)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                record(submodule if submodule in modules else source, node, deferred)
        inner = deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def read_imports(root: Path, package: str = "rnnlab") -> dict[str, list[Import]]:
    """The import statements of every module of ``package`` under ``root``."""
    modules = module_files(root, package)
    return {name: _imports_of(name, path, modules, root) for name, path in modules.items()}


def _parents(name: str, graph) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts)) if ".".join(parts[:k]) in graph]


def reach(graph, start: str, with_parents: bool = False) -> dict[str, Import | None]:
    """Every module of the package that ``start`` loads, directly or not, each with the
    import that first reached it (None for ``start`` and for parent packages)."""
    seen: dict[str, Import | None] = {start: None}
    todo = [start]
    while todo:
        name = todo.pop()
        following = [(parent, None) for parent in _parents(name, graph)] if with_parents else []
        following += [(i.imported, i) for i in graph[name] if i.imported in graph]
        for target, how in following:
            if target not in seen:
                seen[target] = how
                todo.append(target)
    return seen


def _chain(graph, start, target, with_parents=False) -> str:
    """How ``start`` comes to load ``target``: the imports along the way, last first."""
    via = reach(graph, start, with_parents)
    steps, name = [], target
    while via.get(name) is not None:
        steps.append(str(via[name]))
        name = via[name].importer
    return "; ".join(steps) if steps else f"{target} is a parent package of {start}"


def _top(imported: str) -> str:
    return imported.split(".")[0]


def _under(imported: str, package: str) -> bool:
    return imported == package or imported.startswith(package + ".")


# --- the rules ------------------------------------------------------------------------


def cells_violations(graph, cells="rnnlab.cells", below=frozenset(BELOW_CELLS)) -> list[str]:
    """Rule 1: the modules of the package that ``cells`` reaches, other than those below it."""
    package = cells.split(".")[0]
    return [_chain(graph, cells, name) for name in sorted(reach(graph, cells))
            if name != cells and name not in below and _under(name, package)]


def core_violations(graph, package="rnnlab", grading="rnnlab.grading") -> list[str]:
    """Rule 2: imports of the grading package by modules outside it."""
    return [str(i) for name, imports in sorted(graph.items()) if not _under(name, grading)
            for i in imports if _under(i.imported, grading)]


def in_kernel_violations(graph, in_kernel=frozenset(IN_KERNEL), grading="rnnlab.grading") -> list[str]:
    """Rule 3: nbgrader reached from an in-kernel module, and grading modules it reaches
    that are not in-kernel ones."""
    found: dict[str, str] = {}  # each problem once, told from the first in-kernel module that reaches it
    for start in sorted(in_kernel):
        for name in reach(graph, start, with_parents=True):
            if _under(name, grading) and name != grading and name not in in_kernel:
                found.setdefault(name, f"{start} reaches {name}, which is not an in-kernel module: "
                                 + _chain(graph, start, name, with_parents=True))
            for i in graph[name]:
                if _top(i.imported) == "nbgrader":
                    route = "" if name == start else f" (reached from {start}: {_chain(graph, start, name, True)})"
                    found.setdefault(str(i), str(i) + route)
    return sorted(found.values())


def tasks_violations(graph, tasks="rnnlab.tasks", forbidden=frozenset(MODELS | {"rnnlab.training"})) -> list[str]:
    """Rule 4: the models or the training loop reached from ``tasks``."""
    return [_chain(graph, tasks, name) for name in sorted(reach(graph, tasks)) if name in forbidden]


def student_process_violations(graph, names=frozenset(STUDENT_PROCESS), package="rnnlab") -> list[str]:
    """Rule 5: module-level imports outside the standard library, or any import of the package."""
    problems = []
    for name in sorted(names):
        for i in graph[name]:
            if _under(i.imported, package) or (not i.deferred and _top(i.imported) not in sys.stdlib_module_names):
                problems.append(str(i))
    return problems


def command_violations(graph, command=COMMAND, shared=SHARED, grading="rnnlab.grading") -> list[str]:
    """Rule 6: imports, by the command's modules, of grading modules outside the command other than ``shared``."""
    return [str(i) for name, imports in sorted(graph.items()) if _under(name, command)
            for i in imports if _under(i.imported, grading) and not _under(i.imported, command)
            and i.imported not in shared]


# --- the package as it is --------------------------------------------------------------

GRAPH = read_imports(ROOT)


def assert_none(violations):
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_the_reader_sees_the_package():
    """The rules below mean something only if the modules they name exist and their imports are read."""
    for name in {"rnnlab.cells", "rnnlab.tasks", "rnnlab.training", "rnnlab.grading"} | MODELS | BELOW_CELLS \
            | IN_KERNEL | STUDENT_PROCESS:
        assert name in GRAPH, f"{name} is named by a layering rule but has no file under rnnlab/"
    assert {i.imported for i in GRAPH["rnnlab.modules"]} >= {"rnnlab.cells", "rnnlab.recurrence"}
    assert "rnnlab.grading.checks.hidden" in {i.imported for i in GRAPH["rnnlab.grading.checks.calling"] if i.deferred}
    assert {"rnnlab.grading.checks", "rnnlab.grading.checks.recurrent", "rnnlab.grading.checks.mistakes"} <= IN_KERNEL
    assert COMMAND in GRAPH and SHARED <= set(GRAPH)
    assert "rnnlab.grading.messages" in {i.imported for i in GRAPH["rnnlab.grading.command.report"]}


def test_cells_imports_nothing_above_it():
    assert_none(cells_violations(GRAPH))


def test_the_core_never_imports_grading():
    assert_none(core_violations(GRAPH))


def test_in_kernel_checks_never_import_nbgrader():
    assert_none(in_kernel_violations(GRAPH))


def test_tasks_imports_neither_models_nor_training():
    assert_none(tasks_violations(GRAPH))


def test_the_student_process_modules_import_only_the_standard_library():
    assert_none(student_process_violations(GRAPH))


def test_the_command_imports_nothing_of_the_checks_but_the_message_format():
    assert_none(command_violations(GRAPH))


def _code_of(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
            for cell in cells if cell["cell_type"] == "code"]


def test_the_notebooks_import_only_in_kernel_grading_modules():
    """IN_KERNEL is what the exercises' kernels load: every grading module their cells import is in it."""
    notebooks = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    assert notebooks, "no notebooks under solutions/"
    imported = {}
    for notebook in notebooks:
        for source in _code_of(notebook):
            for node in ast.walk(ast.parse(source, filename=str(notebook))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in GRAPH else node.module
                             for alias in node.names]
                else:
                    continue
                for name in names:
                    if _under(name, "rnnlab.grading"):
                        imported.setdefault(name, notebook.relative_to(ROOT).as_posix())
    assert imported, "the notebooks import nothing from rnnlab.grading: the reader is broken"
    outside = {name: where for name, where in imported.items() if name not in IN_KERNEL}
    assert outside == {}, f"notebooks import grading modules that are not in-kernel ones: {outside}"


# --- the checker catches what it is meant to catch ---------------------------------------

FAKE = {
    "rnnlab/__init__.py": "from . import cells\n",
    "rnnlab/errors.py": "",
    "rnnlab/_checks.py": "from .errors import ShapeError\n",
    "rnnlab/cells.py": "import numpy\nfrom ._checks import describe\nfrom .helpers import go\n",
    "rnnlab/helpers.py": "from . import recurrence\n",
    "rnnlab/recurrence.py": "from .cells import step\n",
    "rnnlab/stats.py": "def report():\n    from rnnlab.grading import checks\n",
    "rnnlab/tasks.py": "from ._checks import describe\nfrom . import sampling\n",
    "rnnlab/sampling.py": "if True:\n    import rnnlab.training\n",
    "rnnlab/training.py": "from .tasks import Task\n",
    "rnnlab/grading/__init__.py": "",
    "rnnlab/grading/checks.py": "from . import running\n",
    "rnnlab/grading/running.py": "def hidden():\n    from .hidden import CASES\n",
    "rnnlab/grading/hidden.py": "def later():\n    from nbgrader.api import Gradebook\n",
    "rnnlab/grading/report.py": "import nbgrader\n",
    "rnnlab/grading/wire.py": "import json\nimport numpy\n\ndef decode():\n    import torch\n",
    "rnnlab/grading/messages.py": "",
    "rnnlab/grading/command/__init__.py": "",
    "rnnlab/grading/command/calibration.py": "from ..messages import NAMED_MISTAKE\n\ndef cause():\n"
                                             "    from ..running import CheckFailed\n",
}


def fake_package(tmp_path, changes=None):
    for name, text in {**FAKE, **(changes or {})}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return read_imports(tmp_path)


KERNEL = frozenset({"rnnlab.grading.checks", "rnnlab.grading.running", "rnnlab.grading.hidden"})


def test_the_checker_reports_each_violation_with_its_file_and_line(tmp_path):
    graph = fake_package(tmp_path)
    assert cells_violations(graph) == [
        "rnnlab/cells.py:3: rnnlab.cells imports rnnlab.helpers",
        "rnnlab/helpers.py:1: rnnlab.helpers imports rnnlab.recurrence; "
        "rnnlab/cells.py:3: rnnlab.cells imports rnnlab.helpers",
    ]
    assert core_violations(graph) == ["rnnlab/stats.py:2: rnnlab.stats imports rnnlab.grading.checks (inside a function)"]
    kernel = in_kernel_violations(graph, in_kernel=KERNEL)
    assert len(kernel) == 1 and kernel[0].startswith(
        "rnnlab/grading/hidden.py:2: rnnlab.grading.hidden imports nbgrader.api (inside a function)")
    assert tasks_violations(graph) == [
        "rnnlab/sampling.py:2: rnnlab.sampling imports rnnlab.training; "
        "rnnlab/tasks.py:2: rnnlab.tasks imports rnnlab.sampling"]
    assert student_process_violations(graph, names={"rnnlab.grading.wire"}) == [
        "rnnlab/grading/wire.py:2: rnnlab.grading.wire imports numpy"]
    assert command_violations(graph) == [
        "rnnlab/grading/command/calibration.py:4: rnnlab.grading.command.calibration imports "
        "rnnlab.grading.running (inside a function)"]


def test_the_checker_follows_parent_packages_and_leaves_of_the_kernel_set(tmp_path):
    graph = fake_package(tmp_path, {
        "rnnlab/grading/hidden.py": "from .report import summary\n",
        "rnnlab/__init__.py": "from . import cells, progress\n",
        "rnnlab/progress.py": "import nbgrader.utils\n",
    })
    kernel = in_kernel_violations(graph, in_kernel=KERNEL)
    assert any("reaches rnnlab.grading.report, which is not an in-kernel module" in v for v in kernel), kernel
    assert any(v.startswith("rnnlab/grading/report.py:1: rnnlab.grading.report imports nbgrader") for v in kernel)
    assert any(v.startswith("rnnlab/progress.py:1: rnnlab.progress imports nbgrader.utils") for v in kernel)


def test_the_checker_passes_a_clean_package(tmp_path):
    graph = fake_package(tmp_path, {
        "rnnlab/cells.py": "import numpy\nfrom ._checks import describe\n",
        "rnnlab/stats.py": "import math\n",
        "rnnlab/sampling.py": "import numpy\n",
        "rnnlab/grading/hidden.py": "CASES = ()\n",
        "rnnlab/grading/wire.py": "import json\n\ndef decode():\n    import numpy\n",
        "rnnlab/grading/command/calibration.py": "from ..messages import NAMED_MISTAKE\n",
    })
    assert cells_violations(graph) == []
    assert core_violations(graph) == []
    assert in_kernel_violations(graph, in_kernel=KERNEL) == []
    assert tasks_violations(graph) == []
    assert student_process_violations(graph, names={"rnnlab.grading.wire"}) == []
    assert command_violations(graph) == []

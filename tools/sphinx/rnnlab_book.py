"""Sphinx extension of the rnnlab book: notebook downloads and the API reference.

Jupyter Book loads it through ``sphinx: local_extensions`` in ``_config.yml``.

* Every chapter that MyST-NB executed is offered as an ``.ipynb`` with its outputs: the
  executed notebook MyST-NB writes to ``_build/jupyter_execute/`` is copied next to the
  page sources (``_build/html/_sources/``), and the page's context gets ``ipynb_source``,
  which sphinx-book-theme's download menu turns into an ".ipynb" entry.
  Two details of MyST-NB 1.4 would spoil that notebook, and are mended here: when a
  chapter comes from the execution cache, the notebook it writes has no outputs
  (:func:`keep_cached_outputs`), and it merges a cell's stream outputs for the page
  (``nb_merge_streams``) by editing them in place, which would leave each printed line
  twice in the notebook (:func:`merge_streams_of_a_copy`).
* The directive ``rnnlab-api`` writes the API reference of the package: a table of the
  names ``rnnlab`` exports, then every public module (no component of its dotted name
  starts with ``_``) with the functions, classes and data it defines, by autodoc. The
  modules are found when the book is built, so a module or name added to the package
  appears without editing the page. A cross-reference in a docstring to a name as
  ``import rnnlab`` exports it (``rnnlab.train``), or to a bare name of the package
  (``History``), leads to the place where that object is documented.
* A docstring whose reStructuredText is broken does not fail the book's build (the
  package's authors edit docstrings more often than the book): its warnings are listed
  in ``_build/api-docstring-problems.txt`` instead, and ``tests/test_book.py`` fails on
  that list, naming each docstring.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import pkgutil
import shutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PACKAGE = "rnnlab"
PROBLEMS = "api-docstring-problems.txt"   # next to html/ in the build folder


# --- notebook downloads ----------------------------------------------------------------


def executed_notebook(app, docname: str) -> Path:
    """Where MyST-NB writes the executed notebook of a page (see myst_nb.sphinx_ext)."""
    return Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"


def merge_streams_of_a_copy():
    """Make MyST-NB's stream merging leave the notebook's own outputs untouched.

    ``myst_nb.core.utils.coalesce_streams`` appends later stream outputs to the first one
    of the same name, in the notebook that MyST-NB then writes to ``jupyter_execute/``;
    merging a copy gives the page the same merged output and the notebook its original
    outputs.
    """
    from myst_nb.core import render, utils

    def coalesce_a_copy(outputs):
        return utils.coalesce_streams(copy.deepcopy(outputs))

    render.coalesce_streams = coalesce_a_copy


def keep_cached_outputs():
    """Make MyST-NB write the outputs it took from the cache into the notebook it saves.

    ``myst_nb.sphinx_`` saves the notebook object it handed to ``create_client``; on a
    cache hit the client works on a new notebook merged from the cache and the saved one
    keeps no outputs. Here the merged cells are put back into the object that is saved.
    """
    from contextlib import contextmanager

    from myst_nb import sphinx_

    create_client = sphinx_.create_client

    @contextmanager
    def create_client_keeping_outputs(notebook, *args, **kwargs):
        with create_client(notebook, *args, **kwargs) as client:
            yield client
        if client.notebook is not notebook:
            notebook.cells = client.notebook.cells

    sphinx_.create_client = create_client_keeping_outputs


def add_notebook_to_context(app, pagename, templatename, context, doctree):
    """Offer the page's executed notebook in the download menu, when it has one."""
    if executed_notebook(app, pagename).exists():
        context["ipynb_source"] = f"{pagename}.ipynb"


def copy_notebooks(app, exception):
    """Put every executed notebook under _sources/ in the HTML output, where the
    download menu's link points."""
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    for notebook in executed.rglob("*.ipynb"):
        docname = notebook.relative_to(executed).with_suffix("").as_posix()
        if docname in app.env.found_docs:
            target = Path(app.outdir) / "_sources" / f"{docname}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook, target)


# --- the API reference ---------------------------------------------------------------


def public_modules(package: str = PACKAGE) -> list[str]:
    """The package and its modules whose dotted names have no part starting with ``_``."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def defined_names(module) -> list[str]:
    """The public names a module defines itself: its ``__all__`` where it has one (less
    what it imports from elsewhere), otherwise its functions and classes whose names do
    not start with ``_``."""
    if hasattr(module, "__all__"):
        def defined_here(value):   # data (a constant) belongs to the module that lists it
            if inspect.isfunction(value) or inspect.isclass(value):
                return value.__module__ == module.__name__
            return not inspect.ismodule(value)
        return [name for name in module.__all__ if defined_here(getattr(module, name))]
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
                  and value.__module__ == module.__name__)


def exported_table(package: str = PACKAGE) -> list[str]:
    """reST lines: a table of what ``import rnnlab`` exports, each name linked to the
    place where it is documented, with the first line of its docstring."""
    root = importlib.import_module(package)
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "",
             "   * - name", "     - what it is"]
    for name in root.__all__:
        value = getattr(root, name)
        if inspect.ismodule(value):
            target, role = value.__name__, "mod"
        else:
            target = f"{value.__module__}.{value.__qualname__}"
            role = "class" if inspect.isclass(value) else "func"
        summary = (inspect.getdoc(value) or "").split("\n\n")[0].replace("\n", " ")
        lines += [f"   * - :py:{role}:`{package}.{name} <{target}>`", f"     - {summary}"]
    return lines


def canonical_name(target: str, module: str | None) -> str | None:
    """The dotted name under which autodoc documents what ``target`` names: ``target``
    looked up in the docstring's module, then from the package's top level, then as a
    full path; None when nothing in the package has that name."""
    candidates = [f"{module}.{target}"] if module else []
    candidates += [target, f"{PACKAGE}.{target}"]
    for candidate in candidates:
        parts = candidate.split(".")
        if parts[0] != PACKAGE:
            continue
        for split in range(len(parts), 0, -1):   # the longest importable module prefix
            try:
                value = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for attribute in parts[split:]:
                    value = getattr(value, attribute)
            except AttributeError:
                break
            if inspect.ismodule(value):
                return value.__name__
            if inspect.isclass(value) or inspect.isfunction(value):
                return f"{value.__module__}.{value.__qualname__}"
            break
    return None


def resolve_package_names(app, env, node, contnode):
    """missing-reference: send ``rnnlab.train`` to ``rnnlab.training.train``."""
    if node.get("refdomain") != "py":
        return None
    target = canonical_name(node["reftarget"], node.get("py:module"))
    if target is None or target == node["reftarget"]:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", target, node, contnode)


class DocstringProblems(logging.Filter):
    """Takes the warnings about docstrings out of Sphinx's warning stream (so ``-W`` does
    not stop the build on them) and keeps them for :func:`write_docstring_problems`."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.api_read = False

    def filter(self, record: logging.LogRecord) -> bool:
        where = str(getattr(record, "location", None) or "")
        if "docstring of" not in where:
            return True
        self.found.append(f"{where}: {record.getMessage()}")
        return False


def catch_docstring_problems(app) -> DocstringProblems:
    """Put a :class:`DocstringProblems` first on Sphinx's warning handler."""
    problems = DocstringProblems()
    for handler in logging.getLogger("sphinx").handlers:
        if handler.level == logging.WARNING:
            handler.filters.insert(0, problems)
    return problems


def write_docstring_problems(app, exception):
    """Write the docstring warnings of this build (when it read the API page) to a file."""
    problems = app.rnnlab_docstring_problems
    if exception is None and (problems.api_read or problems.found):
        path = Path(app.outdir).parent / PROBLEMS
        path.write_text("".join(f"{line}\n" for line in problems.found), encoding="utf-8")
        if problems.found:
            logging.getLogger("sphinx.rnnlab_book").info(
                f"{len(problems.found)} docstring problems of the API reference: see {path}")


class RnnlabApi(SphinxDirective):
    """``rnnlab-api``: the whole API reference of the package, found at build time."""

    def run(self):
        self.env.app.rnnlab_docstring_problems.api_read = True
        lines = exported_table() + [""]
        for name in public_modules():
            module = importlib.import_module(name)
            members = defined_names(module)
            code = [m for m in members if inspect.isfunction(getattr(module, m)) or inspect.isclass(getattr(module, m))]
            title = f"``{name}``"
            lines += [title, "-" * len(title), "", f".. automodule:: {name}"]
            if code:   # every public function and class, with or without a docstring
                lines += [f"   :members: {', '.join(code)}", "   :undoc-members:"]
            lines.append("")
            # constants: autodoc's automodule skips those without a doc-comment
            lines += [line for data in members if data not in code
                      for line in (f".. autodata:: {name}.{data}", "")]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="rnnlab-api"), container)
        return container.children


def setup(app):
    keep_cached_outputs()
    merge_streams_of_a_copy()
    app.connect("html-page-context", add_notebook_to_context, priority=400)
    app.connect("build-finished", copy_notebooks)
    app.add_directive("rnnlab-api", RnnlabApi)
    app.connect("missing-reference", resolve_package_names)
    app.connect("builder-inited", lambda app: setattr(app, "rnnlab_docstring_problems",
                                                      catch_docstring_problems(app)))
    app.connect("build-finished", write_docstring_problems)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

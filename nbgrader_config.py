"""nbgrader configuration of the rnnlab course (nbgrader 0.9.6), read from the repository root.

solutions/<assignment>/ holds the instructor's notebooks (nbgrader's "source"), exercises/
the student versions that `nbgrader generate_assignment` writes from them (the "release",
committed). Everything else keeps nbgrader's defaults: submitted/, autograded/,
feedback/ and gradebook.db are created here and ignored by git. nbgrader runs `alembic`:
put the virtual environment's bin/ on PATH (`make` does).
Regenerate exercises/ with `.venv/bin/python tools/build_exercises.py`.
"""

import os
import sys
import warnings

from jupyter_core.paths import jupyter_runtime_dir
from sqlalchemy.exc import SAWarning

# nbgrader 0.9.6's gradebook API trips this SQLAlchemy warning for every new submission.
warnings.filterwarnings("ignore", message="Object of type <Submitted", category=SAWarning)

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "rnnlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Kernels talk to nbgrader over Unix sockets (in Jupyter's runtime folder) on Linux: over
# TCP, ipykernel warns on every start that the connection is not encrypted. A socket's
# path must fit in 108 bytes: with a longer runtime folder path, TCP stays.
if sys.platform.startswith("linux") and len(jupyter_runtime_dir()) < 80:
    os.makedirs(jupyter_runtime_dir(), mode=0o700, exist_ok=True)
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = os.path.join(jupyter_runtime_dir(), "nbgrader-kernel")

# A limit per cell, in seconds: the longest cell (training in gru_vs_lstm) takes well under it.
c.Execute.timeout = 60

# A test cell a student deletes comes back from the gradebook when grading.
c.OverwriteCells.add_missing_cells = True

# nbgrader's own sanitizing steps, with two of ours: two cells with one grade id (an answer
# cell split in two, a test cell pasted twice) are graded at the last copy, the others run
# as ordinary cells (nbgrader's own DeduplicateIds leaves empty metadata that
# add_missing_cells cannot read); and an OverwriteCells that warns about edited locked
# cells only, not about every test cell released without its hidden tests (both in
# rnnlab/grading/command/preprocessors.py).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "rnnlab.grading.command.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "rnnlab.grading.command.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback shows scores and the failed tests' messages, never the hidden tests' source
# (rnnlab/grading/command/preprocessors.py; `python -m rnnlab.grading feedback` does the same).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "rnnlab.grading.command.preprocessors.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "rnnlab.grading.command.preprocessors.ReadableFeedback",
]

# Formulas on the formgrader's grading page and in feedback files render offline: the
# templates in rnnlab/nbconvert_templates/ replace nbconvert's MathJax-from-a-CDN macro
# with MathJax 3 inlined in the page (rnnlab/mathjax.py). Found without importing rnnlab,
# so that loading this file stays cheap.
import importlib.util as _util  # noqa: E402
import os as _os  # noqa: E402

c.HTMLExporter.extra_template_basedirs = [
    _os.path.join(_util.find_spec("rnnlab").submodule_search_locations[0], "nbconvert_templates"),
    _os.path.join(_util.find_spec("nbgrader").submodule_search_locations[0],
                  "server_extensions", "formgrader", "templates"),
]
c.HTMLExporter.filters = {"inline_mathjax": "rnnlab.mathjax.inline_mathjax"}

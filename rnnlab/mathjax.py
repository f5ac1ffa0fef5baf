"""MathJax 3 inlined into nbgrader's HTML pages, so formulas render with no network.

nbgrader 0.9.6 renders the formgrader's grading page and the students' feedback files
with nbconvert templates that load MathJax 2.7.7 from a CDN (the ``mathjax()`` macro of
nbconvert's ``mathjax.html.j2``). Offline, formulas then stay as TeX source. The course's
``nbgrader_config.py`` puts ``rnnlab/nbconvert_templates/classic/mathjax.html.j2``
ahead of nbconvert's own (nbgrader's "formgrade" and "feedback" templates both build on
"classic") and registers :func:`inline_mathjax` as a Jinja filter; that macro calls the
filter, which returns MathJax 3's ``tex-svg.js`` inside the page itself. SVG output needs
no font files, so the page is self-contained: a feedback file renders its formulas when
opened from disk anywhere, and the formgrader's page makes no request for MathJax at all.
The price is about 2 MB of script in each page.

The script is read from the npm copy that ``make book`` publishes with the book
(``_extra/_static/mathjax``), or from ``node_modules/mathjax/es5``, in the repository
that holds this package.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import markupsafe

REPOSITORY = Path(__file__).resolve().parents[1]
SEARCHED = (REPOSITORY / "_extra" / "_static" / "mathjax", REPOSITORY / "node_modules" / "mathjax" / "es5")
SCRIPT = "tex-svg.js"

# MathJax 3's configuration: the delimiters nbconvert leaves in Markdown cells, AMS
# numbering, and one cache of glyph shapes per page.
CONFIG = {
    "tex": {"inlineMath": [["$", "$"], ["\\(", "\\)"]], "displayMath": [["$$", "$$"], ["\\[", "\\]"]],
            "processEscapes": True, "processEnvironments": True, "tags": "ams"},
    "svg": {"fontCache": "global"},
    "options": {"ignoreHtmlClass": "tex2jax_ignore", "processHtmlClass": "tex2jax_process"},
}


def mathjax_script() -> Path:
    """The path of MathJax 3's ``tex-svg.js`` in this repository.

    Raises FileNotFoundError naming the folders searched and how to fill them.
    """
    for folder in SEARCHED:
        if (folder / SCRIPT).is_file():
            return folder / SCRIPT
    searched = ", ".join(str(folder) for folder in SEARCHED)
    raise FileNotFoundError(f"MathJax 3 ({SCRIPT}) is in none of {searched}: run `make book` (or "
                            f"`npm install` in {REPOSITORY}) to install it from npm")


@lru_cache(maxsize=1)
def _inline_html(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    if "</script" in source.lower():   # would end the inline <script> early
        raise ValueError(f"{path} contains '</script' and cannot be inlined in a page")
    return (f"<script>window.MathJax = {json.dumps(CONFIG)};</script>\n"
            f"<script>{source}</script>")


def inline_mathjax(_value=None) -> markupsafe.Markup:
    """The HTML that loads MathJax 3 inline and typesets the page: a Jinja filter.

    The value filtered is ignored (a macro calls ``{{ "" | inline_mathjax }}``). When
    MathJax is missing, the page says so in a visible note instead, and formulas show
    as TeX; the page itself still renders, so grading can go on.
    """
    try:
        return markupsafe.Markup(_inline_html(mathjax_script()))
    except FileNotFoundError as error:
        note = markupsafe.escape(f"Formulas are shown as TeX: {error}")
        return markupsafe.Markup(f'<p class="alert alert-warning" role="alert">{note}</p>')

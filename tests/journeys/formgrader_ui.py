"""What an instructor does in nbgrader's formgrader, opened from JupyterLab's Nbgrader menu.

The formgrader is a set of server-rendered pages with Backbone tables, shown by Lab in an
iframe. These helpers open it the way the README tells instructors to (Nbgrader ▸
Formgrader), follow its links, and read its tables as a person reads them: one dict per
row, keyed by the column headers.
"""

from __future__ import annotations

import re

from .notebook_ui import menu
from .servers import Server

# nbgrader 0.9.6's submission page loads MathJax 2.7.7 from this CDN (nbconvert's default
# `mathjax()` macro); offline the script fails, formulas stay as TeX, grading still works.
NBGRADER_MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/"


def open_formgrader(page, server: Server):
    """Open JupyterLab, choose Nbgrader ▸ Formgrader; return the frame showing the formgrader."""
    page.goto(server.url("lab"))
    menu(page, "Nbgrader", "nbgrader:open-formgrader")
    return page.frame_locator('iframe[src*="formgrader"]')


def follow(frame, page_path: str, text: str | None = None) -> None:
    """Click the link to ``/formgrader/<page_path>`` (whose text is ``text`` when given).

    Links are found by address: a page and the next one can show links with the same
    text (the assignment "bptt" and its notebook "bptt"), and a click on the old page's
    link while the next one loads would go back.
    """
    link = frame.locator(f'a[href$="/formgrader/{page_path}"]')
    if text is not None:
        link = link.filter(has_text=re.compile(f"^\\s*{re.escape(text)}\\s*$"))
    link.first.click()


def table(frame, shown: str) -> list[dict[str, str]]:
    """The rows of the page's main table as {column header: cell text}, once a cell reading
    ``shown`` is there (the tables fill in after the page loads)."""
    frame.locator("#main-table tr td", has_text=re.compile(f"^\\s*{re.escape(shown)}\\s*$")).first.wait_for()
    headers = [h.strip() for h in frame.locator("table thead th").all_inner_texts()]
    rows = []
    for row in frame.locator("#main-table tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        rows.append(dict(zip(headers, cells)))
    return rows


def score(text: str) -> tuple[float, float]:
    """A score as the formgrader writes it, "7 / 10", as (7.0, 10.0)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*/\s*([\d.]+)\s*", text)
    assert match, f"expected a score like '7 / 10', the page shows {text!r}"
    return float(match.group(1)), float(match.group(2))

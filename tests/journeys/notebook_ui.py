"""What a student does with a notebook in JupyterLab 4 or Notebook 7, done through the page.

Both front ends show a notebook with the same widgets (``.jp-Notebook``, ``.jp-CodeCell``,
CodeMirror 6 editors, a menu bar with Run ▸ Run All Cells), so one set of helpers serves
both. The kernel's state is read from the server's ``/api/sessions`` (the toolbar shows
"idle" before any kernel exists); everything a test asserts about results is read from
the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .servers import Server, wait_until

KERNEL_TIMEOUT = 180   # s: kernel start and `import torch` on a loaded machine
RUN_ALL_TIMEOUT = 300  # s: every cell of an exercise notebook
SAVE_TIMEOUT = 60      # s
VALIDATE_TIMEOUT = 300  # s: nbgrader's Validate runs the whole notebook in a new kernel


def page_sleep(page):
    """A sleep (in seconds) that keeps Playwright serving its events while a test polls."""
    return lambda seconds: page.wait_for_timeout(seconds * 1000)


def kernel_state(server: Server, path: str) -> str | None:
    """The execution state of the kernel of the notebook at ``path``, or None when it has none."""
    for session in server.api("api/sessions"):
        if session.get("path") == path and session.get("kernel"):
            return session["kernel"].get("execution_state")
    return None


def open_notebook(browser, server: Server, path: str) -> None:
    """Open the front end's start page, double-click through the file browser to ``path``
    and wait (bounded) until its cells are shown and its kernel is idle.

    JupyterLab opens the notebook in a tab of its own window; Notebook 7 opens it in a new
    browser tab, which becomes ``browser.page``.
    """
    page = browser.page
    page.goto(server.url("lab" if server.kind == "lab" else "tree"))
    *folders, name = path.split("/")

    def item(text):
        return page.locator(".jp-DirListing-item", has=page.locator(
            ".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(text)}$")))

    for folder in folders:
        item(folder).dblclick()
    item(name).wait_for()
    browser.shot("file-browser")
    if server.kind == "lab":
        item(name).dblclick()
    else:
        with page.context.expect_page() as opened:
            item(name).dblclick()
        browser.page = page = opened.value
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(state="visible")
    wait_until(lambda: kernel_state(server, path) == "idle", KERNEL_TIMEOUT,
               f"the kernel of {path} to start and be idle", sleep=page_sleep(page))


def menu(page, title: str, command: str) -> None:
    """Choose a menu bar entry, e.g. ``menu(page, "Run", "runmenu:run-all")``."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{re.escape(title)}$")).click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def menu_entries(page, title: str, shot=None) -> list[str]:
    """The labels of a menu bar menu's entries, [] without that menu. The menu is opened,
    read, shown to ``shot()`` (a screenshot) when given, and closed."""
    item = page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{re.escape(title)}$"))
    if not item.count():
        return []
    item.click()
    page.locator(".lm-Menu-content").first.wait_for()
    labels = [text.strip() for text in page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_inner_texts()]
    if shot is not None:
        shot()
    page.keyboard.press("Escape")
    return [label for label in labels if label]


def toggle_left_sidebar(page) -> None:
    """JupyterLab's View ▸ Show Left Sidebar (Ctrl+B), from command mode."""
    page.keyboard.press("Escape")
    page.keyboard.press("Control+b")
    page.wait_for_timeout(500)


def is_dirty(page) -> bool:
    """Whether the notebook's tab shows unsaved changes (Lab's tab, Notebook 7's title)."""
    return page.locator(".jp-mod-dirty").count() > 0


def validate(page) -> list[tuple[str, str]]:
    """Click nbgrader's Validate button; wait (bounded) for its dialog; return (cell source, error) per failed cell.

    The dialog lists each failed cell as two ``.jp-RenderedText`` blocks: its source, then the error.
    """
    page.locator(".jp-ToolbarButtonComponent-label", has_text=re.compile("^Validate$")).click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    dialog.wait_for(timeout=VALIDATE_TIMEOUT * 1000)
    blocks = dialog.locator(".jp-RenderedText pre").all_inner_texts()
    return list(zip(blocks[0::2], blocks[1::2]))


def prompts(page) -> list[str]:
    """The execution prompts of the code cells, in order: "[ ]:", "[*]:", "[3]:", ..."""
    return [text.strip() for text in page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]


def run_all(page, server: Server, path: str) -> None:
    """Run ▸ Run All Cells, then wait (bounded) until no cell is queued or running and the kernel is idle.

    After an error the front end stops: the cells below it keep an empty prompt.
    """
    before = prompts(page)
    menu(page, "Run", "runmenu:run-all")

    def finished():
        now = prompts(page)
        return now != before and not any("*" in p for p in now) and kernel_state(server, path) == "idle"

    def finished_twice():  # the kernel is briefly idle between two cells
        if not finished():
            return False
        page.wait_for_timeout(500)
        return finished()

    wait_until(finished_twice, RUN_ALL_TIMEOUT, f"Run All Cells of {path} to finish", sleep=page_sleep(page))


@dataclass
class CodeCell:
    """A code cell as the page shows it; ``has_error`` is a traceback or anything else on
    stderr (red on the page, and a test cell nbgrader would score 0)."""

    locator: object
    prompt: str
    output: str
    has_error: bool
    error: str = ""  # the text of the red box, when there is one


def code_cells(page) -> list[CodeCell]:
    """Every code cell of the open notebook, read from the page."""
    cells = []
    for locator in page.locator(".jp-Notebook .jp-CodeCell").all():
        red = locator.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        cells.append(CodeCell(
            locator=locator,
            prompt=locator.locator(".jp-InputArea-prompt").inner_text().strip(),
            output=locator.locator(".jp-OutputArea").inner_text() if locator.locator(".jp-OutputArea").count() else "",
            has_error=red.count() > 0,
            error="\n".join(red.all_inner_texts()),
        ))
    return cells


def replace_source(page, cell: CodeCell, text: str) -> None:
    """Select everything in the cell's editor and paste ``text`` (typing would auto-indent)."""
    cell.locator.scroll_into_view_if_needed()
    cell.locator.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")  # back to command mode, as after editing


def save(page, server: Server, path: str, expected) -> None:
    """Control+s, then wait (bounded) until the file on disk satisfies ``expected(file_path)``."""
    page.keyboard.press("Control+s")
    wait_until(lambda: expected(server.root / path), SAVE_TIMEOUT, f"{path} to be saved",
               sleep=page_sleep(page))

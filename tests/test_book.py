"""The book: its sources, its build, and the built pages as a reader's browser shows them.

The source checks are fast and need nothing built. The build checks and the browser
check read ``_build/html``, which ``make book`` writes (``make test`` runs it first).
The browser check drives Debian's chromium through Playwright, never a downloaded
browser, opens every built page from ``file://`` and asserts that math is typeset, that
every image loaded, that no request leaves ``file://`` and that the console shows no
error beyond the theme's known noise. It saves a full-page screenshot of every page to
``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from journeys.browser import CHROMIUM_ARGS, chromium_path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "test-artifacts"

# Two console messages every sphinx-book-theme page prints (NOTES-stack.md): not ours.
THEME_NOISE = (re.compile(r"THEBE_JS_URL'? has already been declared"), re.compile(r"Got invalid theme mode"))

# Generated Sphinx pages that are not chapters.
NOT_CHAPTERS = {"genindex.html", "search.html"}


# --- the sources -------------------------------------------------------------------


def toc_files() -> list[str]:
    """Every document named in _toc.yml (root first), as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return found


def source_of(doc: str) -> Path:
    """The source file of a toc entry: a MyST Markdown file (or a notebook)."""
    for suffix in (".md", ".ipynb"):
        path = ROOT / f"{doc}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"{doc}: neither {doc}.md nor {doc}.ipynb exists")


def strip_code(text: str) -> str:
    """The Markdown text of a source without its fenced blocks and inline code."""
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1\s*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def has_math(doc: str) -> bool:
    """Whether a source contains math ($...$, $$...$$ or a math directive/role)."""
    text = source_of(doc).read_text()
    if re.search(r"^```\{math\}", text, flags=re.M) or "{math}`" in text:
        return True
    return re.search(r"\$[^$\n]+\$", strip_code(text)) is not None


def test_toc_is_a_jupyter_book_whose_every_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc.get("format") == "jb-book", f"_toc.yml must have format jb-book, got {toc.get('format')!r}"
    missing = []
    for doc in toc_files():
        try:
            source_of(doc)
        except FileNotFoundError as error:
            missing.append(str(error))
    assert not missing, "chapters listed in _toc.yml that do not exist:\n" + "\n".join(missing)


def test_bibliography_page_comes_last_in_the_toc():
    files = toc_files()
    assert files[-1] == "book/references", (
        f"book/references (the one bibliography of the book) must be the last toc entry, "
        f"got {files[-1]!r} last: add new chapters above it"
    )


def test_book_sources_store_no_outputs_and_declare_the_python3_kernel():
    problems = []
    for path in sorted((ROOT / "book").rglob("*")):
        if path.suffix == ".ipynb":
            problems.append(f"{path.relative_to(ROOT)}: chapters are MyST Markdown, not .ipynb")
        if path.suffix != ".md":
            continue
        text = path.read_text()
        if "```{code-cell}" not in text:
            continue
        match = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
        front = yaml.safe_load(match.group(1)) if match else {}
        kernel = (front or {}).get("kernelspec", {}).get("name")
        if kernel != "python3":
            problems.append(f"{path.relative_to(ROOT)}: front matter must declare kernelspec name python3, got {kernel!r}")
        if (front or {}).get("jupytext", {}).get("text_representation", {}).get("format_name") != "myst":
            problems.append(f"{path.relative_to(ROOT)}: front matter must declare the jupytext myst format")
        # A MyST notebook can only carry outputs through glue-free pasted output blocks.
        for marker in ("<div class=\"cell_output", "```{output}", "image/png;base64"):
            if marker in text:
                problems.append(f"{path.relative_to(ROOT)}: contains a stored output ({marker!r})")
    assert not problems, "\n".join(problems)


def test_references_bib_has_no_duplicate_keys():
    text = (ROOT / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{\s*([^,\s]+)\s*,", text, flags=re.M)
    assert keys, "references.bib has no entries"
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicates, f"references.bib has duplicate keys: {duplicates}"


def test_every_cited_key_is_in_references_bib():
    text = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{\s*([^,\s]+)\s*,", text, flags=re.M))
    unknown = []
    for doc in toc_files():
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", source_of(doc).read_text()):
            unknown += [f"{doc}: {key.strip()}" for key in group.split(",") if key.strip() not in keys]
    assert not unknown, "citations with no entry in references.bib:\n" + "\n".join(unknown)


# --- the build ---------------------------------------------------------------------
# These read _build/html, which `make book` writes: they are marked slow so that
# `make test-fast` (no book build) leaves them out; `make test` builds the book first.


def built_html() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML} has no built book: run `make book` first (`make test` does)")
    return HTML


def page_of(doc: str) -> Path:
    return built_html() / f"{doc}.html"


@pytest.mark.slow
def test_every_toc_entry_was_built():
    missing = [doc for doc in toc_files() if not page_of(doc).exists()]
    assert not missing, f"toc entries with no page in {HTML}: {missing}"


@pytest.mark.slow
def test_index_redirects_to_the_root_page():
    index = (built_html() / "index.html").read_text()
    root = toc_files()[0]
    assert f"{root}.html" in index, f"_build/html/index.html does not lead to {root}.html"


@pytest.mark.slow
def test_chapters_that_plot_have_figures_and_no_error_output():
    problems = []
    for doc in toc_files():
        html = page_of(doc).read_text()
        source = source_of(doc).read_text()
        if re.search(r"plt\.|plot_grad_norms|\.plot\(", source) and not re.search(r"<img [^>]*src=\"[^\"]+\.(png|svg)\"", html):
            problems.append(f"{doc}: plots in its source but its page has no figure")
        # MyST-NB renders error and stderr outputs in these classes: a warning or a
        # traceback on a published page is a defect even when the build passes.
        for kind in re.findall(r'class="output (traceback|stderr)', html):
            problems.append(f"{doc}: the page shows a {kind} output")
    assert not problems, "\n".join(problems)


# --- the browser -------------------------------------------------------------------


def browser_pages() -> list[Path]:
    """Every built page a reader can reach, except Sphinx's generated index and search."""
    pages = []
    for path in sorted(built_html().rglob("*.html")):
        relative = path.relative_to(HTML)
        if relative.parts[0].startswith(("_", ".")) or relative.name in NOT_CHAPTERS:
            continue
        if 'http-equiv="Refresh"' in path.read_text():  # index.html only redirects
            continue
        pages.append(path)
    return pages


@contextmanager
def browser_context():
    """A Playwright context in Debian's chromium, with flags that keep it off the network."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=CHROMIUM_ARGS,
        )
        try:
            yield browser.new_context(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_renders_offline_with_math_and_images():
    pages = browser_pages()
    expected = {page_of(doc) for doc in toc_files()}
    assert expected <= set(pages), f"toc pages missing from the built site: {sorted(map(str, expected - set(pages)))}"
    math_pages = {page_of(doc) for doc in toc_files() if has_math(doc)}
    assert math_pages, "no source has math: the math check would test nothing"
    ARTIFACTS.mkdir(exist_ok=True)

    problems = []
    with browser_context() as context:
        for path in pages:
            name = str(path.relative_to(HTML))
            shot = ARTIFACTS / (name.replace("/", "__").removesuffix(".html") + ".png")
            problems += [f"{name}: {p}" for p in check_page(context, path, path in math_pages, shot)]
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_page_check_reports_what_is_broken(tmp_path):
    """The browser check itself: a clean page passes, a broken one is caught on every count."""
    clean = tmp_path / "clean.html"
    clean.write_text("<!doctype html><html><body><p>nothing to see</p></body></html>")
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!doctype html><html><head><script>console.error('boom')</script>"
        # never fetched: the check aborts every request that is not file://
        "<script src='http://127.0.0.1:9/never.js'></script></head>"
        "<body><span class='math'>\\(x^2\\)</span><img src='missing.png'></body></html>"
    )
    with browser_context() as context:
        assert check_page(context, clean, False, tmp_path / "clean.png") == []
        problems = check_page(context, broken, True, tmp_path / "broken.png")
    report = "\n".join(problems)
    for expected in ("MathJax did not load", "image did not load", "request left file://: http://127.0.0.1:9/",
                     "console error: boom"):
        assert expected in report, f"the check missed {expected!r}; it reported:\n{report}"


def check_page(context, path: Path, expect_math: bool, screenshot: Path) -> list[str]:
    """Open one page, save a full-page screenshot, and return what is wrong with it."""
    problems: list[str] = []
    outside: list[str] = []
    errors: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith("file://"):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    page = context.new_page()
    page.route("**/*", route)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.goto(path.as_uri(), wait_until="load")

    if expect_math:
        has_mathjax = page.evaluate("() => Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise)")
        if not has_mathjax:
            problems.append("its source has math but MathJax did not load")
        else:
            page.evaluate("() => MathJax.startup.promise")
            typeset = page.locator("mjx-container").count()
            raw = page.evaluate(
                "() => Array.from(document.querySelectorAll('.math')).filter("
                "e => !e.querySelector('mjx-container') && !e.matches('mjx-container')).length"
            )
            if typeset == 0:
                problems.append("its source has math but no mjx-container was typeset")
            if raw:
                problems.append(f"{raw} math element(s) left untypeset")
            tex_errors = page.locator("mjx-merror").all_inner_texts()
            problems += [f"MathJax could not typeset: {text}" for text in tex_errors]

    # Load every image now, not lazily when scrolled to, then ask whether each decoded.
    page.evaluate("() => document.querySelectorAll('img').forEach(img => { img.loading = 'eager'; })")
    page.wait_for_function("() => Array.from(document.images).every(img => img.complete)", timeout=30_000)
    broken = page.evaluate(
        "() => Array.from(document.images).filter(img => img.naturalWidth === 0).map(img => img.src)"
    )
    problems += [f"image did not load: {src}" for src in broken]

    page.screenshot(path=str(screenshot), full_page=True)
    page.close()

    problems += [f"request left file://: {url}" for url in outside]
    problems += [f"console error: {text}" for text in errors if not any(n.search(text) for n in THEME_NOISE)]
    return problems

"""Execute the book's chapters two at a time before `jupyter-book build` renders them.

Jupyter Book 1 executes the chapters one after the other. With ``execute_notebooks:
cache`` it first looks each chapter up in its jupyter-cache (``_build/.jupyter_cache``)
by a hash of the chapter's code cells, and only executes what it does not find there.
This script fills that cache first, running as many chapters side by side as the machine
has cores (each chapter's PyTorch runs on one thread), so the build afterwards only
renders. It uses jupyter-cache's own API and myst-nb's reader plugin, which is how
myst-nb itself reads and caches a chapter, so the hashes match; a chapter that fails
here is simply executed again by the build, which then reports its error as usual.

    .venv/bin/python tools/execute_book.py      # `make book` runs it before jupyter-book

Each chapter keeps its own per-cell limit (``mystnb: execution_timeout`` in its front
matter) or else the book's (``execute: timeout`` in ``_config.yml``), as in the build.
The longest chapters start first (by their last recorded execution time, else by size),
so that the two workers finish close together.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor
from myst_parser.config.main import read_topmatter
from sphinx_external_toc.parsing import parse_toc_yaml

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
READER = {"name": "myst_nb_md", "type": "plugin"}


def chapters(toc: Path) -> list[Path]:
    """Every page of the table of contents ``toc`` that has code cells, root first, as paths.

    The table is read by sphinx-external-toc, as Jupyter Book reads it.
    """
    paths = [ROOT / (name if name.endswith(".md") else name + ".md") for name in parse_toc_yaml(toc)]
    return [path for path in paths if path.is_file() and "{code-cell}" in path.read_text(encoding="utf-8")]


def page_timeout(path: Path, default: int) -> int:
    """The chapter's own ``mystnb: execution_timeout`` from its front matter (read by MyST's own reader)."""
    front = read_topmatter(path.read_text(encoding="utf-8")) or {}
    return int((front.get("mystnb") or {}).get("execution_timeout", default))


def last_runtime(cache, path: Path) -> float:
    """Seconds the chapter took when it was last cached, or its size in kB as a stand-in."""
    seconds = [record.data.get("execution_seconds") or 0.0 for record in cache.list_cache_records()
               if record.uri == str(path)]
    return max(seconds) if seconds else path.stat().st_size / 1000


def execute_one(pk: int, timeout: int) -> tuple[int, list[str], float]:
    """Execute one project notebook and cache it; returns (pk, the files that failed, seconds)."""
    started = time.perf_counter()
    result = load_executor("local-serial", get_cache(str(CACHE))).run_and_cache(
        filter_pks=[pk], timeout=timeout, allow_errors=False)
    return pk, result.excepted + result.errored, time.perf_counter() - started


def main() -> int:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    timeout = int(config.get("execute", {}).get("timeout", 300))
    cache = get_cache(str(CACHE))
    records = {cache.add_nb_to_project(str(path), read_data=READER).pk: path
               for path in chapters(ROOT / "_toc.yml")}
    stale = {record.pk for record in cache.list_unexecuted()}
    todo = sorted((pk for pk in records if pk in stale), key=lambda pk: -last_runtime(cache, records[pk]))
    if not todo:
        print("execute_book: every chapter is already in the cache")
        return 0
    workers = min(len(todo), os.cpu_count() or 1)
    print(f"execute_book: {len(todo)} chapter(s) to execute, {workers} at a time", flush=True)
    failed = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(execute_one, pk, page_timeout(records[pk], timeout)) for pk in todo]
        for future in as_completed(futures):
            pk, errors, seconds = future.result()
            name = records[pk].relative_to(ROOT)
            print(f"execute_book: {name} {'FAILED' if errors else 'done'} in {seconds:.0f} s", flush=True)
            failed += errors
    if failed:
        print("execute_book: the build executes these again and reports their errors: "
              + ", ".join(failed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

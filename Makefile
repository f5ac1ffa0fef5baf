# rnnlab: `make book` builds the HTML book, `make test` runs every test.
# Each target sets up what it needs itself (virtual environment, MathJax, browser).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX := _extra/_static/mathjax/tex-mml-chtml.js
BOOK_HTML := _build/html/index.html
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help setup book test test-fast system-deps benchmarks clean

help:
	@echo "make book   - set up .venv and MathJax, execute every chapter, write _build/html"
	@echo "make test   - set up everything (browser and sandbox too), build the book, run all tests"
	@echo "make test-fast - the package tests only, no book build"
	@echo "make benchmarks - print the speed figures of benchmarks/ (modules, grading)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# MathJax 3 from npm, published with the site so math renders with no network.
$(MATHJAX): package.json
	npm install --no-audit --no-fund --loglevel=error
	rm -rf _extra/_static/mathjax
	mkdir -p _extra/_static
	cp -r node_modules/mathjax/es5 _extra/_static/mathjax
	touch $@

# The chapters execute two at a time into Jupyter Book's cache first (tools/execute_book.py);
# the build then renders them, executing again only what failed there.
book: $(STAMP) $(MATHJAX) system-deps
	$(BIN)/python tools/execute_book.py
	$(BIN)/jupyter-book build -W -n --keep-going .

# Debian packages the book and the tests need (tools/system_deps.sh); installed when missing and we can.
system-deps:
	@bash tools/system_deps.sh

test: $(STAMP) system-deps book
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not browser and not slow and not book"

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/modules.py
	$(BIN)/python benchmarks/grading.py

clean:
	rm -rf _build _extra

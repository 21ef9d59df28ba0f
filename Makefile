# The book's two commands:  make book  (build the HTML book)   make test  (run every test)
# Both create .venv and install everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
JB_BUILD := jupyter-book build . -W -n --keep-going
NOTEBOOKS = $(wildcard chapters/*.ipynb appendix/*.ipynb)
# every notebook executed once, into the cache the book build reads (_build/.jupyter_cache): the build and the
# build-marked tests then execute none again; a failing cell (a check's assert) fails the run
RUN_NOTEBOOKS := $(BIN)/python tools/run_notebooks.py

.PHONY: book test unit notebooks build-check install clean pdf assignments plain-notebooks

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

book: $(STAMP)
	$(JB_BUILD)
	@echo "Book built: open file://$(CURDIR)/_build/html/index.html"

# unit tests of lnfl, then every notebook executed once (into the build's cache), then the strict build, which
# reuses those executions, and the checks on its HTML
test: $(STAMP)
	$(BIN)/python -m pytest -m "not build" tests
	$(RUN_NOTEBOOKS) $(NOTEBOOKS)
	$(BIN)/python -m pytest -m build tests

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not build" tests

notebooks: $(STAMP)
	$(RUN_NOTEBOOKS) $(NOTEBOOKS)

# the whole book as one PDF typeset by LaTeX (jupyter-book --builder pdflatex, xelatex; TeX Live from Debian,
# see .ci/run): _build/pdf/book.pdf, reusing the notebooks executed by `make book`
pdf: $(STAMP)
	$(BIN)/python tools/make_pdf.py

# otter-grader assignments of every chapter in _build/assignments/<chapter>/ (autograder/: solution notebook and
# autograder zip; student/: the notebook to hand out; master/), then checked with `otter run` (no Docker): full
# marks on every solution notebook, zero on every coding question of the untouched student notebooks.
# Glued numbers come from _build/jupyter_execute (after `make book`), else each chapter is executed once.
ASSIGN_JOBS ?= 1
assignments: $(STAMP)
	$(BIN)/python -m lnfl.coursework assign chapters _build/assignments --force --check --jobs $(ASSIGN_JOBS)

# the chapters as plain notebooks (what the Colab button opens; published by the deploy workflow)
plain-notebooks: $(STAMP)
	$(BIN)/python -m lnfl.coursework plain chapters _build/plain/chapters --force

clean:
	rm -rf _build

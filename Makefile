# cs231n-vis — two commands on a fresh machine with Python 3:
#   make course   create .venv, install, execute every notebook, write build/html/
#   make test     create/update .venv with the test extras, run unit tests + nbval of every notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# The tests run in parallel workers of one thread each (pytest-xdist; one per core, at most 4):
# on 2 cores that halves nbval's time (6.9 min instead of 12), as one thread leaves the other
# core idle. `--dist loadfile` keeps each notebook in one worker, its cells in order in one kernel;
# tests/notebook_progress.py prints a line per notebook as it finishes.
WORKERS := -n auto --maxprocesses 4
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# nbval runs under a CPU profile different from the one that writes the stored outputs
# (`make notebooks`: one notebook at a time with all threads, the CPU's best kernels), so an
# output that depends on floating-point order fails here, not on a student's laptop (DESIGN.md §5).
SECOND_PROFILE := $(ONE_THREAD) ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2

# The hub test (tests/test_hub.py) needs configurable-http-proxy, an npm package: installed into
# build/npm (no global install, no root). Without npm the hub test is skipped with a message.
NPM_DIR := build/npm
PROXY   := $(NPM_DIR)/node_modules/.bin/configurable-http-proxy
# nbgrader runs `alembic` by name: the venv's bin must be on PATH even when it is not activated.
WITH_VENV_PATH := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: course test unit nbval notebooks student coursework grading-check lab-check proxy benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[course]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[course,test,models]"
	touch $@ $(VENV)/.installed

course: $(VENV)/.installed
	$(BIN)/python -m cs231n_vis.course --notebooks notebooks --out build/html

test: unit nbval

unit: $(VENV)/.installed-test proxy
	$(ONE_THREAD) $(BIN)/python -m pytest $(WORKERS) --dist loadgroup tests

nbval: $(VENV)/.installed-test
	$(SECOND_PROFILE) $(BIN)/python -m pytest $(WORKERS) --dist loadfile -p notebook_progress $(NBVAL) notebooks

# Re-execute the notebooks in place, one at a time with every thread: refreshes their stored
# outputs (nbval's baseline).
# `make notebooks ONLY="06 07"` re-executes just those.
notebooks: $(VENV)/.installed
	$(BIN)/python -m cs231n_vis.course --notebooks notebooks --out build/html --inplace $(if $(ONLY),--only $(ONLY))

# The student edition: solutions replaced by stubs, mark schemes by "YOUR ANSWER HERE", outputs
# cleared, check cells locked (nbgrader's preprocessors; no course database needed).
student: $(VENV)/.installed
	$(BIN)/python -m cs231n_vis.course --notebooks notebooks --student build/student

# The course as nbgrader coursework: build/coursework holds nbgrader_config.py and
# source/<notebook>/ (one assignment per notebook); a teacher runs nbgrader there (labs/README.md).
coursework: $(VENV)/.installed
	$(BIN)/python labs/nbgrader/coursework.py course build/coursework

# All ten notebooks graded with the solutions pasted back (release, submit, collect, autograde,
# feedback), timed: slow (minutes per notebook on 2 cores), so not part of `make test`.
grading-check: $(VENV)/.installed
	$(WITH_VENV_PATH) $(BIN)/python labs/nbgrader/coursework.py check build/grading-check

# The Kubernetes values against the Zero to JupyterHub chart's schema, merged over its defaults.
lab-check: $(VENV)/.installed-test
	$(BIN)/python labs/z2jh/validate.py labs/z2jh/config.yaml

proxy:
	@if [ -x $(PROXY) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error configurable-http-proxy@5; \
	else echo "npm is missing: configurable-http-proxy cannot be installed, so the JupyterHub lab test (tests/test_hub.py) will be skipped"; fi

# Every script in benchmarks/ prints ratios against a reference measured in the same run.
benchmark: $(VENV)/.installed-test
	for script in benchmarks/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .pytest_cache

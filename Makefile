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

.PHONY: course test unit nbval notebooks student benchmark clean

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

unit: $(VENV)/.installed-test
	$(ONE_THREAD) $(BIN)/python -m pytest $(WORKERS) tests

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

# Every script in benchmarks/ prints ratios against a reference measured in the same run.
benchmark: $(VENV)/.installed-test
	for script in benchmarks/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .pytest_cache

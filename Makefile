# genreseg — the two commands of the README:
#   make demo   create .venv, install everything pinned, run the main job on DATA
#   make test   same install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
DATA   ?= ../shared/data/gtzan_mini
OUT    ?= demo-out
BIN     = $(VENV)/bin

.PHONY: install demo test bench clean

install: $(VENV)/.installed

# torch is installed on its own, pinned exactly: the CPU wheel of 2.13.0. An unpinned
# torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -c "import genreseg, torch, kymatio; print('installed genreseg', genreseg.__version__, 'torch', torch.__version__)"
	touch $@

demo: install
	$(BIN)/python -m genreseg.demo --data "$(DATA)" --out "$(OUT)"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/extract.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

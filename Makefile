# Synthetic Data Lab. `make lab` opens the workbook; `make test` runs every test.
# Both create .venv when it is missing and (re)install it whenever the requirements or the lock
# change. By default they install the exact, hash-checked versions of requirements.lock
# (Linux x86-64, Python 3.11); `LOCKED=0` installs the ranges of requirements*.txt instead.
# `make lock` re-resolves the lock files after an edit of requirements*.txt, keeping every pin it
# can; `make lock-upgrade` moves every package to the newest version the ranges allow.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PROFILE ?= lab
# notebooks to leave out of the lab-profile nbval run (e.g. NBVAL_SKIP="08_finance" to save time)
NBVAL_SKIP ?=
LOCKED ?= 1
# test-only venv for SDMetrics (it requires pandas < 3; see requirements-sdmetrics.txt)
XVENV  ?= .venv-sdmetrics
XSTAMP  = $(XVENV)/.installed
SETTINGS = $(VENV)/share/jupyter/lab/settings/overrides.json
# the lock tool, in its own venv
TOOLS   = .venv-tools
UV_VERSION = 0.13.9
LOCK_PYTHON = 3.11.5
UV_COMPILE = $(TOOLS)/bin/uv pip compile --quiet --generate-hashes --python-version $(LOCK_PYTHON) \
             --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock"

ifeq ($(LOCKED),1)
STAMP   = $(VENV)/.installed-locked
INSTALL = --require-hashes -r requirements.lock
else
STAMP   = $(VENV)/.installed-ranges
INSTALL = -r requirements.txt -r requirements-test.txt
endif
CHECK_PY = import sys; t = sys.version_info[:3]; v = ".".join(map(str, t)); \
  sys.exit(0 if (3, 11, 5) <= t < (3, 12) else "requirements.lock is for Python 3.11.5 or a later 3.11, " \
  "but $(VENV) has Python " + v + ": delete $(VENV) and run again with PYTHON=python3.11, " \
  "or use LOCKED=0 to install the ranges of requirements.txt")

.PHONY: lab course bench test unit smoke nbval clean lock lock-upgrade

$(STAMP): requirements.txt requirements-test.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ "$(LOCKED)" = 1 ]; then $(BIN)/python -c '$(CHECK_PY)'; fi
	rm -f $(VENV)/.installed*
	$(BIN)/python -m pip install --quiet $(INSTALL)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# JupyterLab's defaults for this workbook: offline, so it never asks to fetch news or check for
# updates; long code lines wrap, so no code hides past the right edge of a laptop screen
$(SETTINGS): $(STAMP) Makefile
	mkdir -p $(dir $(SETTINGS))
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false},' \
	  '"@jupyterlab/notebook-extension:tracker": {"codeCellConfig": {"lineWrap": true}}}' > $(SETTINGS)

$(XSTAMP): requirements-sdmetrics.lock
	test -x $(XVENV)/bin/python || $(PYTHON) -m venv $(XVENV)
	$(XVENV)/bin/python -m pip install --quiet --require-hashes -r requirements-sdmetrics.lock
	touch $(XSTAMP)

lab: $(STAMP) $(SETTINGS) ## open the workbook in JupyterLab
	$(BIN)/jupyter lab notebooks/

course: $(STAMP)         ## execute every notebook headless (PROFILE=lab) into outputs/
	$(BIN)/python -m labkit run --profile $(PROFILE) --output outputs

bench: $(STAMP)          ## same, recording wall time and peak memory in outputs/bench.json
	$(BIN)/python -m labkit run --profile $(PROFILE) --output outputs --bench outputs/bench.json

test: $(STAMP) $(XSTAMP) $(SETTINGS) ## unit tests, smoke papermill runs, nbval default-profile runs, lab metrics
	LABKIT_LOCKED=$(LOCKED) LABKIT_SDMETRICS_PYTHON=$(XVENV)/bin/python $(BIN)/python -m pytest tests -m "not notebook" -q
	$(BIN)/python -m pytest tests -m notebook -q
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1200 notebooks -q -p no:cacheprovider \
	  $(NBVAL_SKIP:%=--ignore=notebooks/%.ipynb)
	$(BIN)/python -m pytest tests/check_lab_results.py -q

unit: $(STAMP) $(XSTAMP)
	LABKIT_LOCKED=$(LOCKED) LABKIT_SDMETRICS_PYTHON=$(XVENV)/bin/python $(BIN)/python -m pytest tests -m "not notebook" -q

$(TOOLS)/bin/uv:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(TOOLS)/bin/uv    ## re-resolve requirements.lock (and the SDMetrics lock) from requirements*.txt
	$(UV_COMPILE) $(UPGRADE) requirements.txt requirements-test.txt -o requirements.lock
	$(UV_COMPILE) $(UPGRADE) requirements-sdmetrics.txt -o requirements-sdmetrics.lock

lock-upgrade:            ## the same, moving every package to the newest version the ranges allow
	$(MAKE) lock UPGRADE=--upgrade

clean:
	rm -rf outputs notebooks/outputs

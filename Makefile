# Synthetic Data Lab. `make lab` opens the workbook; `make test` runs every test.
# Both create .venv from requirements.txt when it is missing (or older than requirements.txt).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PROFILE ?= lab

.PHONY: lab course bench test unit smoke nbval clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

lab: $(STAMP)            ## open the workbook in JupyterLab
	$(BIN)/jupyter lab notebooks/

course: $(STAMP)         ## execute every notebook headless (PROFILE=lab) into outputs/
	$(BIN)/python -m labkit run --profile $(PROFILE) --output outputs

bench: $(STAMP)          ## same, recording wall time and peak memory in outputs/bench.json
	$(BIN)/python -m labkit run --profile $(PROFILE) --output outputs --bench outputs/bench.json

test: $(STAMP)           ## unit tests, smoke papermill runs, nbval default-profile runs, lab metrics
	$(BIN)/python -m pytest tests -m "not notebook" -q
	$(BIN)/python -m pytest tests -m notebook -q
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1200 notebooks -q -p no:cacheprovider
	$(BIN)/python -m pytest tests/check_lab_results.py -q

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not notebook" -q

clean:
	rm -rf outputs notebooks/outputs

# The two commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := demo_run
export TF_CPP_MIN_LOG_LEVEL := 2
export MPLBACKEND := Agg

.PHONY: demo test venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

test: venv
	$(PY) -m pytest -q tests

demo: venv
	@echo "== DEMO: the paper's pipeline on the built-in demo source (MNI152 template, not patient data) =="
	$(PY) extract_crops.py --source demo --out-dir $(DEMO_DIR) --quiet
	$(PY) balance_data.py --crops $(DEMO_DIR) --out $(DEMO_DIR)/splits.csv
	@echo "== demo finished: outputs in $(DEMO_DIR)/ =="

clean:
	rm -rf $(DEMO_DIR)

# Thin wrappers around scripts/setup.sh and the btsee command.
PY      := .venv/bin/python
CONFIG  ?= configs/default.yaml
OUT     ?= runs/default
BOARD   ?= pynq-z2

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m btsee.cli run $(CONFIG) --out $(OUT) --resume

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf runs

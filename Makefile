# Thin wrappers around scripts/setup.sh and the btsee command.
PY      := .venv/bin/python
CONFIG  ?= configs/default.yaml
OUT     ?= runs/default
BOARD   ?= pynq-z2

.PHONY: setup demo test bench bitstream clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m btsee.cli run $(CONFIG) --out $(OUT) --resume

# The Vivado build folder of the default run's design for BOARD (exit status 2, with the
# command to run elsewhere, when Vivado is not on PATH).
bitstream: setup
	$(PY) -m btsee.cli bitstream $(CONFIG) --out $(OUT) --board $(BOARD)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf runs

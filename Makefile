# Thin wrappers around scripts/setup.sh and the btsee command.
PY      := .venv/bin/python
CONFIG  ?= configs/default.yaml
OUT     ?= runs/default
BOARD   ?= pynq-z2

.PHONY: setup demo test matrix bench docs bitstream deploy clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m btsee.cli run $(CONFIG) --out $(OUT) --resume

# The Vivado build folder of the default run's design for BOARD (exit status 3, with the
# command to run elsewhere, when Vivado is not on PATH).
bitstream: setup
	$(PY) -m btsee.cli bitstream $(CONFIG) --out $(OUT) --board $(BOARD)

# The package and the driver onto a PYNQ board over ssh, the on-device test run there, its JSON
# report back into $(OUT)/board_test/pynq.json (without HOST: the usage).
HOST    ?=
PORT    ?= 22
BOARD_PYTHON ?=
deploy: setup
	$(PY) -m boards.deploy --board $(BOARD) --host "$(HOST)" --port $(PORT) --package $(OUT)/package \
		$(if $(BOARD_PYTHON),--python "$(BOARD_PYTHON)")

# Two pytest-xdist workers (the CI machine has 2 cores); tests of one module share a worker.
# Test files in the order tests/conftest.py gives them (ResNet-8's run built while the other
# worker waits for the tiny run's background build), not xdist's largest-first order.
test: setup
	$(PY) -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder --durations=25 -m "not matrix"

# Every case of the generality matrix (tests/test_matrix.py): class counts, channels, bit
# widths and exit layouts through rtl and synth (make test has the tiny run and ResNet-8's
# 6-class RGB 64x64 case instead).
matrix: setup
	$(PY) -m pytest -q -n 2 --durations=0 tests/test_matrix.py

bench: setup
	$(PY) bench/run_all.py

# The documentation site from docs/ (mkdocs.yml; strict: warnings and broken links fail).
docs: setup
	$(PY) -m btsee.config_reference
	$(PY) -m mkdocs build --strict

clean:
	rm -rf runs

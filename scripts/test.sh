#!/usr/bin/env bash
# Runs every test after installing whatever is missing (as root on Debian 12): what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --tests
exec npm test

#!/usr/bin/env bash
# The test command of README.md: the whole suite, on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# The test command of README.md: installs the suite with its test extras into the active
# Python (idempotent; set IRETOUCH_SKIP_INSTALL=1 to skip), then runs the whole suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${IRETOUCH_SKIP_INSTALL:-}" ]; then
    bash scripts/install-test-deps.sh
fi
exec python3 -m pytest -q -p no:cacheprovider "$@"

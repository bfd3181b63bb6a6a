#!/usr/bin/env bash
# Installs the suite with its test extras into the active Python environment.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q ".[test]"
# pyiqa is the test-time reference the metrics are checked against (PolyForm-Noncommercial:
# the package never imports it). --no-deps: the four metrics used need nothing beyond what the
# suite already installs, and its full tree (bitsandbytes, facexlib, openai-clip pinning
# setuptools<81, ...) is large and fragile.
python3 -m pip install -q --no-deps "pyiqa==0.1.16"
# The browser tests' chromium (Debian package, via apt when root; see the script).
bash scripts/install-chromium.sh

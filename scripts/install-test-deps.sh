#!/usr/bin/env bash
# Installs the suite with its test extras into the active Python environment.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q ".[test]"

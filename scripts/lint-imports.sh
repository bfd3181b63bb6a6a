#!/usr/bin/env bash
# Checks the import contracts of pyproject.toml ([tool.importlinter]) on the installed layout.
# import-linter reads a package from its folder, and in a checkout models/, training/ and
# baselines/ sit beside iretouch_bench/ (pyproject maps them in at install time), so the
# sources are first staged the way `pip install .` lays them out, then linted there.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/iretouch_bench"
( cd iretouch_bench && find . -name '*.py' -not -path '*/__pycache__/*' -exec cp --parents {} "$stage/iretouch_bench/" \; )
for top in models training baselines; do
    [ -d "$top" ] || continue
    mkdir -p "$stage/iretouch_bench/$top"
    ( cd "$top" && find . -name '*.py' -not -path '*/__pycache__/*' -exec cp --parents {} "$stage/iretouch_bench/$top/" \; )
done
cp pyproject.toml "$stage/"
cd "$stage"
# the staged copy must shadow any installed iretouch_bench
PYTHONPATH="$stage" exec lint-imports --no-cache pyproject.toml "$@"

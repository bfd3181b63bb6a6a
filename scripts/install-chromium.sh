#!/usr/bin/env bash
# Debian's chromium for the browser tests (tests/test_report_browser.py drives it with Playwright
# through executable_path; `playwright install` is never used). Idempotent: returns at once when a
# chromium is on PATH. Installs with apt only as root on an apt system (CI: a fresh Debian machine);
# elsewhere it prints what to run and leaves the choice to the user.
set -euo pipefail
for exe in chromium chromium-browser; do
    if command -v "$exe" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    command -v chromium >/dev/null
else
    echo "install-chromium: no chromium on PATH; the browser tests need it (Debian/Ubuntu: sudo apt-get install -y chromium)" >&2
fi

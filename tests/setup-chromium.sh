#!/usr/bin/env bash
# Install Debian's chromium for tests/test_browser.py (called by the README's test command).
# Idempotent: does nothing when chromium is already there. Needs root (apt-get) or sudo.
# Playwright (from the dev extra) only drives this system chromium; it never downloads one.
# Exits non-zero if chromium cannot be installed: the browser tests then fail, never skip.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "tests/setup-chromium.sh: chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
fi
echo "installing Debian's chromium (apt-get) for the browser tests"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version

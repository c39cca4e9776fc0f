#!/usr/bin/env bash
# Install what tests/test_browser.py needs: Debian's chromium (apt) and, into the
# active Python environment, playwright (used only as a driver: it launches the
# system chromium; `playwright install` is never run) and voila (serves the app).
# Idempotent; exits non-zero if something could not be installed, so the caller
# can decide to go on (the browser test then skips and says why).
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
chromium --version

python -m pip install --quiet --disable-pip-version-check "playwright>=1.40" "voila>=0.5"
python -c "import playwright, voila; print('playwright', __import__('importlib.metadata').metadata.version('playwright'), '| voila', voila.__version__)"

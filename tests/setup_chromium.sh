#!/usr/bin/env bash
# Headless Chromium and its driver for the report rendering test (tests/test_report_html.py).
# Run by `make browser` (and so by `make test`), never by a test. CI starts on a fresh Debian
# machine as root; a machine that has them already skips the install.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
chromium --version

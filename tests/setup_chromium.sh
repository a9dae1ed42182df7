#!/usr/bin/env bash
# The system packages tests need: headless Chromium and its driver for the report rendering test
# (tests/test_report_html.py), PostgreSQL and Redis for the CeleryExecutor stack
# (tests/celery_stack.py). Run by `make browser` (and so by `make test`), never by a test. CI
# starts on a fresh Debian machine as root; a machine that has them already skips the install.
set -euo pipefail
have_pg() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
have_pg || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v chromium >/dev/null && chromium --version
have_pg && redis-server --version

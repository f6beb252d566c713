#!/usr/bin/env bash
# Chromium and chromedriver from Debian's packages, for the Model Inspector's browser tests
# (tests/inspector/test_inspector_browser.py). Nothing to do when both are there; as root with apt-get they are installed
# quietly; otherwise the reason the browser tests will be skipped is printed and the script exits 0.
# --require (CI): a missing browser that cannot be installed is an error (exit 1).
set -uo pipefail
require=false
[[ "${1:-}" == "--require" ]] && require=true

have() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }

if have; then
    exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver (Debian) for the browser tests"
    if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; then
        have && exit 0
    fi
    reason="apt-get install chromium chromium-driver failed"
else
    reason="chromium or chromedriver is missing and this is not root with apt-get: run 'sudo apt-get install chromium chromium-driver'"
fi
if $require; then
    echo "error: $reason; the browser tests cannot run" >&2
    exit 1
fi
echo "note: $reason; the browser tests (tests/inspector/test_inspector_browser.py) will be skipped" >&2
exit 0

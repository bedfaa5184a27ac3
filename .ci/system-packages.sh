#!/usr/bin/env bash
# Debian packages the tests use: redis-server (shared rate limits; some tests start a throwaway
# server), chromium (browser tests; Playwright's own browser download does not work here) and gettext
# (the catalogue test extracts the product's strings with xgettext).
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v xgettext >/dev/null 2>&1 || missing+=(gettext)  # tests/test_languages.py finds the product's strings
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "Installing ${missing[*]} from Debian's packages..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Install Debian packages for the test command (as root, or with sudo), quietly; on failure
# print apt's log. Used by test-postgres.sh and test-browser.sh.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
command -v apt-get >/dev/null || { echo "apt-install: no apt-get for $*" >&2; exit 1; }
echo "apt-install: installing Debian's $* (one time)..." >&2
LOG=$(mktemp)
{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    $SUDO apt-get install -y -qq --no-install-recommends "$@"; } >"$LOG" 2>&1 \
  || { cat "$LOG" >&2; echo "apt-install: could not install $*" >&2; exit 1; }

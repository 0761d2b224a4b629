#!/usr/bin/env bash
# Print the path of a Chromium for the browser tests, installing Debian's chromium when it
# is missing (as root, or with sudo). Prints nothing and exits 1 when none can be had;
# the browser tests then fail in CI and are skipped locally.
set -euo pipefail
log() { echo "test-browser: $*" >&2; }
find_chromium() { command -v chromium || command -v chromium-browser || true; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
if [ -z "$(find_chromium)" ]; then
  command -v apt-get >/dev/null || { log "no chromium and no apt-get"; exit 1; }
  log "installing Debian's chromium (one time)..."
  LOG=$(mktemp)
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      $SUDO apt-get install -y -qq --no-install-recommends chromium; } >"$LOG" 2>&1 \
    || { cat "$LOG" >&2; log "could not install chromium"; exit 1; }
fi
find_chromium

#!/usr/bin/env bash
# Print the path of a Chromium for the browser tests, installing Debian's chromium when it
# is missing (as root, or with sudo). Prints nothing and exits 1 when none can be had;
# the browser tests then fail in CI and are skipped locally.
set -euo pipefail
find_chromium() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(find_chromium)" ]; then
  bash "$(dirname "$0")/apt-install.sh" chromium || exit 1
fi
find_chromium

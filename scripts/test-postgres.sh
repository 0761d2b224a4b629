#!/usr/bin/env bash
# Start (once) a throwaway PostgreSQL server for the tests and print its SQLAlchemy URL.
# Installs Debian's postgresql when it is missing (as root, or with sudo). Prints nothing
# and exits 1 when no server can be had; `make test` then fails in CI and skips locally.
set -euo pipefail
PORT=${FAILWELL_PG_PORT:-55432}
DATA=${FAILWELL_PG_DATA:-/tmp/failwell-test-pg}
log() { echo "test-postgres: $*" >&2; }
bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(bindir)" ]; then
  bash "$(dirname "$0")/apt-install.sh" postgresql || exit 1
fi
BIN=$(bindir)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA" && mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust >/dev/null
  fi
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    >/dev/null || { log "server did not start; see $DATA/server.log"; exit 1; }
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"

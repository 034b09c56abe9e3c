#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests, from Debian's postgresql binaries.
#
#   deploy/postgres/pg.sh start   initdb in PG_RUN_DIR, start on 127.0.0.1, print its SQLAlchemy URL
#   deploy/postgres/pg.sh stop    stop it and delete PG_RUN_DIR
#   deploy/postgres/pg.sh url     print the URL of the running cluster
#
# Settings (environment): PG_RUN_DIR (default /tmp/arttag-postgres), PG_PORT (default: a free
# port), PG_BIN (default: the newest /usr/lib/postgresql/*/bin). Trust authentication on
# 127.0.0.1 only: for tests, never for data that matters. PostgreSQL refuses to run as root,
# so under root the cluster runs as the `postgres` user (Debian's package creates it) or `nobody`.
set -euo pipefail

run_dir="${PG_RUN_DIR:-/tmp/arttag-postgres}"
log() { printf 'pg.sh: %s\n' "$*" >&2; }

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
    log "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"
    exit 1
  fi
  echo "$found"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# as_owner CMD...: run as the cluster's owner (not root)
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then "$@"; return; fi
  local user=postgres
  id -u "$user" >/dev/null 2>&1 || user=nobody
  runuser -u "$user" -- "$@"
}

start() {
  if [ -f "$run_dir/url" ] && as_owner "$(pg_bin)/pg_ctl" -D "$run_dir/data" status >/dev/null 2>&1; then
    cat "$run_dir/url"; return 0
  fi
  local bin port user
  bin="$(pg_bin)"
  port="${PG_PORT:-$(free_port)}"
  rm -rf "$run_dir"
  mkdir -p "$run_dir"
  if [ "$(id -u)" -eq 0 ]; then
    user=postgres; id -u "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$run_dir"
  fi
  as_owner "$bin/initdb" -D "$run_dir/data" -U arttag --auth=trust -E UTF8 --no-locale >"$run_dir/initdb.log" 2>&1 \
    || { cat "$run_dir/initdb.log" >&2; exit 1; }
  # the socket lives in the run dir: /var/run/postgresql may not exist or be writable
  as_owner "$bin/pg_ctl" -D "$run_dir/data" -l "$run_dir/server.log" -w -t 60 \
    -o "-p $port -k $run_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$run_dir/server.log" >&2; exit 1; }
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U arttag arttag
  echo "postgresql+psycopg://arttag@127.0.0.1:$port/arttag" >"$run_dir/url"
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($run_dir)"
  cat "$run_dir/url"
}

stop() {
  if [ -d "$run_dir/data" ]; then
    as_owner "$(pg_bin)/pg_ctl" -D "$run_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$run_dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) cat "$run_dir/url" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac

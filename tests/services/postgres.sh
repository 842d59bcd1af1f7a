#!/usr/bin/env bash
# Start/stop a throw-away PostgreSQL 15 cluster for the registry tests (Debian's postgresql package).
#
#   tests/services/postgres.sh start [DIR] [PORT]   # prints `export TRTBUILD_TEST_PG_URL=...`
#   tests/services/postgres.sh stop  [DIR]
#
# DIR defaults to /tmp/trtbuild-pg, PORT to 55432. The cluster is created with initdb + pg_ctl from
# /usr/lib/postgresql/<ver>/bin, run as the `postgres` user when started as root, listening on 127.0.0.1 only
# (unix socket inside DIR). A role `trtbuild` (password `trtbuild`) owns the database `trtbuild_test`.
# `stop` stops the server by its pid file and removes DIR.
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop [DIR] [PORT]}
dir=${2:-/tmp/trtbuild-pg}
port=${3:-55432}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
[[ -x "$bindir/pg_ctl" ]] || { echo "postgres.sh: no PostgreSQL server found (apt-get install -y postgresql)" >&2; exit 1; }

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if ! as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c autovacuum=off" start >/dev/null \
      || { tail -n 30 "$dir/server.log" >&2; exit 1; }
  fi
  psql_() { as_owner "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
  psql_ -c "DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='trtbuild') THEN
            CREATE ROLE trtbuild LOGIN PASSWORD 'trtbuild' CREATEDB; END IF; END\$\$;"
  if [[ -z $(psql_ -c "SELECT 1 FROM pg_database WHERE datname='trtbuild_test'") ]]; then
    psql_ -c "CREATE DATABASE trtbuild_test OWNER trtbuild"
  fi
  echo "export TRTBUILD_TEST_PG_URL=postgresql+psycopg://trtbuild:trtbuild@127.0.0.1:$port/trtbuild_test"
  ;;
stop)
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: postgres.sh start|stop [DIR] [PORT]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the integration tests (tests/unit/pg).
#   scripts/pg-test-cluster.sh start DIR     initdb in a temp dir, start on a free port of
#                                            127.0.0.1; prints the DSN and writes it to DIR/dsn
#   scripts/pg-test-cluster.sh restart DIR   restarts the server (reconnection tests)
#   scripts/pg-test-cluster.sh stop DIR      stops it and removes its files and DIR
# Uses the Debian postgresql-15 binaries ($SLUICE_PG_BIN overrides). PostgreSQL refuses to run
# as root, so as root the server runs as the unprivileged user sluice-test (created if missing).
# Without the binaries, start says so and exits 0 without DIR/dsn: the tests then skip.
set -euo pipefail

PG_BIN=${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=sluice-test
cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: scripts/pg-test-cluster.sh start|restart|stop DIR" >&2
  exit 2
fi

as_server_user() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

pg_ctl_quiet() {
  local data=$1
  shift
  (cd "$data" && as_server_user "$PG_BIN/pg_ctl" -D "$data/data" "$@") >/dev/null
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop_cluster() {
  [[ -f "$dir/datadir" ]] || return 0
  local data
  data=$(cat "$dir/datadir")
  if [[ -d "$data/data" ]]; then
    pg_ctl_quiet "$data" -m immediate stop || true
  fi
  [[ "$data" == /tmp/sluice-pg.* ]] && rm -rf "$data"
  rm -f "$dir/datadir" "$dir/dsn"
}

case "$cmd" in
  start)
    if [[ ! -x "$PG_BIN/initdb" ]]; then
      echo "pg-test-cluster: no PostgreSQL binaries in $PG_BIN; PostgreSQL tests will skip" >&2
      exit 0
    fi
    stop_cluster  # a cluster left over from an interrupted run
    mkdir -p "$dir"
    data=$(mktemp -d /tmp/sluice-pg.XXXXXX)
    echo "$data" >"$dir/datadir"
    if [[ "$(id -u)" == 0 ]]; then
      id -u "$PG_USER" >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
      chown "$PG_USER:" "$data"
    fi
    chmod 700 "$data"
    (cd "$data" && as_server_user "$PG_BIN/initdb" -D "$data/data" -U sluice -A trust -E UTF8 \
      --no-sync >"$data/initdb.log" 2>&1) || {
      cat "$data/initdb.log" >&2
      exit 1
    }
    started=
    for _ in $(seq 20); do
      port=$((20000 + RANDOM % 30000))
      port_in_use "$port" && continue
      # Durability settings off: the data is thrown away, speed is what matters.
      if pg_ctl_quiet "$data" -l "$data/server.log" -w -t 30 -o "-p $port -k $data \
          -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
          -c full_page_writes=off -c max_connections=200" start; then
        started=1
        break
      fi
    done
    if [[ -z "$started" ]]; then
      echo "pg-test-cluster: could not start PostgreSQL; see $data/server.log" >&2
      tail -20 "$data/server.log" >&2 || true
      exit 1
    fi
    dsn="postgresql://sluice@127.0.0.1:$port/postgres"
    echo "$dsn" >"$dir/dsn"
    echo "$dsn"
    ;;
  restart)
    data=$(cat "$dir/datadir")
    pg_ctl_quiet "$data" -l "$data/server.log" -w -t 30 -m fast restart
    ;;
  stop)
    stop_cluster
    rmdir "$dir" 2>/dev/null || true
    ;;
  *)
    echo "usage: scripts/pg-test-cluster.sh start|restart|stop DIR" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# tests/load/scale/run.sh - csmcpd with 1K / 10K / 50K concurrent MCP sessions, and under chaos.
#
#   run.sh services          start the scale PostgreSQL (initdb/pg_ctl as postgres, /tmp/scale-pg,
#                            port 55440) and Redis (/tmp/scale-redis, port 16400), migrate, and seed
#                            10,000 accounts once (takes minutes; needs the build)
#   run.sh 1k | 10k | 50k    one run of the tool mix (70 % reads, 20 % analytics, 10 % writes):
#                            N keep-alive connections, one MCP session each, 20 s of load
#   run.sh chaos             the mix over 10K sessions while reloading every 5 s, then while
#                            SIGKILLing a random worker every 3 s
#   run.sh smoke             200 connections, 5 s (what tests/integration/test_scale_smoke.py runs)
#   run.sh stop              stop the scale PostgreSQL and Redis
# Extra arguments go to scale.py (e.g. --duration 10 --inflight 256 --workers 2 --json out.json).
# Everything is bounded (<= 30 s of load per run) and stays on 127.0.0.x. See docs/scale.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE="$ROOT/tests/load/scale"
export CSMCP_BUILD_DIR=${CSMCP_BUILD_DIR:-$ROOT/build}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
PGDIR=${SCALE_PGDIR:-/tmp/scale-pg}
REDISDIR=${SCALE_REDISDIR:-/tmp/scale-redis}
PGPORT=55440
REDISPORT=16400
export SCALE_DATABASE_URL=${SCALE_DATABASE_URL:-postgresql://csmcp@127.0.0.1:$PGPORT/csmcp_scale}
export SCALE_REDIS_URL=${SCALE_REDIS_URL:-redis://127.0.0.1:$REDISPORT/0}
export SCALE_PGDATA=$PGDIR/data SCALE_REDIS_PIDFILE=$REDISDIR/redis.pid

as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

services() {
  mkdir -p "$PGDIR" "$REDISDIR"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGDIR"
  if [[ ! -f $PGDIR/data/PG_VERSION ]]; then
    as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PGDIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDIR'
max_connections = 200
shared_buffers = 256MB
# a benchmark box: commits are not flushed (docs/scale.md says so next to the figures)
fsync = off
synchronous_commit = off
log_min_messages = warning
CONF
  fi
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1 ||
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start >/dev/null
  local psql=(psql -h 127.0.0.1 -p $PGPORT -U postgres -qAt -d postgres)
  "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='csmcp'" | grep -q 1 ||
    "${psql[@]}" -c "CREATE ROLE csmcp LOGIN CREATEDB" >/dev/null
  "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='csmcp_scale'" | grep -q 1 ||
    "${psql[@]}" -c "CREATE DATABASE csmcp_scale OWNER csmcp" >/dev/null
  if ! redis-cli -p $REDISPORT ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port $REDISPORT --dir "$REDISDIR" --daemonize yes \
      --pidfile "$REDISDIR/redis.pid" --logfile "$REDISDIR/redis.log" --save "" \
      --appendonly no --maxclients 10000 >/dev/null
    for _ in $(seq 50); do redis-cli -p $REDISPORT ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  local conf="$PGDIR/csmcp.conf"
  # The role is named csmcp and migration 0002 creates schema csmcp, so the default search_path
  # ("$user", public) would make a second migrate create csmcp.schema_migrations and re-apply
  # 0001 into schema csmcp (reported; fix belongs in supervisor/ctl_db.c). Pin it to public.
  export PGOPTIONS="-c search_path=public"
  printf 'database = { url = "%s"; };\nredis = { url = "%s"; };\n' \
    "$SCALE_DATABASE_URL" "$SCALE_REDIS_URL" >"$conf"
  "$CSMCP_BUILD_DIR/supervisor/csmcpctl" -c "$conf" migrate
  local n
  n=$(psql "$SCALE_DATABASE_URL" -qAt -c "SELECT count(*) FROM accounts")
  if ((n < 10000)); then
    echo "seeding 10,000 accounts (several minutes)..." >&2
    "$CSMCP_BUILD_DIR/supervisor/csmcpctl" -c "$conf" seed --accounts 10000
  fi
  echo "SCALE_DATABASE_URL=$SCALE_DATABASE_URL"
  echo "SCALE_REDIS_URL=$SCALE_REDIS_URL"
}

stop() {
  redis-cli -p $REDISPORT shutdown nosave >/dev/null 2>&1 || true
  [[ -f $PGDIR/data/PG_VERSION ]] && as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
}

scale() { /usr/bin/python3 "$HERE/scale.py" "$@"; }

cmd=${1:-}
shift || true
case "$cmd" in
  services) services ;;
  stop) stop ;;
  smoke) scale --connections 200 --duration 5 --idle 1 --inflight 16 --port 16100 "$@" ;;
  1k) scale --connections 1000 --duration 20 --port 16110 "$@" ;;
  10k) scale --connections 10000 --duration 20 --port 16120 "$@" ;;
  50k) scale --connections 50000 --duration 20 --port 16130 --setup-timeout 300 "$@" ;;
  chaos)
    rc=0
    scale --connections 10000 --duration 30 --port 16140 --chaos reload "$@" || rc=1
    scale --connections 10000 --duration 30 --port 16150 --chaos kill "$@" || rc=1
    exit $rc ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac

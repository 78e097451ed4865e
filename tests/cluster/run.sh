#!/usr/bin/env bash
# tests/cluster/run.sh - the scale-out topology (3 csmcpd hosts behind HAProxy, PostgreSQL
# primary + streaming replica, Redis primary + replica + 3 Sentinels) in network namespaces:
# conformance + SDK workflow through HAProxy, read-replica fallback, load under host kill,
# reloads and a Redis failover. See run.py (options: --sessions N --duration S ...).
# Needs root and the environment of `scripts/dev test` (CSMCP_PG_ADMIN_URL of a seeded cluster).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX="c$(($$ % 100000))"
# run.py names its namespaces $CSMCP_CLUSTER_PREFIX-*, so the trap below finds them even if
# python is SIGKILLed.
export CSMCP_CLUSTER_PREFIX=$PREFIX
cleanup() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}-"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
}
trap cleanup EXIT INT TERM
/usr/bin/python3 "$HERE/run.py" "$@"

#!/usr/bin/env bash
# tests/package/run.sh - the "package" CI section of scripts/dev test: build the .deb
# (scripts/package), then tests/package/test_package.py (COMPAT declarations, lintian, install +
# systemd-analyze verify + csmcpd -t + purge, upgrade N -> N+1 and rollback under load), the DR
# drill (~1.5 min), and the rolling deploy behind HAProxy only when CSMCP_PKG_FULL=1 (it builds
# three more test packages: ~4.5 min, more than CI's budget for this section).
# Needs root, dpkg, the test PostgreSQL/Redis of `scripts/dev test` (CSMCP_PG_ADMIN_URL,
# CSMCP_TEST_REDIS_URL). Prints the duration of each step.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
t0=$SECONDS
deb=$(scripts/package | tail -n 1)
echo "package: $deb built in $((SECONDS - t0)) s"
export CSMCP_PKG_DEB="$deb"
t1=$SECONDS
rc=0
python3 tests/package/test_package.py -v || rc=1
echo "package: tests took $((SECONDS - t1)) s"
tests=(tests/package/test_dr_drill.py)
[[ "${CSMCP_PKG_FULL:-0}" == 1 ]] && tests+=(tests/package/test_deploy.py)
for t in "${tests[@]}"; do
    t2=$SECONDS
    python3 "$t" -v || rc=1
    echo "package: $t took $((SECONDS - t2)) s"
done
echo "package: section took $((SECONDS - t0)) s"
exit $rc

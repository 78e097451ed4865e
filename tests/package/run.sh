#!/usr/bin/env bash
# tests/package/run.sh - the "package" CI section of scripts/dev test: build the .deb
# (scripts/package), then tests/package/test_package.py (COMPAT declarations, lintian, install +
# systemd-analyze verify + csmcpd -t + purge, upgrade N -> N+1 and rollback under load), and the
# rolling deploy and DR drill when CSMCP_PKG_FULL=1 (they need ~2 more minutes).
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
if [[ "${CSMCP_PKG_FULL:-0}" == 1 ]]; then
    for t in tests/package/test_deploy.py tests/package/test_dr_drill.py; do
        [[ -f "$t" ]] || continue
        t2=$SECONDS
        python3 "$t" -v || rc=1
        echo "package: $t took $((SECONDS - t2)) s"
    done
fi
echo "package: section took $((SECONDS - t0)) s"
exit $rc

#!/usr/bin/env bash
# MCP client tests (conformance suite 0.1.16 and 0.2.0-alpha.12, TypeScript SDK v1, Inspector)
# against csmcpd with 4 workers; see run.py. Called by `scripts/dev test`.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"

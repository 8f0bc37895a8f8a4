#!/usr/bin/env bash
# The test command: sets up (or reuses) the project's environment, lints, and runs the test suite.
#   bash tools/run_tests.sh [pytest arguments]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$(bash "$ROOT/tools/setup_env.sh" | tail -n 1)
cd "$ROOT"
"$PY" -m ruff check .
exec "$PY" -m pytest "$@"

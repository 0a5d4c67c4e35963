#!/usr/bin/env bash
# The whole test suite: static checks, the web app's checks, then every pytest test.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
failed=0
step() { echo "==> $*"; "$@" || { echo "FAILED: $*"; failed=1; }; }

bash scripts/services.sh

step $BIN/ruff check src tests bench
step $BIN/ruff format --check src tests bench
step $BIN/mypy
step $BIN/lint-imports
step make --no-print-directory web-check

# Tests run in parallel worker processes, a file to a worker (a file's fixtures stay in one
# process): much of the suite waits on real processes, sockets and browsers, not on the CPU.
# Tests marked `alone` assert a recovery bound (chaos tests) and run afterwards by themselves.
workers=${KIBITZ_TEST_WORKERS:-3}
pytest_step() {
  $BIN/pytest "$@"
  local status=$?
  # 5 = no tests collected (e.g. a -k filter that matches nothing): not a failure of the suite.
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then failed=1; fi
}
pytest_step -n "$workers" --dist loadfile -m "not alone" "$@"
pytest_step -m alone "$@"
exit "$failed"

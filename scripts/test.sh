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

$BIN/pytest "$@"
status=$?
# 5 = no tests collected (e.g. a -k filter that matches nothing): not a failure of the suite.
if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then failed=1; fi
exit "$failed"

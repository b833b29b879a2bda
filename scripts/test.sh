#!/usr/bin/env bash
# Runs every test of DurableAgents on a fresh Debian machine with the .NET SDK.
# It installs and starts what the tests need (each on a private loopback port, stopped at the
# end even when tests fail), builds the solution with warnings as errors, runs all test
# projects, and ends with one line CI reads:  tests: N passed, N failed[, N skipped]
#
# Usage: bash scripts/test.sh [extra dotnet test args, e.g. --filter FullyQualifiedName~Crash]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
CONFIGURATION="${CONFIGURATION:-Release}"
RESULTS="$(mktemp -d -t durableagents-results.XXXXXX)"
# Artifacts kept after the run (the dashboard's screenshots): TestResults/ (git-ignored).
export DURABLEAGENTS_TEST_ARTIFACTS="$PWD/TestResults"
rm -rf "$DURABLEAGENTS_TEST_ARTIFACTS/screenshots"

# shellcheck source=scripts/services.sh
. "$(dirname "${BASH_SOURCE[0]}")/services.sh"

cleanup() {
  stop_services
  rm -rf "$RESULTS"
}
trap cleanup EXIT

summary() { # passed failed skipped
  local line="tests: $1 passed, $2 failed"
  [ "$3" -gt 0 ] && line="$line, $3 skipped"
  echo "$line"
}

if ! start_services; then
  echo "could not start the test services: no test ran"
  summary 0 0 0
  exit 1
fi

echo "== build ($CONFIGURATION)"
if ! dotnet build DurableAgents.sln -c "$CONFIGURATION" -nologo -clp:"ErrorsOnly;Summary"; then
  echo "build failed: no test ran"
  summary 0 0 0
  exit 1
fi

echo "== test"
# --blame-hang-timeout: a hung test is dumped and killed instead of stalling CI.
dotnet test DurableAgents.sln -c "$CONFIGURATION" --no-build -nologo \
  --logger "trx" --results-directory "$RESULTS" \
  --filter "TestCategory!=Recording" \
  --blame-hang-timeout 10m \
  "$@"
test_rc=$?

passed=0 failed=0 skipped=0 files=0
for trx in "$RESULTS"/*.trx; do
  [ -f "$trx" ] || continue
  files=$((files + 1))
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  p="$(get passed)"; f="$(get failed)"; e="$(get error)"; t="$(get timeout)"; a="$(get aborted)"; n="$(get notExecuted)"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  skipped=$((skipped + ${n:-0}))
done

if [ "$files" -eq 0 ]; then
  echo "no test results were written"
  summary 0 0 0
  exit 1
fi

[ -d "$DURABLEAGENTS_TEST_ARTIFACTS/screenshots" ] && echo "screenshots: $DURABLEAGENTS_TEST_ARTIFACTS/screenshots"
summary "$passed" "$failed" "$skipped"
if [ "$test_rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi
exit 0

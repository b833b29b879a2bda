#!/usr/bin/env bash
# Runs the benchmarks: sequential scaling on SQLite, then the PostgreSQL figures on a private,
# throw-away server (synchronous_commit on). Usage: bash bench/run.sh [orchestrations, default 5000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh
trap stop_services EXIT
dotnet build -c Release bench/DurableAgents.Bench -nologo -clp:ErrorsOnly
BENCH=bench/DurableAgents.Bench/bin/Release/net10.0/DurableAgents.Bench.dll
echo "== sequential steps on SQLite"
dotnet "$BENCH" sequential
start_services
echo "== PostgreSQL"
dotnet "$BENCH" postgres "$DURABLEAGENTS_TEST_POSTGRES" "${1:-5000}"

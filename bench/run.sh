#!/usr/bin/env bash
# Runs the benchmarks: sequential scaling on SQLite, then the PostgreSQL figures on a private,
# throw-away server (synchronous_commit on). Usage: bash bench/run.sh [orchestrations, default 5000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/services.sh
trap stop_services EXIT
dotnet build -c Release bench/DurableAgents.Bench -nologo -clp:ErrorsOnly
# the gRPC benchmark starts the host (functions/) and the stock worker (tests/DurableAgents.Grpc.Worker)
dotnet build -c Release functions/DurableAgents.Functions -nologo -clp:ErrorsOnly
dotnet build -c Release tests/DurableAgents.Grpc.Worker -nologo -clp:ErrorsOnly
BENCH=bench/DurableAgents.Bench/bin/Release/net10.0/DurableAgents.Bench.dll
echo "== sequential steps on SQLite"
dotnet "$BENCH" sequential
start_services
echo "== PostgreSQL"
dotnet "$BENCH" postgres "$DURABLEAGENTS_TEST_POSTGRES" "${1:-5000}"
echo "== Durable Task gRPC endpoint, stock worker processes (SQLite, then PostgreSQL)"
dotnet "$BENCH" grpc sqlite 1000 1000 5000
dotnet "$BENCH" grpc "$DURABLEAGENTS_TEST_POSTGRES" 1000 200 1000
echo "== crash storm: two hosts on PostgreSQL, SIGKILLs, every model request counted (chat completions, then background responses)"
dotnet "$BENCH" storm "$DURABLEAGENTS_TEST_POSTGRES" 200 15 both
echo "== model rate limits under a burst: two hosts, a 120 RPM quota at the local server, batch pipelines plus interactive chats"
dotnet "$BENCH" ratelimit "$DURABLEAGENTS_TEST_POSTGRES" 300 120 20000 both 256

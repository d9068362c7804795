#!/usr/bin/env bash
# The benchmark regression gate (issue 7). Builds the benchmark program, runs a short in-process job of
# every class in the "Gate" category, exports BenchmarkDotNet full JSON, and compares each benchmark's
# ratio to its class baseline and its allocated bytes per operation with bench/baseline.json.
# Exits non-zero on any allocation increase or a ratio worse than the stated tolerance.
#
#   bash bench/gate.sh            compare against bench/baseline.json
#   bash bench/gate.sh --update   rewrite bench/baseline.json from one run (then review and commit it)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

artifacts=BenchmarkDotNet.Artifacts/gate   # gitignored
project=bench/FenceCore.Benchmarks
dll=$project/bin/Release/net10.0/FenceCore.Benchmarks.dll
start=$(date +%s)

echo "== gate: build"
dotnet build "$project" -c Release -nologo -clp:ErrorsOnly

# Short job (1 launch, 3 warmups) with 5 iterations of ~100 ms: each benchmark loops 1,024 operations
# per invocation, so 100 ms is about a million operations. In-process: no per-benchmark project build.
run_job() { # $1: output folder; rest: --filter/--anyCategories arguments
  local out=$1; shift
  rm -rf "$out" && mkdir -p "$out"
  dotnet "$dll" "$@" --job short --inProcess --iterationCount 5 --iterationTime 100 \
    --exporters fulljson --artifacts "$out" --stopOnFirstError >"$out/run.log" 2>&1 || {
    tail -n 40 "$out/run.log"; echo "gate: benchmark run failed (log: $out/run.log)"; exit 1; }
}

echo "== gate: run (short in-process job, category Gate)"
run_job "$artifacts/first" --anyCategories Gate

if [ "${1:-}" = "--update" ]; then
  # Two runs; the committed ratio is their geometric mean, so one disturbed run cannot make it lax.
  run_job "$artifacts/second" --anyCategories Gate
  dotnet "$dll" gate-compare --baseline bench/baseline.json --results "$artifacts/first/results" \
    --results "$artifacts/second/results" --update
  echo "gate: finished in $(( $(date +%s) - start )) s"
  exit 0
fi

echo "== gate: compare with bench/baseline.json"
rc=0
dotnet "$dll" gate-compare --baseline bench/baseline.json --results "$artifacts/first/results" \
  --retry-list "$artifacts/retry.txt" || rc=$?

# A class that failed on time alone runs once more: a real regression fails twice, a neighbour's
# build rarely lands on the same benchmark twice. Allocation failures are exact and never retried.
if [ "$rc" -eq 1 ] && [ -s "$artifacts/retry.txt" ]; then
  filters=(); while read -r cls; do filters+=("*.${cls}.*"); done <"$artifacts/retry.txt"
  echo "== gate: time-only failures; running again: $(tr '\n' ' ' <"$artifacts/retry.txt")"
  run_job "$artifacts/retry" --filter "${filters[@]}"
  rc=0
  dotnet "$dll" gate-compare --baseline bench/baseline.json --results "$artifacts/first/results" \
    --results "$artifacts/retry/results" || rc=$?
fi

echo "gate: finished in $(( $(date +%s) - start )) s (JSON: $artifacts/*/results)"
exit $rc

#!/usr/bin/env bash
# The proof that the benchmark gate works on this machine (issue 10): runs it many times with known
# answers and writes a summary table.
#   A/A     the same commit as base and candidate: 0 regressions expected, every run.
#   time    the candidate built with -p:GateCanary=time (a quarter more work in Reservation.TestSignaled):
#           Reservation_TestSignaled flagged slower, every run.
#   alloc   the candidate built with -p:GateCanary=alloc (one object per TestSignaled call), its class
#           only: the allocation increase flagged, every run.
#   noise   A/A again while a parallel build loads the machine: a pass, or exit 3 ("too noisy for a
#           verdict"), never a failure.
#
# usage: bash bench/gate-proof.sh [--runs N] [--noise-runs N] [--only aa|time|alloc|noise] [--out DIR]
# Needs a clean working tree (the A/A candidate is the working tree, the base is HEAD).
set -uo pipefail
cd "$(dirname "$0")/.."

runs=5
noise_runs=3
only=""
out=BenchmarkDotNet.Artifacts/gate-proof
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --noise-runs) noise_runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "gate-proof: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -z "$(git status --porcelain --untracked-files=no)" ] || { echo "gate-proof: the working tree has changes; commit them first (the A/A candidate must equal HEAD)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
summary=$out/proof.md
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
  echo "# Benchmark gate proof, $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD)"
  echo
  echo "CPU: $cpu ($(nproc) cores). Command: \`bash bench/gate-proof.sh --runs $runs --noise-runs $noise_runs\`."
  echo
  echo "| Experiment | Run | Exit | Expected | Decision | Row of interest | Seconds |"
  echo "|---|---:|---:|---|---|---|---:|"
} >"$summary"
bad=0

# $1 experiment, $2 run, $3 expected exits (regex), $4 row name or "", $5 out dir, rest: gate arguments
one() {
  local name=$1 run=$2 expect=$3 row=$4 dir=$5; shift 5
  local t0 rc decision line
  t0=$(date +%s)
  bash bench/gate.sh --out "$dir" "$@" >"$dir.run-$run.log" 2>&1
  rc=$?
  decision=$(grep -m1 '^gate: .*(exit [0-9])$' "$dir/gate.md" 2>/dev/null | sed 's/^gate: //; s/ (exit [0-9])$//' | tr '|' '/')
  line="-"
  if [ -n "$row" ]; then
    line=$(grep -F "| $row |" "$dir/gate.md" 2>/dev/null | awk -F'|' '{for(i=6;i<=11;i++) gsub(/^ +| +$/,"",$i); print "ratio " $6 "; per process " $7 "; p " $9 "; alloc " $10 "; " $11}' | tr '|' '/')
  fi
  if ! [[ "$rc" =~ ^($expect)$ ]]; then bad=$((bad + 1)); decision="**UNEXPECTED** $decision"; fi
  echo "| $name | $run | $rc | ${expect//|/ or } | ${decision:-see $dir.run-$run.log} | ${line:--} | $(( $(date +%s) - t0 )) |" >>"$summary"
  echo "gate-proof: $name run $run: exit $rc (expected $expect)"
}

series() { # $1 name, $2 count, $3 expected, $4 row, rest: gate arguments
  local name=$1 count=$2 expect=$3 row=$4; shift 4
  local dir=$out/$name
  one "$name" 1 "$expect" "$row" "$dir" --base HEAD --no-bdn-json "$@"
  for i in $(seq 2 "$count"); do one "$name" "$i" "$expect" "$row" "$dir" --base HEAD --no-build --no-bdn-json "$@"; done
}

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
want aa && series aa "$runs" 0 "" 
want time && series time "$runs" 1 "ReservationTestBenchmarks.Reservation_TestSignaled" --candidate-prop -p:GateCanary=time
# Allocation is exact and does not depend on the machine: the canary's class alone is enough.
want alloc && series alloc "$runs" 1 "ReservationTestBenchmarks.Reservation_TestSignaled" --candidate-prop -p:GateCanary=alloc --filter ReservationTestBenchmarks

if want noise; then
  # A/A builds first (quiet), then the runs beside a loop of full rebuilds of a copy of the solution.
  one noise 0 0 "" "$out/noise" --base HEAD --no-bdn-json
  load=$out/noise-load
  rm -rf "$load" && mkdir -p "$load"
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$load"
  ( while :; do dotnet build "$load/FenceCore.sln" -c Debug --no-incremental -nologo -clp:ErrorsOnly >/dev/null 2>&1; done ) &
  loader=$!
  sleep 20
  for i in $(seq 1 "$noise_runs"); do one "noise (parallel build)" "$i" "0|3" "" "$out/noise" --base HEAD --no-build --no-bdn-json; done
  kill "$loader" 2>/dev/null; pkill -f "$load/FenceCore.sln" 2>/dev/null; wait "$loader" 2>/dev/null
  dotnet build-server shutdown >/dev/null 2>&1
fi

echo >>"$summary"
echo "Unexpected results: $bad." >>"$summary"
cat "$summary"
if [ -z "$only" ]; then cp "$summary" bench/gate-proof.md; echo "gate-proof: summary copied to bench/gate-proof.md"; fi
[ "$bad" -eq 0 ]

#!/usr/bin/env bash
# The benchmark regression gate: base against candidate, on this machine, in one run.
#
# Builds the benchmark program twice, into separate folders: once from a base git revision and once
# from the working tree (tracked and untracked, not ignored, files). Then runs both sides interleaved
# in one process (FenceCore.Benchmarks gate-ab: each side in its own AssemblyLoadContext; every round
# runs each benchmark of the "Gate" category once per side, back to back, alternating which goes
# first), in --processes fresh processes, and compares the paired ratios with a one-sided Wilcoxon
# signed-rank test plus a threshold (gate-compare; the rules are in Gate/GateComparer.cs and the
# README). Allocations are exact and compared with the committed bench/baseline.json. It writes, under
# --out: gate.md (the table), gate.json (the same, for machines), report.md (every benchmark as a ratio
# to its .NET peer, with the CPU model: the performance targets, reported and never gated), the paired
# samples (samples-N.json), and BenchmarkDotNet's full JSON of one short run of each side (bdn/).
#
# usage: bash bench/gate.sh [--base REV] [--rounds N] [--processes N] [--threshold FRACTION] [--out DIR]
#                           [--filter TEXT]... [--candidate-prop -p:NAME=VALUE]... [--no-build]
#                           [--no-bdn-json] [--publish] [--update-alloc] [--help]
#   --base REV        the revision to compare against (default: HEAD^, the first-parent previous commit)
#   --rounds N        interleaved rounds per process, at least 3 (default 10)
#   --processes N     fresh processes, each placing code anew (default 4)
#   --threshold F     the smallest slowdown that fails, as a fraction (default 0.10: see the README)
#   --out DIR         where builds, runs and reports go (default BenchmarkDotNet.Artifacts/gate, gitignored)
#   --filter TEXT     run only the benchmarks whose Type.Method contains TEXT (and their class baselines)
#   --candidate-prop  an extra MSBuild property for the candidate build (the canaries: -p:GateCanary=time|alloc)
#   --no-build        reuse the builds a previous call left in --out
#   --no-bdn-json     skip the BenchmarkDotNet runs whose full JSON is kept for the record
#   --publish         also write bench/results-<cpu>.md and the README's performance table from this run
#   --update-alloc    measure the candidate and rewrite bench/baseline.json's allocations (review, then commit)
#
# Exit codes: 0 pass; 1 regression (slower, any allocation increase, or a gated benchmark that did not
# run); 2 bad usage, or a side that does not build or run; 3 too noisy for a verdict (the peers moved,
# or the paired ratios disagree: run again on a quieter machine).
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Tier-up without the call-counting delay: in a short in-process run the default 100 ms delay, restarted
# by every new method the harness JITs, left whole benchmarks measuring tier-0 code (130 ns instead of
# 4.5 ns for Reservation.TestSignaled). Dynamic PGO off: it instruments each process anew and chose
# different code for the two copies of the same method (an A/A run with it on flagged 4 of 71 rows,
# 0.78x to 1.42x; with it off the peers all held within 10%). The gate compares code, not PGO's luck.
export DOTNET_TC_CallCountingDelayMs=0 DOTNET_TieredPGO=0

base_rev="HEAD^"
rounds=10
processes=4
bdn_json=1
threshold=0.10
out=BenchmarkDotNet.Artifacts/gate
filters=()
candidate_props=()
no_build=0
publish=0
update_alloc=0
# One measured iteration of one side of one benchmark, in the paired harness.
iteration_ms=${FENCECORE_GATE_ITERATION_MS:-20}

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "gate: $1" >&2; exit "${2:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --base) [ $# -ge 2 ] || die "--base needs a revision"; base_rev=$2; shift 2 ;;
    --rounds) [[ "${2:-}" =~ ^[0-9]+$ ]] && [ "$2" -ge 3 ] || die "--rounds needs a whole number of at least 3 (got '${2:-}')"; rounds=$2; shift 2 ;;
    --processes) [[ "${2:-}" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || die "--processes needs a whole number of at least 1 (got '${2:-}')"; processes=$2; shift 2 ;;
    --no-bdn-json) bdn_json=0; shift ;;
    --threshold) [[ "${2:-}" =~ ^0?\.[0-9]+$ ]] || die "--threshold needs a fraction between 0 and 1, such as 0.10 (got '${2:-}')"; threshold=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a folder"; out=$2; shift 2 ;;
    --filter) [ $# -ge 2 ] || die "--filter needs a text"; filters+=("$2"); shift 2 ;;
    --candidate-prop) [[ "${2:-}" == -p:*=* ]] || die "--candidate-prop needs -p:NAME=VALUE (got '${2:-}')"; candidate_props+=("$2"); shift 2 ;;
    --no-build) no_build=1; shift ;;
    --publish) publish=1; shift ;;
    --update-alloc) update_alloc=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

start=$(date +%s)
mkdir -p "$out"
out=$(cd "$out" && pwd)
src_base=$out/src/base
src_candidate=$out/src/candidate
bench=bench/FenceCore.Benchmarks
dll_rel=$bench/bin/Release/net10.0/FenceCore.Benchmarks.dll

harness_filters=(); bdn_select=(--anyCategories Gate)
if [ ${#filters[@]} -gt 0 ]; then
  bdn_select=(--filter)
  for f in "${filters[@]}"; do harness_filters+=(--filter "$f"); bdn_select+=("*$f*"); done
fi

build() { # $1: side name, $2: source tree, rest: extra build arguments
  local side=$1 tree=$2; shift 2
  echo "== gate: build $side"
  if ! dotnet build "$tree/$bench" -c Release -nologo -clp:ErrorsOnly "$@" >"$out/build-$side.log" 2>&1; then
    tail -n 30 "$out/build-$side.log"
    die "the $side does not build (log: $out/build-$side.log)" 2
  fi
}

if [ "$no_build" -eq 0 ]; then
  rm -rf "$out/src" && mkdir -p "$src_candidate"
  # The candidate is the working tree as it stands: tracked files and untracked ones git does not ignore.
  git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$src_candidate" \
    || die "could not copy the working tree into $src_candidate"
  if [ "$update_alloc" -eq 0 ]; then
    base_sha=$(git rev-parse --verify -q "${base_rev}^{commit}") || die "the base revision '$base_rev' is not a commit in this repository (a shallow clone has no HEAD^: pass --base)"
    mkdir -p "$src_base"
    git archive "$base_sha" | tar -xf - -C "$src_base" || die "could not extract $base_rev into $src_base"
    [ -f "$src_base/$bench/FenceCore.Benchmarks.csproj" ] || die "the base revision $base_rev ($base_sha) has no $bench to build"
    echo "$base_sha" >"$out/src/base.sha"
    build "base ($base_rev = ${base_sha:0:12})" "$src_base"
  fi
  build "candidate (working tree${candidate_props[*]:+, ${candidate_props[*]}})" "$src_candidate" "${candidate_props[@]}"
else
  [ -f "$src_candidate/$dll_rel" ] || die "--no-build, but there is no candidate build under $src_candidate"
  [ "$update_alloc" -eq 1 ] || [ -f "$src_base/$dll_rel" ] || die "--no-build, but there is no base build under $src_base"
fi
base_dll=$src_base/$dll_rel
candidate_dll=$src_candidate/$dll_rel
built=$(date +%s)

# The comparator checks itself on synthetic rounds with known answers before it judges real ones.
dotnet "$candidate_dll" gate-selftest || die "the comparator's self-test failed: the gate cannot be trusted" 1

run_bdn() { # $1: base|candidate: one short BenchmarkDotNet run, kept for the record (not the decision)
  local side=$1 dll dir
  if [ "$side" = base ]; then dll=$base_dll; else dll=$candidate_dll; fi
  dir=$out/bdn/$side
  rm -rf "$dir" && mkdir -p "$dir"
  echo "== gate: BenchmarkDotNet full JSON of the $side ($(date +%T))"
  dotnet "$dll" "${bdn_select[@]}" --job short --inProcess --warmupCount 2 --iterationCount 5 \
      --iterationTime 25 --exporters fulljson --artifacts "$dir" >"$dir/run.log" 2>&1 \
    || echo "gate: warning: the $side's BenchmarkDotNet run failed (log: $dir/run.log); the verdict does not use it"
}

harness() { # $1: process number, rest: extra harness arguments; writes samples-$1.json
  local n=$1; shift
  echo "== gate: paired harness, process $n/$processes ($(date +%T))"
  dotnet "$candidate_dll" gate-ab --base "$(dirname "$base_dll")" --candidate "$(dirname "$candidate_dll")" \
      --out "$out/samples-$n.json" --rounds "$rounds" --iteration-ms "$iteration_ms" "${harness_filters[@]}" "$@" \
      >"$out/harness-$n.log" 2>&1 || { tail -n 30 "$out/harness-$n.log"; die "the paired harness failed (log: $out/harness-$n.log)" 2; }
}

rm -f "$out"/samples-*.json "$out"/harness-*.log
if [ "$update_alloc" -eq 1 ]; then
  base_dll=$candidate_dll   # both sides are the candidate: only its allocations are read
  harness 1
  dotnet "$candidate_dll" gate-compare --samples "$out/samples-1.json" --alloc-baseline bench/baseline.json --out "$out" --update-alloc
  rc=$?
  echo "gate: finished in $(( $(date +%s) - start )) s"
  exit $rc
fi

samples_args=()
for n in $(seq 1 "$processes"); do
  if [ $((n % 2)) -eq 0 ]; then harness "$n" --candidate-first; else harness "$n"; fi
  samples_args+=(--samples "$out/samples-$n.json")
done
ran=$(date +%s)

echo "== gate: compare (base $base_rev, $processes processes x $rounds rounds, threshold $threshold)"
dotnet "$candidate_dll" gate-compare "${samples_args[@]}" --alloc-baseline bench/baseline.json --out "$out" --threshold "$threshold"
rc=$?

publish_args=()
if [ "$publish" -eq 1 ]; then publish_args=(--publish-dir bench --readme README.md); fi
dotnet "$candidate_dll" gate-report "${samples_args[@]}" --out "$out/report.md" "${publish_args[@]}" || { [ "$rc" -ne 0 ] || rc=2; }

if [ "$bdn_json" -eq 1 ]; then run_bdn base; run_bdn candidate; fi

echo "gate: finished in $(( $(date +%s) - start )) s (build $(( built - start )) s, harness $(( ran - built )) s); exit $rc"
echo "gate: table $out/gate.md, report $out/report.md, samples $out/samples-*.json, BenchmarkDotNet JSON under $out/bdn"
exit $rc

#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (tokenizers only, no torch) and runs each in turn.
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default: 600 s each, every fuzz/*_fuzz.cpp
# Each target runs on one core (no -jobs), under `nice`, on a copy of its seeds
# (fuzz/corpus/TARGET -> build-fuzz/corpus-run/TARGET, so the repository's seeds stay as they are;
# crash-* reproducers there are left out), with fuzz/TARGET.dict when there is one and the
# libFuzzer flags of fuzz/TARGET.options (one a line). Logs go to build-fuzz/logs/TARGET.log and
# crash, leak, timeout and out-of-memory inputs to build-fuzz/artifacts/TARGET/. Prints one summary
# line per target and exits non-zero when any target failed. Needs clang and libFuzzer:
# scripts/setup.sh fuzz. Replay one input: build-fuzz/TARGET FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for src in fuzz/*_fuzz.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (run scripts/setup.sh fuzz)" >&2; exit 2; }
build=build-fuzz
cmake -S fuzz -B "$build" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" -j "$(nproc)" -- --no-print-directory >/dev/null ||
  { echo "fuzz.sh: build failed (run: cmake --build $build)" >&2; exit 2; }

# Pulls "name: value" from libFuzzer's final stats, or the last status line's field.
stat() { { grep -a "^stat::$2:" "$1" || true; } | tail -1 | awk '{print $2}'; }
status_field() { { grep -a -E '^#[0-9]+' "$1" || true; } | tail -1 | { grep -o -E "$2: [0-9]+" || true; } | awk '{print $2}'; }

failed=0
printf '%-24s %6s %10s %8s %6s %6s  %s\n' target secs runs exec/s cov ft result
for t in "${targets[@]}"; do
  exe=$build/$t
  if [[ ! -x $exe ]]; then
    printf '%-24s  no such target (expected fuzz/%s.cpp)\n' "$t" "$t"
    failed=1
    continue
  fi
  run_corpus=$build/corpus-run/$t
  artifacts=$build/artifacts/$t
  tmp=$build/tmp/$t
  log=$build/logs/$t.log
  rm -rf "$run_corpus" "$tmp"
  mkdir -p "$run_corpus" "$artifacts" "$tmp" "$(dirname "$log")"
  if [[ -d fuzz/corpus/$t ]]; then cp -r "fuzz/corpus/$t/." "$run_corpus/"; fi
  # Reproducers of reported bugs are kept with the seeds as crash-*; libFuzzer would stop on them.
  rm -f "$run_corpus"/crash-*
  opts=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [[ -f fuzz/$t.dict ]] && opts+=(-dict="fuzz/$t.dict")
  if [[ -f fuzz/$t.options ]]; then
    while read -r flag; do [[ -n $flag && $flag != \#* ]] && opts+=("$flag"); done <"fuzz/$t.options"
  fi
  before=$(find "$artifacts" -type f | wc -l)
  start=$(date +%s)
  rc=0
  TMPDIR=$tmp nice -n 10 "$exe" "${opts[@]}" "$run_corpus" >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  found=$(($(find "$artifacts" -type f | wc -l) - before))
  runs=$(stat "$log" number_of_executed_units)
  rate=$(stat "$log" average_exec_per_sec)
  cov=$(status_field "$log" cov)
  ft=$(status_field "$log" ft)
  if [[ $rc -eq 0 && $found -eq 0 ]]; then
    result=ok
  else
    result="FAIL (exit $rc, $found new artifact(s) in $artifacts, log $log)"
    failed=1
  fi
  printf '%-24s %6s %10s %8s %6s %6s  %s\n' "$t" "$elapsed" "${runs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "$result"
  rm -rf "$tmp"
done
exit "$failed"

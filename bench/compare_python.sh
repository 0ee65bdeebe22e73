#!/usr/bin/env bash
# gpt-bench against the same training step in PyTorch eager (bench/python/gpt_step.py), run back
# to back in alternation, ROUNDS times per dtype; prints each pair's ms/iter and ratio (C++ / Python)
# and writes bench/out/compare_python.json. Needs Debian's python3-torch.
#   bench/compare_python.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${1:-5}
THREADS=${THREADS:-$(nproc)}
mkdir -p bench/out
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "[" > bench/out/compare_python.json
first=1
for dtype in fp32 bf16; do
  for r in $(seq 1 "$ROUNDS"); do
    /usr/bin/python3 bench/python/gpt_step.py --dtype "$dtype" --threads "$THREADS" --iters 20 --json "$tmp/py.json" > /dev/null
    "$BUILD/bench/gpt-bench" --configs bench-4x256 --dtypes "$dtype" --threads "$THREADS" --iters 20 --json "$tmp/cpp.json" > /dev/null
    py=$(sed -nE 's/.*"ms_per_iter": *([0-9.]+).*/\1/p' "$tmp/py.json" | head -1)
    cpp=$(sed -nE 's/.*"ms_per_iter": *([0-9.]+).*/\1/p' "$tmp/cpp.json" | head -1)
    mfu=$(sed -nE 's/.*"mfu": *([0-9.e-]+).*/\1/p' "$tmp/cpp.json" | head -1)
    ratio=$(awk -v a="$cpp" -v b="$py" 'BEGIN { printf "%.3f", a / b }')
    printf '%s round %d: python %.1f ms, c++ %.1f ms, ratio %s, c++ MFU %.1f %%\n' "$dtype" "$r" "$py" "$cpp" "$ratio" "$(awk -v m="$mfu" 'BEGIN { print 100 * m }')"
    [ $first -eq 1 ] || echo "," >> bench/out/compare_python.json
    first=0
    printf '{"dtype": "%s", "round": %d, "python_ms": %s, "cpp_ms": %s, "ratio": %s, "cpp_mfu": %s}' \
      "$dtype" "$r" "$py" "$cpp" "$ratio" "$mfu" >> bench/out/compare_python.json
  done
done
echo "]" >> bench/out/compare_python.json

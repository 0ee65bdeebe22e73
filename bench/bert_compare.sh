#!/usr/bin/env bash
# bert-bench against the same BERT pretraining step in PyTorch eager (bench/python/bert_step.py,
# whose MLM head scores every position, as Hugging Face's BertForPreTraining), run back to back in
# alternation, ROUNDS times per config and dtype; prints each pair's ms/iter and the speed-up
# (Python / C++), of the medians and of the fastest steps (the machines are shared, and the
# fastest step is the one least disturbed), and writes bench/out/bert_compare.json. Needs
# Debian's python3-torch.
#   bench/bert_compare.sh [ROUNDS] [CONFIGS]        e.g. bench/bert_compare.sh 3 "small base"
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${1:-3}
CONFIGS=${2:-small base}
THREADS=${THREADS:-2}
ITERS=${ITERS:-10}
mkdir -p bench/out
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=bench/out/bert_compare.json
echo "[" > "$out"
first=1
ms() { sed -nE "s/.*\"$2\": *([0-9.]+).*/\1/p" "$1" | head -1; }
for config in $CONFIGS; do
  for dtype in fp32 bf16; do
    for r in $(seq 1 "$ROUNDS"); do
      /usr/bin/python3 bench/python/bert_step.py --config "$config" --dtype "$dtype" --threads "$THREADS" --iters "$ITERS" --json "$tmp/py.json" > /dev/null
      "$BUILD/bench/bert-bench" --configs "$config" --dtypes "$dtype" --heads masked --threads "$THREADS" --iters "$ITERS" --json "$tmp/cpp.json" > /dev/null
      py=$(ms "$tmp/py.json" ms_per_iter) py_min=$(ms "$tmp/py.json" ms_min)
      cpp=$(ms "$tmp/cpp.json" ms_per_iter) cpp_min=$(ms "$tmp/cpp.json" ms_min)
      speedup=$(awk -v a="$py" -v b="$cpp" 'BEGIN { printf "%.3f", a / b }')
      speedup_min=$(awk -v a="$py_min" -v b="$cpp_min" 'BEGIN { printf "%.3f", a / b }')
      printf 'bert-%s %s round %d: median python %.1f ms, c++ %.1f ms (%sx); fastest python %.1f ms, c++ %.1f ms (%sx)\n' \
        "$config" "$dtype" "$r" "$py" "$cpp" "$speedup" "$py_min" "$cpp_min" "$speedup_min"
      [ $first -eq 1 ] || echo "," >> "$out"
      first=0
      printf '{"config": "bert-%s", "dtype": "%s", "round": %d, "threads": %s, "python_ms": %s, "cpp_ms": %s, "speedup": %s, "python_ms_min": %s, "cpp_ms_min": %s, "speedup_min": %s}' \
        "$config" "$dtype" "$r" "$THREADS" "$py" "$cpp" "$speedup" "$py_min" "$cpp_min" "$speedup_min" >> "$out"
    done
  done
done
echo "]" >> "$out"

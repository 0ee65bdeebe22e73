#!/usr/bin/env bash
# The training and inference targets of issues 5 (GPT-2 124M step) and 7 (ViT) as alternating
# pairs: each round runs the C++ benchmark, then its PyTorch-eager baseline, on the same threads,
# and the speed-up is taken pair by pair. This machine's speed drifts by ±15 % within minutes, so
# one round (bench/targets.sh) cannot judge a 5 % gap; the median of several pairs can.
#   bench/pairs.sh [ROUNDS] [gpt|vit|all]      (BUILD=build THREADS=$(nproc); default 5 all)
# Writes bench/out/pairs-WHAT.json: every figure of every round, and per figure the medians and the
# range of the pair-by-pair ratios. About 2 minutes a round for gpt, 3 for vit, on 2 cores.
# Needs Debian's python3-torch and python3-torchvision (scripts/setup.sh bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
WHAT=${2:-all}
BUILD=${BUILD:-build}
THREADS=${THREADS:-$(nproc)}
case "$WHAT" in gpt|vit|all) ;; *) echo "pairs.sh: error: WHAT must be gpt, vit or all, got '$WHAT'" >&2; exit 2 ;; esac
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "pairs.sh: error: ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }
mkdir -p bench/out
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GPT2=(--n-layer 12 --n-head 12 --n-embd 768 --block-size 256 --batch-size 4 --vocab-size 50304 --activation gelu_tanh)

# One line per figure and round: {round, figure, cpp, python, speedup}; speed-up = how many times
# faster the C++ run was (time ratio, or images/s ratio).
: > "$tmp/rows.jsonl"
for r in $(seq 1 "$ROUNDS"); do
  if [[ "$WHAT" != vit ]]; then
    "$BUILD/bench/gpt-bench" --configs gpt2-4x256 --dtypes fp32,bf16 --iters 3 --warmup 1 --threads "$THREADS" \
      --json "$tmp/g.json" > /dev/null
    for d in fp32 bf16; do
      /usr/bin/python3 bench/python/gpt_step.py "${GPT2[@]}" --dtype "$d" --iters 3 --warmup 1 --threads "$THREADS" \
        --json "$tmp/gp_$d.json" > /dev/null
      jq -c --arg r "$r" --arg d "$d" --slurpfile p "$tmp/gp_$d.json" \
        '.[] | select(.dtype == $d) | {round: ($r | tonumber), figure: ("gpt2 train step ms, " + $d),
          cpp: .ms_per_iter, python: $p[0].ms_per_iter, speedup: ($p[0].ms_per_iter / .ms_per_iter)}' \
        "$tmp/g.json" >> "$tmp/rows.jsonl"
    done
  fi
  if [[ "$WHAT" != gpt ]]; then
    "$BUILD/bench/vit-bench" --iters 3 --threads "$THREADS" --json "$tmp/v.json" > /dev/null
    /usr/bin/python3 bench/python/vit_bench.py --iters 3 --threads "$THREADS" --json "$tmp/vp.json" > /dev/null
    jq -c --arg r "$r" --slurpfile p "$tmp/vp.json" '.[] | . as $c |
        ($p[0][] | select(.bench == $c.bench and .dtype == $c.dtype)) as $q |
        if $c.bench == "vit_b16_infer"
        then {round: ($r | tonumber), figure: ("vit-b16 infer images/s, " + $c.dtype), cpp: $c.images_per_s,
              python: $q.images_per_s, speedup: ($c.images_per_s / $q.images_per_s)}
        else {round: ($r | tonumber), figure: ("small vit train step ms, " + $c.dtype), cpp: $c.ms_per_iter,
              python: $q.ms_per_iter, speedup: ($q.ms_per_iter / $c.ms_per_iter)} end' \
      "$tmp/v.json" >> "$tmp/rows.jsonl"
  fi
  echo "round $r of $ROUNDS done" >&2
done

out="bench/out/pairs-$WHAT.json"
jq -s --arg date "$(date -u +%FT%TZ)" --arg threads "$THREADS" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  {date: $date, threads: ($threads | tonumber), rounds: (map(.round) | max),
   summary: (group_by(.figure) | map({figure: .[0].figure, cpp_median: (map(.cpp) | median),
     python_median: (map(.python) | median), speedup_median: (map(.speedup) | median),
     speedup_min: (map(.speedup) | min), speedup_max: (map(.speedup) | max)})),
   pairs: .}' "$tmp/rows.jsonl" > "$out"
jq -r '.summary[] | "\(.figure): C++ \(.cpp_median * 10 | round / 10), Python \(.python_median * 10 | round / 10), speed-up \(.speedup_median * 100 | round / 100)x (\(.speedup_min * 100 | round / 100)-\(.speedup_max * 100 | round / 100))"' "$out"
echo "wrote $out"

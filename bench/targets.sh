#!/usr/bin/env bash
# The CPU speed targets of issues 5 (GPT-2 124M) and 7 (ViT), each C++ program run back to back
# with its PyTorch-eager baseline on the same threads, so that the ratio holds while the machine
# drifts. Writes bench/out/targets.json (every result, C++ and Python) and prints a summary.
#   bench/targets.sh            (BUILD=build THREADS=$(nproc) ITERS=3)
# Needs Debian's python3-torch and python3-torchvision (scripts/setup.sh bench). About 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-$(nproc)}
ITERS=${ITERS:-3}
mkdir -p bench/out
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GPT2=(--n-layer 12 --n-head 12 --n-embd 768 --block-size 256 --batch-size 4 --vocab-size 50304 --activation gelu_tanh)

echo "GPT-2 124M training step, batch 4 x 256"
"$BUILD/bench/gpt-bench" --configs gpt2-4x256 --dtypes fp32,bf16 --iters "$ITERS" --warmup 1 --threads "$THREADS" \
  --json "$tmp/gpt_train.json" | grep -E '^gpt2'
for d in fp32 bf16; do
  /usr/bin/python3 bench/python/gpt_step.py "${GPT2[@]}" --dtype "$d" --iters "$ITERS" --warmup 1 --threads "$THREADS" \
    --json "$tmp/gpt_train_py_$d.json" > /dev/null
  echo "  python $d: $(jq -r '.ms_per_iter | floor' "$tmp/gpt_train_py_$d.json") ms/iter"
done

echo "GPT-2 124M generation, batch 1, 128 new tokens"
"$BUILD/bench/gpt-bench" --generate --dtypes fp32,bf16 --iters "$ITERS" --threads "$THREADS" --json "$tmp/gpt_gen.json" |
  grep -E '^generate'
for d in fp32 bf16 bf16-weights; do
  /usr/bin/python3 bench/python/gpt_generate.py --dtype "$d" --reps "$ITERS" --threads "$THREADS" \
    --json "$tmp/gpt_gen_py_$d.json" > /dev/null
  echo "  python $d: $(jq -r '.tokens_per_s * 10 | floor / 10' "$tmp/gpt_gen_py_$d.json") tokens/s"
done

echo "ViT-B/16 inference (batch 8) and small-ViT training step (batch 64)"
"$BUILD/bench/vit-bench" --iters "$ITERS" --threads "$THREADS" --json "$tmp/vit.json"
/usr/bin/python3 bench/python/vit_bench.py --iters "$ITERS" --threads "$THREADS" --json "$tmp/vit_py.json"

jq -n --slurpfile gt "$tmp/gpt_train.json" --slurpfile gt32 "$tmp/gpt_train_py_fp32.json" \
  --slurpfile gt16 "$tmp/gpt_train_py_bf16.json" --slurpfile gg "$tmp/gpt_gen.json" \
  --slurpfile gg32 "$tmp/gpt_gen_py_fp32.json" --slurpfile gg16 "$tmp/gpt_gen_py_bf16.json" \
  --slurpfile gg16w "$tmp/gpt_gen_py_bf16-weights.json" --slurpfile v "$tmp/vit.json" --slurpfile vp "$tmp/vit_py.json" \
  --arg threads "$THREADS" --arg date "$(date -u +%FT%TZ)" \
  '{date: $date, threads: ($threads | tonumber),
    gpt2_train_step: {cpp: $gt[0], python: [$gt32[0], $gt16[0]]},
    gpt2_generate: {cpp: $gg[0], python: [$gg32[0], $gg16[0], $gg16w[0]]},
    vit: {cpp: $v[0], python: $vp[0]}}' > bench/out/targets.json
echo "wrote bench/out/targets.json"

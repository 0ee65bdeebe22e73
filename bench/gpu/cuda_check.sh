#!/usr/bin/env bash
# Builds attnzoo against the CUDA LibTorch of a machine's PyTorch install (pip wheels ship the C++
# headers and CMake config) and records GPU numbers: gpt-bench on the GPU (GPT-2 124M at 12 x 1024,
# nanoGPT's shakespeare-char) in fp32 and bf16, and gpt-train end to end with --device cuda.
#   usage: bench/gpu/cuda_check.sh [OUTDIR] [DEBS_DIR]
# DEBS_DIR: Debian packages to unpack under /tmp/deps when the machine lacks them (nlohmann-json3-dev,
# libcli11-dev, libpcre2-dev, libutf8proc-dev, pkgconf-bin and their libraries; `apt-get download` them).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/out/gpu}
DEBS=${2:-}
mkdir -p "$OUT"
PREFIX=""
if [ -n "$DEBS" ]; then
  mkdir -p /tmp/deps
  for f in "$DEBS"/*.deb; do dpkg -x "$f" /tmp/deps; done
  export PKG_CONFIG_SYSROOT_DIR=/tmp/deps
  export PKG_CONFIG_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deps/usr/share/pkgconfig
  export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  PREFIX="/tmp/deps/usr;"
  command -v pkg-config > /dev/null || export PKG_CONFIG=/tmp/deps/usr/bin/pkgconf
fi
TORCH_CMAKE=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } | tee "$OUT/gpu.txt"

start=$(date +%s)
if ! cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="${PREFIX}${TORCH_CMAKE}" \
     -DATTNZOO_TESTS=OFF -DATTNZOO_WITH_OPENCV=OFF -DATTNZOO_WITH_DNNL=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
     > "$OUT/cmake.log" 2>&1; then
  tail -40 "$OUT/cmake.log"; exit 1
fi
if ! cmake --build build-cuda -j "$(nproc)" --target gpt-train gpt-bench tokenize > "$OUT/build.log" 2>&1; then
  grep -m 30 -B2 -A6 "error" "$OUT/build.log"; exit 1
fi
echo "build: $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"

build-cuda/bench/gpt-bench --device cuda --configs gpt2-1024,shakespeare-char --dtypes bf16,fp32 --iters 20 \
  --json "$OUT/gpt_bench_cuda.json" | tee "$OUT/gpt_bench.txt"

G=build-cuda/apps/gpt-train/gpt-train
$G prepare --input data/devil.txt --out /tmp/devil_char > /dev/null
$G train --data /tmp/devil_char --out /tmp/run_char --preset shakespeare-char --device cuda --dtype bf16 \
  --max-iters 1000 --lr-decay-iters 1000 --eval-interval 500 --eval-iters 50 2>&1 | tail -4 | tee "$OUT/train_char.txt"
$G sample --run /tmp/run_char --device cuda --max-new-tokens 300 --seed 7 | tee "$OUT/sample_char.txt"
$G prepare --input data/devil.txt --out /tmp/devil_gpt2 --tokenizer gpt2 --gpt2-dir data/gpt2 > /dev/null
$G train --data /tmp/devil_gpt2 --out /tmp/run_gpt2 --n-layer 6 --n-head 6 --n-embd 384 --block-size 256 \
  --batch-size 32 --device cuda --dtype bf16 --max-iters 300 --lr-decay-iters 300 --eval-interval 150 --eval-iters 20 \
  2>&1 | tail -4 | tee "$OUT/train_gpt2.txt"
$G sample --run /tmp/run_gpt2 --device cuda --max-new-tokens 100 --seed 7 | tee "$OUT/sample_gpt2.txt"
cp /tmp/run_char/metrics.jsonl "$OUT/metrics_char.jsonl"

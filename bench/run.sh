#!/usr/bin/env bash
# Runs the benchmarks and writes JSON under bench/out/: the C++ GPT step in fp32 and bf16, and the
# same step in PyTorch eager (Python, Debian's python3-torch) when it is installed, back to back.
# Then bench/tokenizers.sh: tokenizer speed on one thread, against npm tiktoken when node is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
mkdir -p bench/out
"$BUILD/bench/gpt-bench" --configs bench-4x256,shakespeare-char-cpu --dtypes fp32,bf16 --json bench/out/gpt_cpp.json
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  for dtype in fp32 bf16; do
    /usr/bin/python3 bench/python/gpt_step.py --dtype "$dtype" --threads "$(nproc)" --json "bench/out/gpt_python_$dtype.json"
  done
else
  echo "bench: python3-torch not installed; skipping the Python baseline (apt-get install python3-torch)"
fi
# Tokenizers on one thread, against npm tiktoken's WASM encoder when node is installed.
bench/tokenizers.sh

#!/usr/bin/env bash
# Tokenizer speed on one thread (issue 3's targets): builds tokenizer-bench, times npm tiktoken's
# WASM encoder on the same text first when node and tiktoken are there (bench/node/tiktoken_encode.mjs),
# then runs tokenizer-bench, which compares speed and the gpt2 ids token for token, prints its table
# and writes bench/out/tokenizers.json (tiktoken's own line: bench/out/tiktoken.json).
#   bench/tokenizers.sh [REPEATS]    (env: BUILD=build, TEXT=data/kjv.txt, NODE_MODULES=dir with tiktoken)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
REPEATS=${1:-5}
TEXT=${TEXT:-data/kjv.txt}
mkdir -p bench/out
cmake --build "$BUILD" --target tokenizer-bench

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
compare=()
node_flags=()
[ -z "${NODE_MODULES:-}" ] || node_flags=(--node-modules "$NODE_MODULES")
if ! command -v node > /dev/null; then
  echo "tokenizers: node not found; skipping the tiktoken comparison (apt-get install nodejs, then"
  echo "  (cd bench/node && npm install --no-save tiktoken@1.0.22) unless scripts/setup.sh has unpacked data/npm/tiktoken-1.0.22)"
elif node bench/node/tiktoken_encode.mjs --text "$TEXT" --repeats "$REPEATS" --dump-ids "$tmp/tiktoken_ids.u32" \
       --out bench/out/tiktoken.json "${node_flags[@]}" > /dev/null; then
  compare=(--tiktoken-result bench/out/tiktoken.json --compare-ids "$tmp/tiktoken_ids.u32")
else
  echo "tokenizers: the tiktoken run failed (above); comparing nothing. HINT: (cd bench/node && npm install --no-save tiktoken@1.0.22)"
fi

"$BUILD/bench/tokenizer-bench" --text "$TEXT" --repeats "$REPEATS" --out bench/out/tokenizers.json "${compare[@]}"

if [ ${#compare[@]} -gt 0 ]; then
  # The verdicts, from the JSON (exit non-zero when the ids differ: a speed figure of wrong output means nothing).
  ids=$(sed -n '/"gpt2_ids_vs_tiktoken"/,/}/p' bench/out/tokenizers.json)
  grep -q '"equal": true' <<< "$ids" || {
    echo "tokenizers: gpt2 ids differ from tiktoken's (bench/out/tokenizers.json, gpt2_ids_vs_tiktoken)" >&2
    exit 1
  }
  ratio=$(sed -nE 's/^ *"ratio": *([0-9.eE+-]+).*/\1/p' bench/out/tokenizers.json | head -1)
  printf 'tokenizers: gpt2 on %s (whole text), ours / tiktoken-wasm = %.2fx, the same %s ids\n' "$TEXT" "$ratio" \
    "$(sed -nE 's/.*"ours": *([0-9]+).*/\1/p' <<< "$ids")"
fi

#!/usr/bin/env bash
# End-to-end test of replacing a checkpoint directory (engine/checkpoint.cpp): a run whose second
# evaluation beats the first replaces checkpoints/best. Run three ways: as the system runs it
# (renameat2 with RENAME_EXCHANGE), with renameat2 failing with EINVAL as on filesystems without
# the exchange (the fallback: the old copy moved aside first), and failing with EIO (the run stops
# with a one-line error naming the checkpoint, and the earlier best is intact).
#   usage: checkpoint_replace_e2e.sh PATH/TO/gpt-train PATH/TO/librenameat2_fails.so
set -uo pipefail
GPT=$(readlink -f "$1")
SHIM=$(readlink -f "$2")
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
source "$HERE/e2e_lib.sh"
WORK=$(mktemp -d /tmp/ckpt-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

for i in $(seq 1 400); do echo "line $i: the quick brown fox $(( (i * 7919) % 1000 )) jumps over the lazy dog"; done > corpus.txt
"$GPT" prepare --input corpus.txt --out data > /dev/null || { echo "FAIL prepare"; exit 1; }
RUN=(train --data data --n-layer 1 --n-head 2 --n-embd 32 --block-size 32 --batch-size 8 --eval-iters 4 --threads 2
     --seed 3 --lr 3e-3 --max-iters 20 --lr-decay-iters 20 --eval-interval 10)
best_step() { sed -nE 's/^  "step": ([0-9]+).*/\1/p' "$1/checkpoints/best/state.json"; }  # the top-level key
leftovers() { ls -A "$1/checkpoints" | grep -E '\.tmp-|\.old' || true; }

for way in exchange fallback; do
  if [ "$way" = exchange ]; then
    "$GPT" "${RUN[@]}" --out "run_$way" > "log_$way.txt" 2>&1
  else
    RENAMEAT2_LOG="$WORK/calls.txt" LD_PRELOAD="$SHIM" "$GPT" "${RUN[@]}" --out "run_$way" > "log_$way.txt" 2>&1
  fi
  check "$way: the run succeeds" test $? -eq 0
  check "$way: best was saved at steps 10 and 20" test "$(grep -c 'best, saved' "log_$way.txt")" -eq 2
  check "$way: best now holds step 20" test "$(best_step "run_$way")" = 20
  check "$way: best is complete" test -s "run_$way/checkpoints/best/model.safetensors" -a -s "run_$way/checkpoints/best/optimizer.safetensors"
  check "$way: nothing left over" test -z "$(leftovers "run_$way")"
done
check "fallback: renameat2 was asked and refused" grep -q "checkpoints/best" calls.txt
check "fallback: the same weights as the exchange" cmp -s run_exchange/checkpoints/best/model.safetensors run_fallback/checkpoints/best/model.safetensors

# Another error: the run stops with the checkpoint named; the earlier best and every step's checkpoint stay.
RENAMEAT2_ERRNO=5 LD_PRELOAD="$SHIM" "$GPT" "${RUN[@]}" --out run_eio > log_eio.txt 2> err_eio.txt
check "EIO: non-zero exit" test $? -ne 0
check "EIO: one line naming checkpoints/best" test "$(wc -l < err_eio.txt)" -eq 1 -a -n "$(grep 'checkpoints/best' err_eio.txt)"
check "EIO: the earlier best (step 10) is intact" test "$(best_step run_eio)" = 10
check "EIO: step 20's checkpoint was written" test -s run_eio/checkpoints/step-000020/model.safetensors
check "EIO: nothing left over" test -z "$(leftovers run_eio)"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

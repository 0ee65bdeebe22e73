#!/usr/bin/env bash
# End-to-end test of seq-lab as a user runs it, with tiny budgets: every experiment writes its JSON
# (checked field by field) and PNGs; bad flags exit non-zero with one line naming the flag; and
# one check that could fail: the Transformer learns to copy held-out sequences in a small budget.
#   usage: seq_lab_e2e.sh PATH/TO/seq-lab [DATA_DIR]   (DATA_DIR unused: the tasks are synthetic)
set -uo pipefail
LAB=$(readlink -f "$1")
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
source "$HERE/e2e_lib.sh"
WORK=$(mktemp -d /tmp/seq-lab-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# jq-free JSON checks: node is not guaranteed, python is not part of the product; grep the
# single-line --json output instead.
has() { grep -q -- "$2" "$1"; }
TINY=(--threads 1 --seed 3 --test-size 100)

# --- recall: 2 distances x 5 models, a few steps each
check "recall tiny sweep" "$LAB" recall "${TINY[@]}" --steps 5 --distances 3,6 --out r --json > recall.json
check "recall.json written" test -s r/recall.json
check "recall PNG written" test -s r/recall.png
check "recall JSON has the table" has recall.json '"accuracy":{"lstm":\[[0-9.e-]*,[0-9.e-]*\],"lstm-hard":\[.*"transformer":\[[0-9.e-]*,[0-9.e-]*\]'
check "recall JSON has chance 1/8" has recall.json '"chance":0.125'
check "recall JSON has 10 results" test "$(grep -o '"distance":' recall.json | wc -l)" -eq 10
check "recall JSON has train_seconds" has recall.json '"train_seconds":'

# --- seq2seq: the learning check (could fail): a Transformer copies held-out sequences
check "seq2seq copy" "$LAB" seq2seq --task copy "${TINY[@]}" --steps 150 --models transformer --min-len 3 --max-len 5 --out s --json > copy.json
check "seq2seq JSON fields" has copy.json '"held_out":true.*"exact_match":.*"task":"copy"'
em=$(grep -o '"exact_match":[0-9.e-]*' copy.json | head -1 | cut -d: -f2)
if awk -v e="${em:-0}" 'BEGIN { exit !(e >= 0.9) }'; then pass "Transformer copies held-out sequences (exact match $em >= 0.9)"
else fail "Transformer copies held-out sequences (exact match ${em:-none} < 0.9)"; fi
check "cross-attention heatmap" test -s s/seq2seq-copy-transformer-attention.png
check "seq2seq reverse, both models" "$LAB" seq2seq --task reverse "${TINY[@]}" --steps 5 --out s > /dev/null
check "reverse heatmaps" test -s s/seq2seq-reverse-transformer-attention.png -a -s s/seq2seq-reverse-lstm-soft-attention.png
check "reverse JSON" has s/seq2seq-reverse.json '"attention_on_expected_source"'

# --- masks and local-vs-global
check "masks" "$LAB" masks "${TINY[@]}" --steps 5 --distance 6 --out m --json > masks.json
for k in full causal local; do
  check "mask-$k.png and attention-$k.png" test -s m/mask-$k.png -a -s m/attention-$k.png
done
check "masks JSON" has masks.json '"mask":"causal"'
check "local-vs-global" "$LAB" local-vs-global "${TINY[@]}" --steps 5 --length 24 --window 2 --far-min 10 --out l --json > lg.json
check "local-vs-global JSON" has lg.json '"attention":"local".*"far_accuracy":.*"forward_ms":'
check "local-vs-global receptive field" has lg.json '"local_receptive_field":4'

# --- bad input: one line naming the flag, non-zero exit
expect_error "unknown --task" "--task" "$LAB" seq2seq --task rot13 --out bad
expect_error "malformed --distances" "--distances" "$LAB" recall --distances 5,x,10 --out bad
expect_error "trailing comma in --distances" "--distances" "$LAB" recall --distances 5,10, --out bad
expect_error "negative distance" "--distances" "$LAB" recall --distances 5,-1 --out bad
expect_error "--steps 0" "--steps" "$LAB" recall --steps 0 --out bad
expect_error "--steps -3" "--steps" "$LAB" masks --steps -3 --out bad
expect_error "unknown model" "--models" "$LAB" recall --models rnn,gru --out bad
expect_error "--far-min beyond the sequence" "--far-min" "$LAB" local-vs-global --length 10 --far-min 20 --out bad
check "bad flags wrote nothing" test ! -e bad
expect_error "unwritable --out" "--out" "$LAB" masks --steps 1 --out /proc/seq-lab-out

echo "$failures failure(s)"
exit $((failures > 0))

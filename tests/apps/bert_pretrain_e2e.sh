#!/usr/bin/env bash
# End-to-end test of bert-pretrain as a user runs it: prepare (trained and given vocabularies) ->
# train -> checkpoint -> resume (same losses as straight through) -> eval -> fill-mask (a run and a
# Hugging Face directory; --json one object per mask) -> export --format hf -> fill-mask on the
# export (same answer) -> finetune a classifier (single sentences and pairs); the sanity check of
# the BERT repository (a tiny model overfits a small sample: MLM accuracy >= 0.95, NSP 1.0); and
# the bad inputs of issue 6, each of which must exit non-zero with a one-line error naming the
# file or flag and leave files untouched.
#   usage: bert_pretrain_e2e.sh PATH/TO/bert-pretrain [DATA_DIR] [TEST_DATA_DIR]
set -uo pipefail
BERT=$(readlink -f "$1")
DATA=$(readlink -f "${2:-data}")
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
TESTDATA=$(readlink -f "${3:-$HERE/../data}")
source "$HERE/e2e_lib.sh"
WORK=$(mktemp -d /tmp/bert-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# A small corpus made here: 60 documents of 3..8 sentences, one of a single sentence (skipped).
awk 'BEGIN {
  srand(7);
  split("the king of france spoke to his people in the land and the queen of england said that water was good", w, " ");
  for (d = 1; d <= 60; d++) {
    n = 3 + int(rand() * 6);
    for (s = 1; s <= n; s++) {
      line = "document " d " sentence " s ":";
      for (k = 0; k < 4 + int(rand() * 8); k++) line = line " " w[1 + int(rand() * 20)];
      print line ".";
    }
    print "";
  }
  print "a lonely document of one sentence.";
}' > corpus.txt
train_losses() { grep '"split":"train"' "$1/metrics.jsonl" | sed -E 's/.*"loss":([^,]*),.*"step":([0-9]+).*/\2 \1/' | sort -n; }
json_field() { sed -E "s/.*\"$2\":([^,}]*).*/\1/" "$1"; }

# --- prepare
check "prepare --train-vocab" "$BERT" prepare --input corpus.txt --train-vocab 300 --out data --max-seq-len 32 > prep.txt
check "prepare wrote meta.json, train/val.safetensors" test -s data/meta.json -a -s data/train.safetensors -a -s data/val.safetensors
check "prepare counted the skipped one-sentence document" grep -q "1 skipped: fewer than 2 sentences" prep.txt
check "meta.json has the WordPiece tokenizer" grep -q '"type": "wordpiece"' data/meta.json
check "prepare --vocab bert-base-uncased" "$BERT" prepare --input corpus.txt --vocab "$DATA/bert-base-uncased/vocab.txt" --out data_bbu --max-seq-len 32 > /dev/null
check "bert-base-uncased vocab has 30522 tokens" grep -q '"vocab_size": 30522' data_bbu/meta.json

# --- straight run vs stopped-and-resumed run (a tiny model, 12 steps)
TINY=(--preset tiny --batch-size 8 --eval-interval 4 --eval-iters 2 --checkpoint-interval 4 --lr 2e-3 --warmup-iters 2 --lr-decay-iters 12 --threads 1 --seed 3)
check "train 12 steps" "$BERT" train --data data --out run_a "${TINY[@]}" --max-iters 12 > log_a.txt
check "checkpoint files" test -s run_a/checkpoints/step-000012/model.safetensors -a -s run_a/checkpoints/step-000012/state.json
check "metrics.jsonl has mlm_loss, mlm_acc, nsp_loss, nsp_acc" grep -q '"mlm_acc":.*"mlm_loss":.*"nsp_acc":.*"nsp_loss":.*"split":"train"' run_a/metrics.jsonl
check "val rows have the same metrics" grep -q '"mlm_acc":.*"nsp_loss":.*"split":"val"' run_a/metrics.jsonl
check "MLM/NSP curves (PNG)" test -s run_a/mlm_nsp_loss.png -a -s run_a/mlm_nsp_accuracy.png
check "train 8 steps" "$BERT" train --data data --out run_b "${TINY[@]}" --max-iters 8 > /dev/null
check "resume to 12 steps" "$BERT" train --out run_b --resume --max-iters 12 > log_b.txt
check "resume said where it resumed" grep -q "resuming from .*step-000008" log_b.txt
if [ -n "$(train_losses run_a)" ] && [ "$(train_losses run_a)" = "$(train_losses run_b)" ]; then
  pass "resumed run logs the same train losses bit for bit"
else
  fail "resumed run logs the same train losses bit for bit"; diff <(train_losses run_a) <(train_losses run_b) | head
fi
if cmp -s run_a/checkpoints/step-000012/model.safetensors run_b/checkpoints/step-000012/model.safetensors; then
  pass "resumed model is bit-identical"; else fail "resumed model is bit-identical"; fi
check "--dump-config" bash -c "'$BERT' train --data data --out unused --dump-config | grep -q '\"hidden_size\": 256'"
check "--dump-config wrote nothing" test ! -e unused

# --- eval, fill-mask, export
"$BERT" eval --run run_a --data data --json > eval.json
check "eval --json" grep -qE '"mlm_acc":[0-9.e-]+,"mlm_loss":[0-9.e-]+,"nsp_acc":[0-9.e-]+,"nsp_loss":[0-9.e-]+,"pairs":[0-9]+' eval.json
"$BERT" fill-mask --run run_a --text "the king of [MASK] spoke." --top-k 3 --json > fm.json
check "fill-mask --json: one object per mask, in the issue's shape" \
  grep -qE '^\{"mask_index":4,"candidates":\[\{"token":"[^"]+","id":[0-9]+,"prob":[0-9.e-]+\},\{"token":"[^"]+","id":[0-9]+,"prob":[0-9.e-]+\},\{"token":"[^"]+","id":[0-9]+,"prob":[0-9.e-]+\}\]\}$' fm.json
check "fill-mask: one line for one mask" test "$(wc -l < fm.json)" -eq 1
"$BERT" fill-mask --run run_a --text "[MASK] king of [MASK] spoke." --json > fm2.json
check "fill-mask: two masks, two objects" test "$(grep -c mask_index fm2.json)" -eq 2
"$BERT" fill-mask --run run_a --text "the king of [MASK] spoke." --top-k 3 --json --dtype bf16 > fm_bf16.json
check "fill-mask --dtype bf16 (autocast): its first candidate is among the fp32 top 3" \
  grep -qF "$(grep -o '"token":"[^"]*"' fm_bf16.json | head -1)" fm.json
check "fill-mask --dtype is checked" bash -c "! '$BERT' fill-mask --run run_a --text 'a [MASK].' --dtype fp16 2> dt.err && grep -q -- '--dtype' dt.err"
check "fill-mask text output" bash -c "'$BERT' fill-mask --run run_a --text 'the [MASK] said.' | grep -q '^best: '"
check "fill-mask --init-from hf: (the reference BERT of tests/data)" \
  bash -c "'$BERT' fill-mask --init-from hf:'$TESTDATA/hf_bert_tiny' --text 'the king [MASK] .' --json | grep -q '\"mask_index\":3'"
check "export --format hf" "$BERT" export --run run_a --format hf --out hf_a > /dev/null
check "export wrote the Hub files" test -s hf_a/config.json -a -s hf_a/model.safetensors -a -s hf_a/vocab.txt -a -s hf_a/tokenizer_config.json
check "export: BertForPreTraining config" grep -q '"BertForPreTraining"' hf_a/config.json
"$BERT" fill-mask --init-from hf:hf_a --text "the king of [MASK] spoke." --top-k 3 --json > fm_hf.json
check "fill-mask on the export gives the run's answer" cmp -s fm.json fm_hf.json
check "continue pretraining from the export (--init-from)" "$BERT" train --data data --out run_hf --init-from hf:hf_a --max-iters 2 --batch-size 4 --eval-iters 1 --threads 1 > /dev/null

# --- fine-tuning: which of two words a sentence holds; single sentences and pairs
for i in $(seq 1 40); do
  if [ $((i % 2)) -eq 0 ]; then echo -e "the king spoke to the people $i\tking"; else echo -e "the water was good in the land $i\twater"; fi
done > train.tsv
{ echo -e "text\tlabel"; head -n 12 train.tsv; } > dev.tsv
check "finetune --task classify" "$BERT" finetune --task classify --train train.tsv --dev dev.tsv --run run_a --out clf \
  --max-iters 30 --batch-size 8 --lr 3e-3 --threads 1 --json > ft.json
check "finetune --json reports dev accuracy" grep -qE '"dev_accuracy":[0-9.e-]+' ft.json
check "metrics.jsonl has accuracy" grep -q '"accuracy":' clf/metrics.jsonl
paste <(cut -f1 train.tsv) <(cut -f1 train.tsv | sed 's/the //') <(cut -f2 train.tsv) > pairs.tsv
check "finetune on sentence pairs" "$BERT" finetune --train pairs.tsv --dev pairs.tsv --run run_a --out clf_pairs --max-iters 4 --batch-size 8 --threads 1 > /dev/null
check "export a classifier" "$BERT" export --run clf --format hf --out hf_clf > /dev/null
check "classifier export has id2label" grep -q '"id2label"' hf_clf/config.json

# --- the sanity check of the BERT repository: a tiny model overfits a small sample
awk 'NR <= 60' corpus.txt > small.txt
"$BERT" prepare --input small.txt --train-vocab 300 --out small --max-seq-len 32 --val-fraction 0 > /dev/null
"$BERT" train --data small --out overfit --preset tiny --hidden-size 64 --intermediate-size 128 --num-heads 4 --dropout 0 \
  --batch-size 16 --max-iters 1000 --lr 3e-3 --warmup-iters 20 --weight-decay 0 --eval-interval 1000 --eval-iters 2 --threads 1 > /dev/null
"$BERT" eval --run overfit --data small --split train --json > overfit.json
if awk -v a="$(json_field overfit.json mlm_acc)" -v n="$(json_field overfit.json nsp_acc)" 'BEGIN { exit !(a >= 0.95 && n == 1) }'; then
  pass "overfits a small sample: $(cat overfit.json)"
else
  fail "overfits a small sample (MLM acc >= 0.95, NSP acc 1.0): $(cat overfit.json)"
fi

# --- bad inputs: non-zero exit, one line naming the file or flag, nothing changed
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nking\n' > no_mask_vocab.txt
expect_error "vocab without [MASK]" "no_mask_vocab.txt: no [MASK] token" "$BERT" prepare --input corpus.txt --vocab no_mask_vocab.txt --out bad1
check "nothing written for a bad vocab" test ! -e bad1
printf 'one sentence.\n\nanother lonely one.\n' > short_docs.txt
expect_error "only one-sentence documents" "short_docs.txt: need at least 2 documents" "$BERT" prepare --input short_docs.txt --train-vocab 100 --out bad2
expect_error "missing input file" "nope.txt" "$BERT" prepare --input nope.txt --train-vocab 100 --out bad3
expect_error "an unknown flag: one line naming it" "--no-such-flag" "$BERT" train --data data --out bad9 --no-such-flag
: > empty.txt
expect_error "empty input file" "empty.txt: no sentences" "$BERT" prepare --input empty.txt --train-vocab 100 --out bad4
expect_error "--vocab and --train-vocab" "--train-vocab" "$BERT" prepare --input corpus.txt --out bad5
before=$(tree_sum data)
expect_error "prepare over a non-empty --out" "exists and is not empty" "$BERT" prepare --input corpus.txt --train-vocab 300 --out data
check "data left untouched" test "$(tree_sum data)" = "$before"
expect_error "data directory without meta.json" "nodata/meta.json" "$BERT" train --data nodata --out bad6 --preset tiny
expect_error "data longer than the model's positions" "max_seq_len 32 is longer than the model's 16 positions" \
  "$BERT" train --data data --out bad7 --preset tiny --max-position-embeddings 16
expect_error "--init-from with another vocabulary" "its vocabulary differs" "$BERT" train --data data_bbu --out bad8 --init-from hf:hf_a
expect_error "fill-mask without [MASK]" "--text: no [MASK]" "$BERT" fill-mask --run run_a --text "no mask here"
long=$(printf 'king %.0s' $(seq 1 80))
expect_error "fill-mask text longer than the positions" "--text: 83 tokens, more than the model's 64 positions" \
  "$BERT" fill-mask --run run_a --text "$long [MASK]"
expect_error "fill-mask on a classifier" "has no MLM head" "$BERT" fill-mask --run clf --text "the [MASK]"
printf 'the king spoke\tking\nthe water\t\n' > missing_label.tsv
expect_error "TSV with a missing label" "missing_label.tsv:2: missing label" "$BERT" finetune --train missing_label.tsv --dev dev.tsv --run run_a --out bad9
printf 'the king spoke\tqueen\n' > unknown_label.tsv
expect_error "dev TSV with an unknown label" "unknown_label.tsv:1: label 'queen' is not one of the training labels (king, water)" \
  "$BERT" finetune --train train.tsv --dev unknown_label.tsv --run run_a --out bad10
printf 'a\tb\tc\td\n' > four.tsv
expect_error "malformed TSV" "four.tsv:1: expected 2 or 3 tab-separated fields" "$BERT" finetune --train four.tsv --dev dev.tsv --run run_a --out bad11
expect_error "--max-seq-len beyond the positions" "--max-seq-len must be in [5, 64]" \
  "$BERT" finetune --train train.tsv --dev dev.tsv --run run_a --out bad12 --max-seq-len 100
check "no run directories from failed commands" bash -c "! ls -d bad* 2>/dev/null | grep -q ."
expect_error "export --format other" "--format: expected hf" "$BERT" export --run run_a --format onnx --out bad13
expect_error "--init-from not hf:" "--init-from: expected hf:DIR" "$BERT" fill-mask --init-from hf_a --text "[MASK]"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

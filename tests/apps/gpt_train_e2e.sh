#!/usr/bin/env bash
# End-to-end test of gpt-train as a user runs it: prepare -> train -> checkpoint -> resume (same
# losses as straight through) -> Ctrl-C -> sample -> eval, and the bad inputs of issue #2, each of
# which must exit non-zero with a one-line error naming the file or flag and leave files untouched.
#   usage: gpt_train_e2e.sh PATH/TO/gpt-train [DATA_DIR]   (DATA_DIR: the repo's data/, for GPT-2's vocabulary)
set -uo pipefail
GPT=$(readlink -f "$1")
DATA=$(readlink -f "${2:-data}")
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
source "$HERE/e2e_lib.sh"
WORK=$(mktemp -d /tmp/gpt-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# A small corpus made here: ~40 KB of varied lines.
for i in $(seq 1 600); do
  echo "line $i: the quick brown fox $(( (i * 7919) % 1000 )) jumps over the lazy dog; é"
done > corpus.txt

MODEL=(--n-layer 2 --n-head 2 --n-embd 32 --block-size 32 --batch-size 4 --eval-iters 2 --threads 2 --seed 7)
TINY=("${MODEL[@]}" --grad-accum 2 --eval-interval 5 --checkpoint-interval 5 --lr 3e-3 --min-lr 3e-4 --warmup-iters 2 --lr-decay-iters 20 --dropout 0.1)

train_losses() { grep '"split":"train"' "$1/metrics.jsonl" | sed -E 's/.*"loss":([^,]*),.*"step":([0-9]+).*/\2 \1/' | sort -n; }

# --- prepare
check "prepare" "$GPT" prepare --input corpus.txt --out data > /dev/null
check "prepare wrote train.bin, val.bin, meta.json" test -s data/train.bin -a -s data/val.bin -a -s data/meta.json
check "meta.json has the tokenizer" grep -q '"type": "char"' data/meta.json

# --- straight run vs stopped-and-resumed run
check "train straight 20 steps" "$GPT" train --data data --out run_a "${TINY[@]}" --max-iters 20 > log_a.txt
check "checkpoint files" test -s run_a/checkpoints/step-000020/model.safetensors -a -s run_a/checkpoints/step-000020/optimizer.safetensors -a -s run_a/checkpoints/step-000020/state.json -a -s run_a/checkpoints/step-000020/config.json
check "best checkpoint" test -d run_a/checkpoints/best
check "keep-last 3" test "$(ls -d run_a/checkpoints/step-* | wc -l)" -eq 3
check "loss curve PNG" test -s run_a/loss.png
check "metrics.jsonl fields" grep -q '"ms_per_iter".*"split":"train".*"tokens_per_s"' run_a/metrics.jsonl
check "train 10 steps" "$GPT" train --data data --out run_b "${TINY[@]}" --max-iters 10 > /dev/null
check "resume to 20 steps" "$GPT" train --out run_b --resume --max-iters 20 > log_b.txt
check "resume said where it resumed" grep -q "resuming from .*step-000010" log_b.txt
if [ -n "$(train_losses run_a)" ] && [ "$(train_losses run_a)" = "$(train_losses run_b)" ]; then
  pass "resumed run logs the same train losses bit for bit"
else
  fail "resumed run logs the same train losses bit for bit"; diff <(train_losses run_a) <(train_losses run_b) | head
fi
check "20 train lines after resume" test "$(train_losses run_b | wc -l)" -eq 20
if cmp -s run_a/checkpoints/step-000020/model.safetensors run_b/checkpoints/step-000020/model.safetensors; then
  pass "resumed model is bit-identical"; else fail "resumed model is bit-identical"; fi

# --- Ctrl-C: finish the step, save, say how to resume
"$GPT" train --data data --out run_c "${MODEL[@]}" --max-iters 100000 --eval-interval 1000 > log_c.txt 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q '"split":"train"' run_c/metrics.jsonl 2>/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
check "SIGINT exits with 130" test $rc -eq 130
check "SIGINT message tells how to resume" grep -q -- "--resume" log_c.txt
check "SIGINT saved a checkpoint" test -n "$(ls -d run_c/checkpoints/step-* 2>/dev/null)"
check "resume after SIGINT" "$GPT" train --out run_c --resume --max-iters "$(( $(ls run_c/checkpoints | grep step- | tail -1 | sed 's/step-0*//') + 3 ))" > /dev/null

# --- sample and eval
check "sample" "$GPT" sample --run run_a --max-new-tokens 50 --prompt "line" > s1.txt
check "sample output starts with the prompt" grep -q "^line" s1.txt
"$GPT" sample --run run_a --max-new-tokens 50 --prompt "line" --seed 3 > s2.txt
"$GPT" sample --run run_a --max-new-tokens 50 --prompt "line" --seed 3 > s3.txt
check "sample is reproducible with --seed" cmp -s s2.txt s3.txt
"$GPT" sample --run run_a --max-new-tokens 50 --prompt "line" --seed 3 --no-cache > s4.txt
check "KV cache gives the same text as no cache" cmp -s s2.txt s4.txt
check "sample --json" bash -c "'$GPT' sample --run run_a --max-new-tokens 20 --num-samples 2 --json --top-k 5 --top-p 0.9 | grep -q '\"samples\":\\[\"'"
check "sample --checkpoint step-N" "$GPT" sample --run run_a --checkpoint step-15 --max-new-tokens 5 > /dev/null
"$GPT" eval --run run_a --data data --json > eval.json
check "eval --json" grep -qE '"loss":[0-9.]+.*"perplexity":[0-9.]+.*"tokens":[0-9]+' eval.json
check "--dump-config" bash -c "'$GPT' train --data data --out unused --dump-config | grep -q '\"n_layer\": 4'"
check "--dump-config wrote nothing" test ! -e unused

# --- the BLAS check: a warning with the reference BLAS, none with OpenBLAS
"$GPT" sample --run run_a --max-new-tokens 1 > /dev/null 2> blas_default.txt
check "no BLAS warning with the optimized BLAS" bash -c "! grep -q 'reference BLAS' blas_default.txt"
if [ -e /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 ]; then
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blas "$GPT" sample --run run_a --max-new-tokens 1 > /dev/null 2> blas_ref.txt
  check "warning when the reference BLAS is loaded" grep -q "reference BLAS" blas_ref.txt
fi

# --- bf16, presets, prompt files, the train split
check "train --dtype bf16" "$GPT" train --data data --out run_bf16 "${MODEL[@]}" --max-iters 4 --eval-interval 2 --dtype bf16 > /dev/null
check "bf16 run logged finite losses" bash -c "! grep -qiE 'nan|inf' run_bf16/metrics.jsonl"
check "sample --dtype bf16" "$GPT" sample --run run_a --max-new-tokens 10 --dtype bf16 > /dev/null
check "train --preset tiny" "$GPT" train --data data --out run_preset --preset tiny --max-iters 2 --eval-iters 1 --threads 2 > /dev/null
check "--preset tiny gave a 2-layer model" grep -q '"n_layer": 2' run_preset/checkpoints/step-000002/config.json
printf 'line' > prompt.txt
"$GPT" sample --run run_a --max-new-tokens 20 --prompt-file prompt.txt --seed 3 > s5.txt
"$GPT" sample --run run_a --max-new-tokens 20 --prompt line --seed 3 > s6.txt
check "--prompt-file equals --prompt with the same text" cmp -s s5.txt s6.txt
check "eval --split train" bash -c "'$GPT' eval --run run_a --data data --split train --json | grep -q '\"split\":\"train\"'"

# --- bad input
before=$(tree_sum run_a)
: > empty.txt
echo "abc" > short.txt
printf 'ab\xffcd' > latin1.txt
expect_error "missing corpus" "nope.txt" "$GPT" prepare --input nope.txt --out d1
expect_error "empty corpus" "empty.txt" "$GPT" prepare --input empty.txt --out d2
expect_error "invalid UTF-8 corpus" "latin1.txt" "$GPT" prepare --input latin1.txt --out d3
"$GPT" prepare --input short.txt --out short > /dev/null
expect_error "corpus shorter than a block" "train.bin" "$GPT" train --data short --out r_short "${TINY[@]}"
echo '{"train": {"lr": 0.1,}}' > bad.json
expect_error "malformed --config" "bad.json" "$GPT" train --data data --out r_bad --config bad.json
echo '{"train": {"learning_rate": 0.1}}' > unknown.json
expect_error "unknown key in --config" "learning_rate" "$GPT" train --data data --out r_bad --config unknown.json
expect_error "resume without checkpoint" "no checkpoint" "$GPT" train --data data --out r_none --resume
expect_error "resume with another model shape" "--resume" "$GPT" train --data data --out run_a --resume --n-layer 3 --max-iters 25
expect_error "fresh run over an existing run" "--resume" "$GPT" train --data data --out run_a "${TINY[@]}"
expect_error "prompt outside the vocabulary" "--prompt" "$GPT" sample --run run_a --prompt "Zebra~"
expect_error "--prompt and --prompt-file together" "--prompt-file" "$GPT" sample --run run_a --prompt line --prompt-file prompt.txt
expect_error "--preset with --resume" "--preset" "$GPT" train --out run_a --resume --preset tiny
expect_error "unknown --preset" "huge" "$GPT" train --data data --out r_bad --preset huge
expect_error "unknown --split" "--split" "$GPT" eval --run run_a --data data --split test
touch afile
expect_error "output directory that cannot be made" "afile" "$GPT" train --data data --out afile/run "${TINY[@]}" --max-iters 2
expect_error "unknown --checkpoint" "--checkpoint" "$GPT" sample --run run_a --checkpoint step-999
check "failed commands left run_a untouched" test "$before" = "$(tree_sum run_a)"

cp -r run_a broken
rm broken/checkpoints/step-000020/optimizer.safetensors
expect_error "checkpoint missing a file" "optimizer.safetensors" "$GPT" train --out broken --resume --max-iters 30
cp -r run_a trunc
head -c 1000 run_a/checkpoints/best/model.safetensors > trunc/checkpoints/best/model.safetensors
expect_error "truncated model.safetensors" "model.safetensors" "$GPT" sample --run trunc --checkpoint best
cp -r run_a foreign
echo "this is not a safetensors file at all" > foreign/checkpoints/best/model.safetensors
expect_error "non-safetensors model file" "model.safetensors" "$GPT" sample --run foreign --checkpoint best

# A full disk during a checkpoint (file size limit): clean error, previous checkpoint still usable.
cp -r run_a full
( ulimit -f 20; "$GPT" train --out full --resume --max-iters 25 --checkpoint-interval 5 > out.txt 2> err.txt ); rc=$?
check "full disk: non-zero exit" test $rc -ne 0
check "full disk: error names the file" grep -q "write failed" err.txt
check "full disk: no temporary directory left" test -z "$(ls -A full/checkpoints | grep tmp)"
check "full disk: previous checkpoint still loads" "$GPT" sample --run full --checkpoint step-20 --max-new-tokens 5 > /dev/null

# A corpus whose vocabulary exceeds uint16: 70000 distinct code points.
awk 'BEGIN { for (i = 0; i < 70000; i++) { c = 0x20000 + i; printf "%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64, 128 + int(c / 64) % 64, 128 + c % 64 } }' LC_ALL=C > big.txt
expect_error "vocabulary larger than uint16" "big.txt" "$GPT" prepare --input big.txt --out d4

# --- byte-level BPE: trained on the corpus, or GPT-2's own vocabulary
check "prepare --tokenizer bpe" "$GPT" prepare --input corpus.txt --out data_bpe --tokenizer bpe --vocab-size 400 > /dev/null
check "bpe tokenizer in meta.json" grep -q '"type":"byte_bpe"' <(tr -d ' \n' < data_bpe/meta.json)
check "train on bpe data" "$GPT" train --data data_bpe --out run_bpe "${MODEL[@]}" --max-iters 4 --eval-interval 4 > /dev/null
check "bpe model vocabulary padded to a multiple of 64" grep -q '"vocab_size":448' <(tr -d ' \n' < run_bpe/checkpoints/best/config.json)
"$GPT" sample --run run_bpe --max-new-tokens 30 --json --seed 3 > bpe_sample.json
check "sample from a bpe run" grep -q '"samples":\["<|endoftext|>' bpe_sample.json
check "bpe sample is reproducible" cmp -s bpe_sample.json <("$GPT" sample --run run_bpe --max-new-tokens 30 --json --seed 3)
check "eval a bpe run" grep -q '"perplexity"' <("$GPT" eval --run run_bpe --data data_bpe --json)
# --stop: the sample ends before the first stop text, which is not printed.
full=$("$GPT" sample --run run_bpe --max-new-tokens 40 --json --seed 3 --ignore-eot | sed -E 's/.*"samples":\["(.*)"\]\}/\1/')
stop_at=$(printf '%s' "$full" | sed -E 's/^<\|endoftext\|>//' | cut -c3-4)
cut=$("$GPT" sample --run run_bpe --max-new-tokens 40 --json --seed 3 --ignore-eot --stop "$stop_at" | sed -E 's/.*"samples":\["(.*)"\]\}/\1/')
check "--stop cuts the sample before the stop text" test "${full%%"$stop_at"*}" = "$cut"
check "--repetition-penalty runs" grep -q '"samples"' <("$GPT" sample --run run_bpe --max-new-tokens 20 --json --repetition-penalty 1.3)
expect_error "non-positive --repetition-penalty" "--repetition-penalty" "$GPT" sample --run run_bpe --repetition-penalty 0
check "eval --text on any file" grep -q '"tokens":' <("$GPT" eval --run run_bpe --text corpus.txt --json)
"$GPT" sample --run run_bpe --prompt-file corpus.txt --max-new-tokens 5 --json > long_prompt.json 2> long_prompt.err
check "a prompt longer than the context is cut with a warning" grep -q "more than the context of 32" long_prompt.err
expect_error "eval with neither --data nor --text" "--text" "$GPT" eval --run run_bpe
expect_error "eval with both --data and --text" "--text" "$GPT" eval --run run_bpe --data data_bpe --text corpus.txt
expect_error "eval on data of another tokenizer" "tokenized differently" "$GPT" eval --run run_bpe --data data
expect_error "--vocab-size below the bytes" "--vocab-size" "$GPT" prepare --input corpus.txt --out d5 --tokenizer bpe --vocab-size 100
expect_error "unknown --tokenizer" "--tokenizer" "$GPT" prepare --input corpus.txt --out d6 --tokenizer sentencepiece
expect_error "--tokenizer gpt2 without the files" "--gpt2-dir" "$GPT" prepare --input corpus.txt --out d7 --tokenizer gpt2 --gpt2-dir nowhere
if [ -s "$DATA/gpt2/vocab.bpe" ]; then
  check "prepare --tokenizer gpt2" "$GPT" prepare --input corpus.txt --out data_gpt2 --tokenizer gpt2 --gpt2-dir "$DATA/gpt2" > /dev/null
  check "gpt2 vocabulary size" grep -q '"vocab_size":50257' <(tr -d ' \n' < data_gpt2/meta.json)
  # "line 1: the quick brown fox" in GPT-2 ids, the first tokens of train.bin (uint16 little-endian).
  check "train.bin holds GPT-2 ids" test "$(od -An -tu2 -N12 data_gpt2/train.bin | tr -s ' ' | sed 's/^ //')" = "1370 352 25 262 2068 7586"
  # prepare --threads encodes pieces of a long text in parallel: the same ids as one thread.
  for i in $(seq 1 80); do cat corpus.txt; printf '  indented, "quoted" and\n\n!punctuated\n'; done > long.txt
  "$GPT" prepare --input long.txt --out long1 --tokenizer gpt2 --gpt2-dir "$DATA/gpt2" --threads 1 > /dev/null
  "$GPT" prepare --input long.txt --out long2 --tokenizer gpt2 --gpt2-dir "$DATA/gpt2" --threads 3 --device cpu --dtype fp32 > /dev/null
  check "prepare --threads 3 writes the ids of one thread" cmp -s long1/train.bin long2/train.bin
  check "prepare --threads 3: val.bin too" cmp -s long1/val.bin long2/val.bin
  expect_error "prepare --dtype is checked" "--dtype" "$GPT" prepare --input corpus.txt --out d9 --dtype fp16
  expect_error "wordpiece is not a GPT tokenizer" "WordPiece" "$GPT" prepare --input corpus.txt --out d8 --tokenizer "wordpiece:$DATA/bert-base-uncased/vocab.txt"
else
  fail "GPT-2 vocabulary missing in $DATA (run scripts/setup.sh data)"
fi

# --- Hugging Face GPT-2 directories: --init-from hf:DIR (sample, eval, fine-tune) and export --format hf
HF="$HERE/../data/hf_gpt2_tiny"   # written by scripts/reference/hf_gpt2_reference.py: vocab 100, no tokenizer
check "sample --init-from hf:DIR --tokenizer DATA" "$GPT" sample --init-from "hf:$HF" --tokenizer data --max-new-tokens 20 --prompt line > hf_s.txt
check "hf sample starts with the prompt" grep -q "^line" hf_s.txt
check "eval --init-from hf:DIR reads the data with its tokenizer" grep -qE '"loss":[0-9.]+.*"perplexity"' <("$GPT" eval --init-from "hf:$HF" --data data --json)
check "fine-tune --init-from hf:DIR" "$GPT" train --data data --out run_hf --init-from "hf:$HF" --batch-size 4 --eval-iters 2 --threads 2 --max-iters 4 --eval-interval 2 > /dev/null
check "fine-tuned run keeps the HF model's shape" grep -q '"n_embd":32,"n_head":4,"n_layer":2' <(tr -d ' \n' < run_hf/checkpoints/best/config.json)
check "export --format hf" "$GPT" export --run run_a --format hf --out hf_a > /dev/null
check "export wrote config.json, model.safetensors, the tokenizer" test -s hf_a/config.json -a -s hf_a/model.safetensors -a -s hf_a/attnzoo_tokenizer/tokenizer.json
check "export config is a GPT2Config" grep -q '"model_type":"gpt2"' <(tr -d ' \n' < hf_a/config.json)
check "export keys and Conv1D shapes are Hugging Face's" grep -qE '"transformer.h.0.attn.c_attn.weight":\{"data_offsets":\[[0-9]+,[0-9]+\],"dtype":"F32","shape":\[32,96\]' <(head -c 8000 hf_a/model.safetensors | tr -d ' ')
check "export writes no lm_head (tied)" bash -c "! head -c 8000 hf_a/model.safetensors | grep -q lm_head"
"$GPT" sample --run run_a --max-new-tokens 40 --prompt line --seed 5 > hf_run.txt
"$GPT" sample --init-from hf:hf_a --max-new-tokens 40 --prompt line --seed 5 > hf_exported.txt
check "exported model samples the same text as its run" cmp -s hf_run.txt hf_exported.txt
check "export a bpe run (padded vocabulary kept)" "$GPT" export --run run_bpe --format hf --out hf_bpe > /dev/null
check "exported bpe run has GPT2Tokenizer's vocab.json + merges.txt" test -s hf_bpe/vocab.json -a -s hf_bpe/merges.txt
check "merges.txt starts with the version line" test "$(head -1 hf_bpe/merges.txt)" = "#version: 0.2"
check "export --dtype bf16" "$GPT" export --run run_bpe --format hf --out hf_bf16 --dtype bf16 > /dev/null
check "bf16 export says so in config.json" grep -q '"torch_dtype":"bfloat16"' <(tr -d ' \n' < hf_bf16/config.json)
check "bf16 export is half the size" test "$(stat -c %s hf_bf16/model.safetensors)" -lt "$(( $(stat -c %s hf_bpe/model.safetensors) * 6 / 10 ))"
check "a bf16 Hugging Face directory loads and evaluates" grep -q '"perplexity"' <("$GPT" eval --init-from hf:hf_bf16 --data data_bpe --json)
expect_error "export --dtype fp16" "--dtype" "$GPT" export --run run_bpe --format hf --out hf_x --dtype fp16
expect_error "an unknown flag: one line naming it" "--no-such-flag" "$GPT" sample --run run_bpe --no-such-flag
check "padded vocab_size in config.json" grep -q '"vocab_size":448' <(tr -d ' \n' < hf_bpe/config.json)
check "exported bpe model: same text" cmp -s <("$GPT" sample --run run_bpe --max-new-tokens 30 --json --seed 3 | sed 's/"checkpoint":"[^"]*"//') \
  <("$GPT" sample --init-from hf:hf_bpe --max-new-tokens 30 --json --seed 3 | sed 's/"checkpoint":"[^"]*"//')
check "exported bpe model: same eval loss" test "$("$GPT" eval --run run_bpe --data data_bpe --json | grep -o '"loss":[0-9.]*')" = "$("$GPT" eval --init-from hf:hf_bpe --data data_bpe --json | grep -o '"loss":[0-9.]*')"
before=$(tree_sum hf_a)
expect_error "export over a non-empty directory" "--force" "$GPT" export --run run_a --format hf --out hf_a
check "refused export left the directory untouched" test "$before" = "$(tree_sum hf_a)"
check "export --force replaces it" "$GPT" export --run run_a --format hf --out hf_a --force > /dev/null
check "no temporary directory left by export" test -z "$(ls -A . | grep -E '\.tmp-|\.old-')"
expect_error "unknown --format" "--format" "$GPT" export --run run_a --format onnx --out hf_x
expect_error "--init-from without hf:" "--init-from" "$GPT" sample --init-from "$HF"
expect_error "--run and --init-from together" "--init-from" "$GPT" sample --run run_a --init-from "hf:$HF"
expect_error "HF model without a tokenizer" "--tokenizer" "$GPT" sample --init-from "hf:$HF"
expect_error "tokenizer larger than the model's vocabulary" "50257 tokens" "$GPT" sample --init-from "hf:$HF" --tokenizer "gpt2:$DATA/gpt2"
expect_error "fine-tune with model-shape flags" "--init-from" "$GPT" train --data data --out r_hf --init-from "hf:$HF" --n-layer 3
expect_error "fine-tune on data of another tokenizer" "differs" "$GPT" train --data data_bpe --out r_hf2 --init-from hf:hf_a
cp -r "$HF" hf_trunc && head -c 5000 "$HF/model.safetensors" > hf_trunc/model.safetensors
expect_error "truncated HF model.safetensors" "hf_trunc/model.safetensors" "$GPT" sample --init-from hf:hf_trunc --tokenizer data
cp -r "$HF" hf_foreign && echo "version https://git-lfs.github.com/spec/v1" > hf_foreign/model.safetensors
expect_error "foreign HF model.safetensors (an LFS pointer)" "hf_foreign/model.safetensors" "$GPT" sample --init-from hf:hf_foreign --tokenizer data
cp -r "$HF" hf_badjson && echo '{"n_layer": 2,' > hf_badjson/config.json
expect_error "malformed HF config.json" "hf_badjson/config.json" "$GPT" eval --init-from hf:hf_badjson --data data
cp -r "$HF" hf_wide && sed -i 's/"n_embd": 32/"n_embd": 48/' hf_wide/config.json
expect_error "HF config disagrees with the weights" "c_attn.weight: expected [48, 144], got [32, 96]" "$GPT" sample --init-from hf:hf_wide --tokenizer data
mkdir hf_empty
expect_error "HF directory without config.json" "hf_empty/config.json" "$GPT" sample --init-from hf:hf_empty --tokenizer data

# --- LoRA: adapters on the tiny HF model, PEFT files, exact resume, adapter on its base, merged export
LORA=(--init-from "hf:$HF" --lora-rank 4 --lora-alpha 8 --lora-targets c_attn,c_proj,c_fc --batch-size 4 --eval-iters 2
      --threads 2 --eval-interval 3 --lr 1e-2 --warmup-iters 1 --lr-decay-iters 6 --dropout 0.1 --lora-dropout 0.1)
check "LoRA fine-tune --init-from hf:DIR" "$GPT" train --data data --out run_lora "${LORA[@]}" --max-iters 6 > lora_log.txt
check "LoRA run counts its trainable parameters" grep -q "(4096 trainable)" lora_log.txt
check "LoRA run wrote PEFT adapter files" test -s run_lora/adapter/adapter_model.safetensors -a -s run_lora/adapter/adapter_config.json
check "adapter_config.json is PEFT's" grep -q '"peft_type":"LORA"' <(tr -d ' \n' < run_lora/adapter/adapter_config.json)
check "PEFT key names and shapes" grep -qE '"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight":\{"data_offsets":\[[0-9]+,[0-9]+\],"dtype":"F32","shape":\[4,32\]' <(head -c 6000 run_lora/adapter/adapter_model.safetensors | tr -d ' ')
check "LoRA train 3 steps" "$GPT" train --data data --out run_lora_b "${LORA[@]}" --max-iters 3 > /dev/null
check "LoRA resume to 6 steps" "$GPT" train --out run_lora_b --resume --max-iters 6 > /dev/null
if cmp -s run_lora/checkpoints/step-000006/model.safetensors run_lora_b/checkpoints/step-000006/model.safetensors; then
  pass "resumed LoRA run is bit-identical"; else fail "resumed LoRA run is bit-identical"; fi
nockpt() { sed 's/"checkpoint":"[^"]*"//'; }
"$GPT" sample --run run_lora --max-new-tokens 40 --prompt line --seed 5 --json | nockpt > lora_run.txt
"$GPT" sample --init-from "hf:$HF" --tokenizer data --max-new-tokens 40 --prompt line --seed 5 --json | nockpt > lora_base.txt
"$GPT" sample --init-from "hf:$HF" --tokenizer data --lora run_lora/adapter --max-new-tokens 40 --prompt line --seed 5 --json | nockpt > lora_applied.txt
check "LoRA run samples" grep -q '"samples":\["line' lora_run.txt
check "the adapters change the text" bash -c "! cmp -s lora_run.txt lora_base.txt"
check "--lora ADAPTER on the base samples as the run" cmp -s lora_run.txt lora_applied.txt
check "eval --lora" grep -q '"perplexity"' <("$GPT" eval --init-from "hf:$HF" --lora run_lora/adapter --data data --json)
check "export --merge-lora --format hf" "$GPT" export --run run_lora --merge-lora --format hf --out hf_merged > /dev/null
check "merged export has no adapter keys" bash -c "! head -c 8000 hf_merged/model.safetensors | grep -q lora"
"$GPT" sample --init-from hf:hf_merged --max-new-tokens 40 --prompt line --seed 5 --json | nockpt > lora_merged.txt
check "merged export samples the same text" cmp -s lora_run.txt lora_merged.txt
check "export --format peft" "$GPT" export --run run_lora --checkpoint step-3 --format peft --out peft_3 > /dev/null
check "exported adapters load onto the base" "$GPT" sample --init-from "hf:$HF" --tokenizer data --lora peft_3 --max-new-tokens 5 > /dev/null
expect_error "--lora-rank 0" "--lora-rank" "$GPT" train --data data --out r_l0 --init-from "hf:$HF" --lora-rank 0
expect_error "unknown --lora-targets" "q_proj" "$GPT" train --data data --out r_l1 --init-from "hf:$HF" --lora-rank 4 --lora-targets c_attn,q_proj
expect_error "--lora-alpha without --lora-rank" "--lora-rank" "$GPT" train --data data --out r_l2 --lora-alpha 16
expect_error "export of a LoRA run without --merge-lora" "--merge-lora" "$GPT" export --run run_lora --format hf --out hf_x2
expect_error "--merge-lora on a run without adapters" "no LoRA adapters" "$GPT" export --run run_a --merge-lora --format hf --out hf_x3
cp -r run_lora/adapter adapter_r8 && sed -i 's/"r": 4/"r": 8/' adapter_r8/adapter_config.json
expect_error "adapter whose rank disagrees with its weights" "expected [8, 32], got [4, 32]" "$GPT" sample --init-from "hf:$HF" --tokenizer data --lora adapter_r8
expect_error "adapter for another base" "another base" "$GPT" sample --run run_hf --lora adapter_r8
expect_error "--lora on a LoRA run" "already has LoRA" "$GPT" sample --run run_lora --lora run_lora/adapter
expect_error "--lora without adapter files" "adapter_config.json" "$GPT" sample --run run_a --lora data

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

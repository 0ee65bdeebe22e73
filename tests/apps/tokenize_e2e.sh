#!/usr/bin/env bash
# End-to-end test of the tokenize app as a user runs it: train (BPE and WordPiece), encode, decode
# and info on every SPEC form, the published vocabularies giving the published ids, and the bad
# inputs of issue #3, each a one-line error and a non-zero exit that leaves existing files alone.
#   usage: tokenize_e2e.sh PATH/TO/tokenize DATA_DIR    (DATA_DIR: the repo's data/, from scripts/setup.sh)
set -uo pipefail
TOK=$(readlink -f "$1")
DATA=$(readlink -f "$2")
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
source "$HERE/e2e_lib.sh"
WORK=$(mktemp -d /tmp/tokenize-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
for f in gpt2/encoder.json gpt2/vocab.bpe tiktoken/cl100k_base.json bert-base-uncased/vocab.txt devil.txt; do
  [ -s "$DATA/$f" ] || { echo "FAIL $DATA/$f is missing: run scripts/setup.sh data"; exit 1; }
done

printf 'hello world' > hello.txt
printf 'Hello, World! <|endoftext|> naïve café 中文 🍕\n  spaces\t\ttabs\n' > multi.txt
eq() { [ "$1" = "$2" ] || { echo "     got '$1', expected '$2'"; return 1; }; }

# --- published vocabularies, published ids (tiktoken / Hugging Face)
check "gpt2:DIR encodes as GPT-2" eq "$("$TOK" encode --tokenizer gpt2:"$DATA"/gpt2 --input hello.txt)" "31373 995"
check "tiktoken:bundle encodes as cl100k_base" eq "$("$TOK" encode --tokenizer tiktoken:"$DATA"/tiktoken/cl100k_base.json --input hello.txt)" "15339 1917"
check "wordpiece:vocab adds [CLS] [SEP]" eq "$("$TOK" encode --tokenizer wordpiece:"$DATA"/bert-base-uncased/vocab.txt --input hello.txt)" "101 7592 2088 102"
check "wordpiece --no-special" eq "$("$TOK" encode --tokenizer wordpiece:"$DATA"/bert-base-uncased/vocab.txt --input hello.txt --no-special)" "7592 2088"
check "--json prints one array" eq "$("$TOK" encode --tokenizer gpt2:"$DATA"/gpt2 --input hello.txt --json)" "[31373,995]"
check "special token recognised" eq "$(printf '<|endoftext|>' > eot.txt; "$TOK" encode --tokenizer gpt2:"$DATA"/gpt2 --input eot.txt)" "50256"
check "--no-special encodes it as text" eq "$("$TOK" encode --tokenizer gpt2:"$DATA"/gpt2 --input eot.txt --no-special)" "27 91 437 1659 5239 91 29"
# HF layout: the same files named vocab.json + merges.txt.
mkdir hf && cp "$DATA"/gpt2/encoder.json hf/vocab.json && cp "$DATA"/gpt2/vocab.bpe hf/merges.txt
check "gpt2:DIR with Hugging Face names" eq "$("$TOK" encode --tokenizer gpt2:hf --input hello.txt)" "31373 995"

# --- decode(encode(x)) == x, space-separated and JSON ids
for spec in gpt2:"$DATA"/gpt2 tiktoken:"$DATA"/tiktoken/cl100k_base.json; do
  "$TOK" encode --tokenizer "$spec" --input multi.txt > ids.txt
  "$TOK" encode --tokenizer "$spec" --input multi.txt --json > ids.json
  "$TOK" decode --tokenizer "$spec" --input ids.txt > back.txt
  check "round trip ($spec)" cmp -s back.txt multi.txt
  "$TOK" decode --tokenizer "$spec" --input ids.json > back.txt
  check "round trip from JSON ($spec)" cmp -s back.txt multi.txt
done
check "wordpiece decode joins ## pieces" eq "$(echo '101 2000 19204 3550 2003 102' | "$TOK" decode --tokenizer wordpiece:"$DATA"/bert-base-uncased/vocab.txt --input -)" "[CLS] to tokenized is [SEP]"

# --- train, save, reopen
check "train bpe" "$TOK" train --type bpe --input "$DATA"/devil.txt hello.txt --vocab-size 600 --out bpe --special '<|endoftext|>' > train.txt
check "saved bpe files" test -s bpe/merges.txt -a -s bpe/tokenizer.json
check "bpe info" grep -q '"vocab_size": 600' <("$TOK" info --tokenizer bpe --json)
check "bpe special after the merges" eq "$(printf '<|endoftext|>' | "$TOK" encode --tokenizer bpe --input -)" "599"
check "trained bpe round trip" cmp -s <("$TOK" encode --tokenizer bpe --input multi.txt | "$TOK" decode --tokenizer bpe --input -) multi.txt
check "train bpe cl100k pattern" "$TOK" train --type bpe --input "$DATA"/devil.txt --vocab-size 400 --pattern cl100k --out bpe_cl > /dev/null
check "cl100k pattern saved" grep -q '"pattern": "cl100k"' bpe_cl/tokenizer.json
check "train wordpiece" "$TOK" train --type wordpiece --input "$DATA"/devil.txt --vocab-size 2000 --out wp > /dev/null
check "wordpiece vocab.txt has 2000 lines" eq "$(wc -l < wp/vocab.txt)" "2000"
check "wordpiece specials first" eq "$(head -5 wp/vocab.txt | tr '\n' ' ')" "[PAD] [UNK] [CLS] [SEP] [MASK] "
check "trained wordpiece encodes" test -n "$("$TOK" encode --tokenizer wp --input hello.txt)"
check "info text" grep -q "wordpiece, 2000 tokens" <("$TOK" info --tokenizer wp)

# --- bad input: one line, non-zero exit, files untouched
before=$(tree_sum bpe)
expect_error "existing --out without --force" "--force" "$TOK" train --type bpe --input hello.txt --vocab-size 300 --out bpe
check "existing tokenizer untouched" eq "$(tree_sum bpe)" "$before"
: > empty.txt
expect_error "empty corpus" "empty corpus" "$TOK" train --type bpe --input empty.txt --vocab-size 300 --out e1
expect_error "an unknown flag: one line naming it" "--no-such-flag" "$TOK" train --type bpe --input hello.txt --vocab-size 300 --out e9 --no-such-flag
expect_error "vocab smaller than the bytes" "smaller than the 256 byte tokens" "$TOK" train --type bpe --input hello.txt --vocab-size 100 --out e2
expect_error "wordpiece vocab smaller than the alphabet" "vocab_size" "$TOK" train --type wordpiece --input "$DATA"/devil.txt --vocab-size 10 --out e3
expect_error "unknown --type" "--type" "$TOK" train --type unigram --input hello.txt --vocab-size 300 --out e4
expect_error "unknown --pattern" "--pattern" "$TOK" train --type bpe --input hello.txt --vocab-size 300 --pattern gpt5 --out e5
expect_error "missing input" "nope.txt" "$TOK" encode --tokenizer gpt2:"$DATA"/gpt2 --input nope.txt
expect_error "unknown SPEC" "nowhere" "$TOK" encode --tokenizer nowhere --input hello.txt
echo '1 2 99999' > big_ids.txt
expect_error "id outside the vocabulary" "99999" "$TOK" decode --tokenizer gpt2:"$DATA"/gpt2 --input big_ids.txt
echo '1 two 3' > word_ids.txt
expect_error "non-integer id" "'two'" "$TOK" decode --tokenizer gpt2:"$DATA"/gpt2 --input word_ids.txt
mkdir broken && cp "$DATA"/gpt2/encoder.json broken/ && printf '#version: 0.2\nĠ t\nĠt he\nzzz q\n' > broken/vocab.bpe
expect_error "merges naming an unknown symbol (file:line)" "vocab.bpe:4:" "$TOK" info --tokenizer gpt2:broken
printf '{"a": 1,' > broken/encoder.json
expect_error "malformed encoder.json" "encoder.json" "$TOK" info --tokenizer gpt2:broken
printf 'IQ== 0\nnot-base64 1\n' > r50k_base.tiktoken
expect_error "malformed rank file (file:line)" "r50k_base.tiktoken:2:" "$TOK" info --tokenizer tiktoken:r50k_base.tiktoken
printf '[PAD]\n[UNK]\nhello\nhello\n' > dup_vocab.txt
expect_error "duplicate token in vocab.txt (file:line)" "dup_vocab.txt:4" "$TOK" info --tokenizer wordpiece:dup_vocab.txt
cp -r bpe bpe_bad && printf '97 97 256\n97 x 257\n' > bpe_bad/merges.txt
expect_error "malformed saved merges (file:line)" "merges.txt:2:" "$TOK" info --tokenizer bpe_bad

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

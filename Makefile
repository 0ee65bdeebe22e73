# The two commands of the README:
#   make demo   set up, build, train a character-level GPT on The Devil's Dictionary, print samples
#   make test   set up, build, run every test
BUILD ?= build
JOBS ?= $(shell nproc)
GPT := $(BUILD)/apps/gpt-train/gpt-train
BERT := $(BUILD)/apps/bert-pretrain/bert-pretrain

.PHONY: all setup build demo demo-kjv demo-bert test bench clean

all: build

setup:
	scripts/setup.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

demo: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target gpt-train
	$(GPT) prepare --input data/devil.txt --out data/devil
	rm -rf runs/demo
	$(GPT) train --data data/devil --out runs/demo
	$(GPT) sample --run runs/demo --num-samples 2 --max-new-tokens 400
	@echo "loss curve: runs/demo/loss.png"

# A byte-level BPE GPT (4096 tokens, 4 layers x 256) on the King James Bible: ~8 minutes on 2 cores.
demo-kjv: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target gpt-train
	$(GPT) prepare --input data/kjv.txt --out data/kjv_bpe --tokenizer bpe --vocab-size 4096
	rm -rf runs/kjv
	$(GPT) train --data data/kjv_bpe --out runs/kjv --n-layer 4 --n-head 4 --n-embd 256 --block-size 128 \
	  --batch-size 16 --max-iters 1200 --lr 1e-3 --min-lr 1e-4 --warmup-iters 100 --lr-decay-iters 1200 \
	  --eval-interval 400 --eval-iters 20 --dropout 0.0
	$(GPT) sample --run runs/kjv --prompt "And God said" --max-new-tokens 120 --num-samples 2 --top-k 40
	@echo "loss curve: runs/kjv/loss.png"

# BERT-small (4 layers x 256) pretrained with MLM + NSP on the King James Bible: chapters are the
# documents, verses the sentences, bert-base-uncased's vocabulary (docs/bert-pretrain.md).
demo-bert: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target bert-pretrain
	awk '{ split($$1, a, ":"); if (NR > 1 && a[1] != prev) print ""; prev = a[1]; $$1 = ""; sub(/^ +/, ""); print }' \
	  data/kjv.txt > data/kjv_bert.txt
	$(BERT) prepare --input data/kjv_bert.txt --vocab data/bert-base-uncased/vocab.txt --out data/kjv_bert --dupe-factor 5 --force
	rm -rf runs/kjv-bert
	$(BERT) train --data data/kjv_bert --out runs/kjv-bert --max-iters 6000 --warmup-iters 300 --eval-interval 500 \
	  --eval-iters 13 --dtype bf16
	$(BERT) eval --run runs/kjv-bert --data data/kjv_bert
	$(BERT) fill-mask --run runs/kjv-bert --text "And God said, Let there be [MASK]: and there was light." --top-k 5
	$(BERT) fill-mask --run runs/kjv-bert --text "In the beginning God created the [MASK] and the earth." --top-k 5
	@echo "curves: runs/kjv-bert/mlm_nsp_loss.png, runs/kjv-bert/mlm_nsp_accuracy.png"

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target gpt-bench
	bench/run.sh

clean:
	rm -rf $(BUILD)

# The two commands of the README:
#   make demo   set up, build, train a character-level GPT on The Devil's Dictionary, print samples
#   make test   set up, build, run every test
BUILD ?= build
JOBS ?= $(shell nproc)
GPT := $(BUILD)/apps/gpt-train/gpt-train

.PHONY: all setup build demo demo-kjv test bench clean

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

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target gpt-bench
	bench/run.sh

clean:
	rm -rf $(BUILD)

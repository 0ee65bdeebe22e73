# The two commands of the README:
#   make demo   set up, build, train a character-level GPT on The Devil's Dictionary, print samples
#   make test   set up, build, run every test
BUILD ?= build
JOBS ?= $(shell nproc)
GPT := $(BUILD)/apps/gpt-train/gpt-train

.PHONY: all setup build demo test bench clean

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

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target gpt-bench
	bench/run.sh

clean:
	rm -rf $(BUILD)

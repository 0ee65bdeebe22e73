#!/usr/bin/env bash
# End-to-end test of vit-classify and mae-reconstruct as a user runs them, on tiny budgets:
# ImageFolder (with unreadable files) -> train -> resume (same losses as straight through) ->
# eval/predict/attention -> transfer (--init-from RUN / timm:DIR / mae:RUN, --freeze-backbone);
# Fashion-MNIST's idx files; MAE train -> show; and the bad inputs of issue 7, each of which must
# exit non-zero with a one-line error naming the file or flag.
#   usage: vit_classify_e2e.sh PATH/TO/vit-classify PATH/TO/mae-reconstruct [FASHION_MNIST_DIR] [TEST_DATA_DIR] [DIGITS_DIR]
set -uo pipefail
VIT=$(readlink -f "$1")
MAE=$(readlink -f "$2")
FMNIST=${3:-/usr/share/datasets/fashion-mnist}
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
TESTDATA=$(readlink -f "${4:-$HERE/../data}")
DIGITS=$(readlink -f "${5:-$HERE/../../data/digits}")
source "$HERE/e2e_lib.sh"
WORK=$(mktemp -d /tmp/vit-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# ppm FILE R G B: an 8x8 binary PPM of one colour with a little per-pixel variation.
ppm() {
  local k
  { printf 'P6\n8 8\n255\n'
    for k in $(seq 0 63); do printf '%b' "\\x$(printf %02x $(( ($2 + k * 3) % 256 )))\\x$(printf %02x $3)\\x$(printf %02x $(( ($4 + k) % 256 )))"; done
  } > "$1"
}
for split in train val; do
  mkdir -p folder/$split/red folder/$split/blue
  for i in 1 2 3 4 5 6; do
    ppm folder/$split/red/$i.ppm $((200 + i)) $((10 * i)) 20
    ppm folder/$split/blue/$i.ppm 20 $((10 * i)) $((200 + i))
  done
done
echo "not an image" > folder/train/red/broken.png
printf '\xff\xd8\xff\xe0truncated' > folder/train/blue/cut.jpg

FLAGS=(--batch-size 8 --eval-interval 10 --eval-iters 2 --threads 2 --seed 3 --lr 3e-3 --warmup-iters 2 --workers 1)
TINY=(--preset tiny "${FLAGS[@]}")
train_losses() { grep '"split":"train"' "$1/metrics.jsonl" | sed -E 's/.*"loss":([^,]*),.*"step":([0-9]+).*/\2 \1/' | sort -n; }

# --- train on an ImageFolder with two unreadable files
"$VIT" train --data folder --out run_a "${TINY[@]}" --max-iters 20 > log_a.txt 2> err_a.txt
check "train straight 20 steps" test $? -eq 0
check "skipped files are counted and named" grep -q "skipped 2 unreadable image(s)" err_a.txt
check "the broken file is named" grep -q "broken.png" err_a.txt
check "the truncated JPEG is named" grep -q "cut.jpg: truncated JPEG" err_a.txt
check "checkpoints" test -s run_a/checkpoints/step-000020/model.safetensors -a -d run_a/checkpoints/best
check "confusion-matrix PNG" test -s run_a/confusion.png
check "loss curve PNG" test -s run_a/loss.png
check "val metrics have top1 and top5" grep -q '"split":"val".*"top1".*"top5"\|"split":"val".*"top5".*"top1"\|"top1".*"split":"val"' run_a/metrics.jsonl
check "final line reports top-1" grep -q "top-1" log_a.txt

# --- exact resume: 10 steps, then resumed to 20, equals 20 straight
check "train 10 steps" "$VIT" train --data folder --out run_b "${TINY[@]}" --lr-decay-iters 20 --max-iters 10 > /dev/null 2>&1
check "resume to 20" "$VIT" train --out run_b --resume --max-iters 20 > /dev/null 2>&1
"$VIT" train --data folder --out run_c "${TINY[@]}" --lr-decay-iters 20 --max-iters 20 > /dev/null 2>&1
if [ -n "$(train_losses run_c)" ] && [ "$(train_losses run_b)" = "$(train_losses run_c)" ]; then pass "resumed losses equal straight-through losses"
else fail "resumed losses equal straight-through losses"; diff <(train_losses run_b) <(train_losses run_c) | head -5; fi

# --- eval, predict, attention
"$VIT" eval --run run_a --data folder --json --threads 2 > eval.json
check "eval --json" grep -q '"top1":.*"top5"' eval.json
check "the two colours are learned (top-1 >= 0.75)" awk -F'"top1":' '{split($2, a, /[,}]/); exit !(a[1] >= 0.75)}' eval.json
"$VIT" predict --run run_a --images folder/val/red/1.ppm folder/val/blue/2.ppm --top-k 2 --json --threads 2 > pred.jsonl
check "predict --json: one object per image" test "$(grep -c '"image"' pred.jsonl)" -eq 2
check "predict --json shape" grep -q '"top":\[{"class":[01],"label":"\(red\|blue\)","prob":' pred.jsonl
check "predict text" "$VIT" predict --run run_a --images folder/val/red/1.ppm --threads 2
check "attention maps" "$VIT" attention --run run_a --image folder/val/red/3.ppm --out att --threads 2
check "attention PNGs (per layer, rollout)" test -s att/layer00.png -a -s att/layer01.png -a -s att/rollout.png

# --- transfer learning
"$VIT" train --data folder --out run_t --init-from run_a --num-classes 3 --freeze-backbone "${FLAGS[@]}" --max-iters 5 > log_t.txt 2>&1
check "--init-from RUN --num-classes 3 --freeze-backbone" grep -q "new head for 3 classes" log_t.txt
check "frozen backbone: only the head trains" grep -q "(99 trainable)" log_t.txt
check "--init-from timm:DIR predict (its label names)" sh -c "'$VIT' predict --init-from timm:$TESTDATA/timm_vit_tiny --images folder/val/red/1.ppm --json | grep -q '\"label\":\"\(zero\|one\|two\|three\|four\)\"'"
"$VIT" train --data folder --out run_timm --init-from "timm:$TESTDATA/timm_vit_tiny" --freeze-backbone --batch-size 8 --eval-iters 2 --eval-interval 5 --max-iters 5 --threads 2 > log_timm.txt 2>&1
check "fine-tune from timm:DIR (new head for 2 classes)" grep -q "new head for 2 classes" log_timm.txt

# --- Fashion-MNIST (idx.gz from the Debian package), a few steps of a small ViT
if [ -e "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  "$VIT" train --data "$FMNIST" --out run_f --preset small-28 --depth 2 --embed-dim 48 --num-heads 2 --batch-size 32 \
    --max-iters 6 --eval-interval 6 --eval-iters 2 --threads 2 > log_f.txt 2>&1
  check "Fashion-MNIST: trains" grep -q "60000 train, 10000 test" log_f.txt
  check "Fashion-MNIST: class names" sh -c "'$VIT' eval --run run_f --data '$FMNIST' --batch-size 1000 --json > /dev/null"
else
  fail "Fashion-MNIST not installed at $FMNIST (scripts/setup.sh installs dataset-fashion-mnist)"
fi

# --- scikit-learn's digits (8x8, data/digits from scripts/setup.sh): a tiny ViT learns them in seconds
if [ -s "$DIGITS/digits.csv.gz" ]; then
  "$VIT" train --data "$DIGITS" --out run_d --preset tiny --img-size 8 --patch-size 2 --depth 2 --embed-dim 32 \
    --num-heads 2 --batch-size 64 --max-iters 600 --eval-interval 600 --eval-iters 2 --lr 3e-3 --warmup-iters 20 \
    --no-hflip --threads 2 --seed 1 > log_d.txt 2>&1
  check "digits: 1437 train, 360 test" grep -q "1437 train, 360 test" log_d.txt
  "$VIT" eval --run run_d --data "$DIGITS" --json > eval_d.json 2> /dev/null
  check "digits: a tiny ViT learns them (test top-1 >= 0.75; 0.83-0.84 seen)" awk -F'"top1":' '{split($2, a, /[,}]/); exit !(a[1] >= 0.75)}' eval_d.json
else
  fail "digits missing at $DIGITS (scripts/setup.sh data fetches data/digits/digits.csv.gz)"
fi

# --- MAE: pretrain, show, fine-tune its encoder
"$MAE" train --data folder --out mae_run --preset tiny --batch-size 8 --max-iters 20 --eval-interval 10 --eval-iters 1 --threads 2 --lr 3e-3 --warmup-iters 2 --workers 1 > log_m.txt 2>/dev/null
check "mae train" grep -q "masked-patch val loss" log_m.txt
check "mae resumable checkpoints" test -d mae_run/checkpoints/step-000020
check "mae show: 4-panel PNGs" "$MAE" show --run mae_run --images folder/val/red/1.ppm folder/val/blue/1.ppm --out shown --threads 2
check "mae show wrote one PNG per image" test -s shown/1_mae.png -a -s shown/1_1_mae.png
"$VIT" train --data folder --out run_lr --init-from run_a --backbone-lr-scale 0.1 "${FLAGS[@]}" --max-iters 3 > /dev/null 2>&1
check "--backbone-lr-scale 0.1 (full fine-tuning)" grep -q '"backbone_lr_scale": *0.1' run_lr/checkpoints/step-000003/config.json
"$VIT" train --data folder --out run_m --init-from mae:mae_run --batch-size 8 --eval-iters 2 --eval-interval 5 --max-iters 5 --threads 2 > log_vm.txt 2>&1
check "vit-classify --init-from mae:RUN" grep -q "initialised from mae:mae_run (new head for 2 classes)" log_vm.txt

# --- bad input: one line on stderr naming the file or flag
mkdir -p badidx && printf '\x00\x00\x08\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01x' > badidx/train-images-idx3-ubyte && cp badidx/train-images-idx3-ubyte badidx/train-labels-idx1-ubyte
expect_error "idx with a wrong magic number" "badidx/train-images-idx3-ubyte: wrong magic number 0x00000801" "$VIT" train --data badidx --out bad1 "${TINY[@]}"
expect_error "vit-classify: an unknown flag is one line" "--no-such-flag" "$VIT" eval --data x --run y --no-such-flag
expect_error "mae-reconstruct: a bad --mask-ratio value is one line" "--mask-ratio" "$MAE" train --mask-ratio lots
expect_error "--strict-data" "cut.jpg: truncated JPEG (no end-of-image marker) (--strict-data)" "$VIT" train --data folder --out bad2 "${TINY[@]}" --strict-data
mkdir -p folder_empty/train/a folder_empty/train/b folder_empty/val/a && cp folder/train/red/1.ppm folder_empty/train/a/
expect_error "empty class folder" "folder_empty/train/b: class folder without images" "$VIT" train --data folder_empty --out bad3 "${TINY[@]}"
if [ -e "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  expect_error "image size without --resize" "pass --resize" "$VIT" train --data "$FMNIST" --out bad4 "${TINY[@]}"
fi
expect_error "mae show on a classifier run" "no MAE decoder in this checkpoint" "$MAE" show --run run_a --images folder/val/red/1.ppm
expect_error "predict an MAE run" "fine-tune it first" "$VIT" predict --run mae_run --images folder/val/red/1.ppm
expect_error "predict a missing image" "nope.png: cannot open" "$VIT" predict --run run_a --images nope.png
expect_error "--freeze-backbone without --init-from" "--freeze-backbone needs --init-from" "$VIT" train --data folder --out bad5 --freeze-backbone
expect_error "timm dir without config.json" "folder/config.json: missing" "$VIT" predict --init-from timm:folder --images folder/val/red/1.ppm

echo "$failures failure(s)"
exit $((failures > 0))

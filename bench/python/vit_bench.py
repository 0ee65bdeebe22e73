#!/usr/bin/env python3
"""The PyTorch-in-Python baseline of `vit-bench` (issue 7): torchvision's ViT on the same work.

- inference: torchvision's vit_b_16 (random weights, 1000 classes), batch 8 at 224x224, in eval mode
  under torch.inference_mode, images/s in fp32 and with the model and input cast to bf16;
- training: one step (forward, cross-entropy, backward, clip_grad_norm_ 1.0, AdamW) of a small
  ViT (6 layers, 256 dim, 4 heads, MLP 1024, 32x32 images, patch 4, 10 classes) at batch 64, in
  fp32 and under CPU bf16 autocast.

Medians over --iters after 2 warm-up iterations, on --threads threads (default 2, as vit-bench on
this machine). Debian's python3-torch and python3-torchvision; run it beside vit-bench, back to back.

--device cuda runs the same work on a GPU (bf16 autocast on CUDA for training), beside
`vit-bench --device cuda`; --batch sets the inference batch.

    python3 bench/python/vit_bench.py [--what infer,train] [--dtypes fp32,bf16] [--iters 10] [--device cpu]
                                      [--batch 8] [--json F]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer, vit_b_16


DEVICE = torch.device("cpu")


def timed(fn, iters):
    times = []
    for i in range(iters + 2):
        t0 = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_infer(dtype, iters, batch):
    torch.manual_seed(0)
    model = vit_b_16(weights=None).eval().to(DEVICE)
    x = torch.randn(batch, 3, 224, 224, device=DEVICE)
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
        x = x.to(torch.bfloat16)

    def step():
        with torch.inference_mode():
            model(x).float().sum().item()

    t = timed(step, iters)
    print(f"torchvision vit_b_16 inference, batch {batch} @ 224, {dtype}: {batch / t:.2f} images/s "
          f"({1000 * t:.1f} ms/batch)")
    return {"bench": "vit_b16_infer", "impl": "python", "dtype": dtype, "batch": batch,
            "ms_per_batch": 1000 * t, "images_per_s": batch / t, "device": str(DEVICE)}


def bench_train(dtype, iters):
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=4, num_layers=6, num_heads=4, hidden_dim=256,
                              mlp_dim=1024, num_classes=10).train().to(DEVICE)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(64, 3, 32, 32, device=DEVICE)
    y = torch.randint(0, 10, (64,), device=DEVICE)

    def step():
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()

    t = timed(step, iters)
    print(f"torchvision small ViT (6 x 256, 32px / patch 4) training step, batch 64, {dtype}: {1000 * t:.1f} ms/iter")
    return {"bench": "vit_small32_train_step", "impl": "python", "dtype": dtype, "batch": 64, "ms_per_iter": 1000 * t,
            "device": str(DEVICE)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="infer,train")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=8, help="inference batch size")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    results = []
    for what in args.what.split(","):
        for dtype in args.dtypes.split(","):
            r = bench_infer(dtype, args.iters, args.batch) if what == "infer" else bench_train(dtype, args.iters)
            r["threads"] = torch.get_num_threads()
            r["torch_version"] = torch.__version__
            results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

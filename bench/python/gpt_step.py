#!/usr/bin/env python3
"""Python (plain PyTorch, CPU) speed baseline for one GPT training step.

The model is the reference in scripts/reference/gpt_reference.py.  One timed
iteration is a nanoGPT-style step: forward (under CPU bfloat16 autocast with
--dtype bf16), loss.backward(), clip_grad_norm_(1.0), AdamW step, and
zero_grad(set_to_none=True).  Token batches are random, drawn from a seeded
torch.Generator before timing starts.

    /usr/bin/python3 bench/python/gpt_step.py --dtype fp32 --threads 2 --json out.json
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(_HERE, "..", "..", "scripts", "reference")))
from gpt_reference import GPT, GPTConfig  # noqa: E402


def make_optimizer(model, lr, weight_decay, betas):
    # Weight decay on matrices and embeddings (2-D tensors) only; biases and
    # LayerNorm gains are not decayed.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def main(argv=None):
    ap = argparse.ArgumentParser(description="GPT training-step speed, plain PyTorch on CPU")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--activation", default="gelu", choices=["gelu", "gelu_tanh"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--json", default=None, help="write the result to this file")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg = GPTConfig(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                    block_size=args.block_size, vocab_size=args.vocab_size,
                    bias=True, dropout=0.0, activation=args.activation)
    model = GPT(cfg)
    model.train()
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))

    gen = torch.Generator().manual_seed(args.seed)
    shape = (args.batch_size, args.block_size)
    n_batches = args.warmup + args.iters
    batches = [(torch.randint(cfg.vocab_size, shape, generator=gen),
                torch.randint(cfg.vocab_size, shape, generator=gen)) for _ in range(n_batches)]

    use_bf16 = args.dtype == "bf16"

    def step(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    times_ms = []
    losses = []
    for i, (x, y) in enumerate(batches):
        t0 = time.perf_counter()
        loss = step(x, y)
        dt = (time.perf_counter() - t0) * 1e3
        losses.append(loss.item())
        if i >= args.warmup:
            times_ms.append(dt)

    med = statistics.median(times_ms)
    tokens = args.batch_size * args.block_size
    result = {
        "impl": "python",
        "torch_version": torch.__version__,
        "ms_per_iter": med,
        "ms_min": min(times_ms),
        "tokens_per_s": tokens / (med / 1e3),
        "config": {
            "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd,
            "block_size": cfg.block_size, "vocab_size": cfg.vocab_size,
            "batch_size": args.batch_size, "bias": cfg.bias, "dropout": cfg.dropout,
            "activation": cfg.activation,
        },
        "dtype": args.dtype,
        "threads": args.threads,
        "iters": args.iters,
        "warmup": args.warmup,
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

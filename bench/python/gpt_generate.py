#!/usr/bin/env python3
"""Python (plain PyTorch, CPU) speed baseline for batch-1 GPT-2 decoding with a KV cache.

The model is the reference in scripts/reference/gpt_reference.py at GPT-2 124M's shape (random
weights: speed does not depend on their values). Decoding appends each step's keys and values to a
cache and runs the blocks on the new token only, as Hugging Face's past_key_values does. fp32, or
bf16 autocast (--dtype bf16, fp32 weights, as the issue's baseline) or bf16 weights
(--dtype bf16-weights). Greedy, a 16-token prompt, --new-tokens tokens; the same measures as
`gpt-bench --generate`: tokens/s and ms per token with 16 and 900 tokens of context.

    /usr/bin/python3 bench/python/gpt_generate.py --dtype fp32 --threads 2 --json out.json
"""

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(_HERE, "..", "..", "scripts", "reference")))
from gpt_reference import GPT, GPTConfig  # noqa: E402


def block_step(block, x, cache):
    """One block on the new tokens x (B, t, C); cache = [k, v] of (B, H, T, D) or None entries."""
    attn = block.attn
    B, t, C = x.shape
    H = attn.n_head
    q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=2)
    q, k, v = (z.view(B, t, H, C // H).transpose(1, 2) for z in (q, k, v))
    if cache[0] is not None:
        k = torch.cat([cache[0], k], dim=2)
        v = torch.cat([cache[1], v], dim=2)
    cache[0], cache[1] = k, v
    att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
    if t > 1:  # the prompt: causal within it
        T = k.size(2)
        mask = torch.ones(t, T, dtype=torch.bool).tril(T - t)
        att = att.masked_fill(~mask, float("-inf"))
    y = F.softmax(att, dim=-1) @ v
    x = x + attn.c_proj(y.transpose(1, 2).reshape(B, t, C))
    return x + block.mlp(block.ln_2(x))


def forward(model, idx, caches, past):
    tr = model.transformer
    t = idx.size(1)
    x = tr.wte(idx) + tr.wpe(torch.arange(past, past + t))
    for block, cache in zip(tr.h, caches):
        x = block_step(block, x, cache)
    x = tr.ln_f(x[:, -1:, :])
    return F.linear(x, tr.wte.weight)  # tied head, last position only


def main(argv=None):
    ap = argparse.ArgumentParser(description="GPT-2 124M batch-1 decoding speed, plain PyTorch on CPU")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "bf16-weights"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1337)
    cfg = GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304,
                    bias=True, dropout=0.0, activation="gelu_tanh")
    model = GPT(cfg).eval()
    if args.dtype == "bf16-weights":
        model = model.to(torch.bfloat16)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.dtype == "bf16" else contextlib.nullcontext

    def new_caches():
        return [[None, None] for _ in range(cfg.n_layer)]

    def generate(prompt, n):
        caches = new_caches()
        logits = forward(model, prompt, caches, 0)
        past = prompt.size(1)
        for _ in range(n):
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            logits = forward(model, nxt, caches, past)
            past += 1

    def ms_per_token_at(context):
        caches = new_caches()
        ids = torch.randint(cfg.vocab_size, (1, context))
        logits = forward(model, ids, caches, 0)
        past, times = context, []
        for _ in range(16):
            t0 = time.perf_counter()
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            logits = forward(model, nxt, caches, past)
            times.append((time.perf_counter() - t0) * 1e3)
            past += 1
        return statistics.median(times)

    prompt = torch.randint(cfg.vocab_size, (1, 16))
    with torch.inference_mode(), autocast():
        generate(prompt, 8)  # warm-up
        rates = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            generate(prompt, args.new_tokens)
            rates.append(args.new_tokens / (time.perf_counter() - t0))
        ms16, ms900 = ms_per_token_at(16), ms_per_token_at(900)
    result = {"impl": "python", "torch_version": torch.__version__, "config": "gpt2-generate",
              "dtype": args.dtype, "threads": args.threads, "new_tokens": args.new_tokens,
              "tokens_per_s": statistics.median(rates), "tokens_per_s_all": rates,
              "ms_per_token_ctx16": ms16, "ms_per_token_ctx900": ms900}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

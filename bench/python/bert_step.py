#!/usr/bin/env python3
"""Python (plain PyTorch, CPU) speed baseline for one BERT pretraining step (MLM + NSP).

The model is the Hugging Face-layout reference BERT of scripts/reference/hf_bert_reference.py
(post-LN encoder, tied MLM decoder, pooler and NSP head), sized as BERT-small (4 x 256, 4
heads, 1024) or BERT-base (12 x 768, 12 heads, 3072) with bert-base-uncased's 30522 tokens
and dropout 0.1. Like Hugging Face's BertForPreTraining, the MLM head scores every position
and the loss counts the masked ones (labels -100 elsewhere). One timed iteration: forward
(under CPU bfloat16 autocast with --dtype bf16), MLM + NSP cross-entropy, backward,
clip_grad_norm_(1.0), AdamW step (lr 1e-4, betas (0.9, 0.999), weight decay 0.01 on 2-D
weights), zero_grad(set_to_none=True). Batches are random, [CLS] A [SEP] B [SEP] of 128
tokens with 19 masked, drawn before timing starts.

    /usr/bin/python3 bench/python/bert_step.py --config small --dtype fp32 --threads 2 --json out.json
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(_HERE, "..", "..", "scripts", "reference")))
import hf_bert_reference as ref  # noqa: E402

CONFIGS = {
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def add_dropout(p):
    # The reference is an inference model; training BERT applies dropout to the embeddings, the
    # attention weights and every residual branch. Patch the forwards to do so.
    def output_forward(self, x, residual):
        return self.LayerNorm(nn.functional.dropout(self.dense(x), p, self.training) + residual)

    def embeddings_forward(self, ids, types, _orig=ref.Embeddings.forward):
        return nn.functional.dropout(_orig(self, ids, types), p, self.training)

    def attention_forward(self, x, additive_mask):
        b, t, ch = x.shape
        d = ch // self.h
        q, k, v = (f(x).view(b, t, self.h, d).transpose(1, 2) for f in (self.query, self.key, self.value))
        w = (q @ k.transpose(-1, -2) / d ** 0.5 + additive_mask).softmax(dim=-1)
        return (nn.functional.dropout(w, p, self.training) @ v).transpose(1, 2).reshape(b, t, ch)

    ref.Output.forward = output_forward
    ref.Embeddings.forward = embeddings_forward
    ref.SelfAttention.forward = attention_forward


def layer_norm_fp32(self, x):
    # torch 1.13's CPU autocast does not cover layer_norm, which refuses a bfloat16 input with
    # float32 weights: normalise in float32, as attnzoo's LayerNorm does.
    return nn.functional.layer_norm(x.float(), x.shape[-1:], self.gamma, self.beta, self.eps)


def batch(B, T, V, gen):
    ids = torch.randint(5, V, (B, T), generator=gen)
    types = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    a = T // 2
    for b in range(B):
        ids[b, 0], ids[b, a], ids[b, T - 1] = 2, 3, 3
        types[b, a + 1:] = 1
        cand = [p for p in range(1, T - 1) if p != a]
        order = torch.randperm(len(cand), generator=gen)[: min(20, round(0.15 * len(cand)))]
        for i in order.tolist():
            labels[b, cand[i]] = ids[b, cand[i]]
            ids[b, cand[i]] = 4
    return ids, types, torch.ones(B, T, dtype=torch.long), labels, torch.randint(0, 2, (B,), generator=gen)


def main(argv=None):
    ap = argparse.ArgumentParser(description="BERT MLM + NSP training-step speed, plain PyTorch on CPU")
    ap.add_argument("--config", default="small", choices=sorted(CONFIGS))
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--json", default=None, help="write the result to this file")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ref.LayerNorm.forward = layer_norm_fp32
    add_dropout(0.1)
    cfg = dict(ref.CONFIG, vocab_size=30522, max_position_embeddings=512, **CONFIGS[args.config])
    model = ref.BertForPreTraining(cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.999), eps=1e-6)
    gen = torch.Generator().manual_seed(args.seed)
    batches = [batch(args.batch_size, args.seq_len, cfg["vocab_size"], gen) for _ in range(args.warmup + args.iters)]
    V = cfg["vocab_size"]

    def step(ids, types, mask, labels, nsp):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            mlm, nsp_logits = model(ids, types, mask)  # (B, T, V): every position scored
        loss = nn.functional.cross_entropy(mlm.float().view(-1, V), labels.view(-1), ignore_index=-100) + \
            nn.functional.cross_entropy(nsp_logits.float(), nsp)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    ms = []
    loss = 0.0
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        loss = step(*b)
        if i >= args.warmup:
            ms.append(1000.0 * (time.perf_counter() - t0))
    result = {"config": "bert-" + args.config, "dtype": args.dtype, "mlm_head": "all", "batch_size": args.batch_size,
              "seq_len": args.seq_len, "ms_per_iter": statistics.median(ms), "ms_min": min(ms),
              "threads": torch.get_num_threads(), "final_loss": loss, "iters": args.iters, "ms_all": ms,
              "torch": torch.__version__}
    print(f"python bert-{args.config} {args.dtype}: {result['ms_per_iter']:.1f} ms/iter")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()

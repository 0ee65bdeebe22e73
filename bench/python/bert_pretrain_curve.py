#!/usr/bin/env python3
"""The learning curve of BERT-small pretraining in plain PyTorch, on a directory that
`bert-pretrain prepare` wrote: is attnzoo's slow MLM start the model's, or ours?

The model is the Hugging Face-layout reference BERT of scripts/reference/hf_bert_reference.py
(BERT-small: 4 x 256, 4 heads, 1024, bert-base-uncased's 30522 tokens; no dropout), initialised
as BERT (normal 0.02, LayerNorm 1/0, biases 0). Training follows `bert-pretrain train`'s
defaults: batch 32 of the prepared pairs in a shuffled order, masking 15 % of the non-special
tokens (at most 20 a sequence; 80 % [MASK], 10 % a random token, 10 % kept), the MLM head on the
masked positions only, MLM + NSP cross-entropy, bf16 autocast, AdamW (lr 5e-4, betas (0.9,
0.999), eps 1e-6, weight decay 0.01 on 2-D weights), 100 warmup steps then linear decay,
gradient clipping at 1. Every --eval-every steps it prints the MLM and NSP accuracy on the first
384 validation pairs with fixed masks.

    /usr/bin/python3 bench/python/bert_pretrain_curve.py --data data/kjv_bert --steps 400 --schedule-steps 1600
"""

import argparse
import os
import random
import sys
import time

import torch
import torch.nn as nn

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(_HERE, "..", "..", "scripts", "reference")))
import hf_bert_reference as ref  # noqa: E402
from gpt_reference import load_safetensors  # noqa: E402

V, CLS, SEP, PAD, MASK = 30522, 101, 102, 0, 103
CONFIG = dict(vocab_size=V, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
              max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu")


def layer_norm_fp32(self, x):
    # LibTorch 1.13's CPU layer_norm refuses a bf16 input with fp32 parameters under autocast.
    return nn.functional.layer_norm(x.float(), x.shape[-1:], self.gamma, self.beta, self.eps)


def batch(split, rows, rng):
    pairs = []
    for i in rows:
        a, b = split["offsets"][i].item(), split["offsets"][i + 1].item()
        pairs.append((split["tokens"][a:b].long(), split["a_length"][i].item(), split["next_random"][i].item()))
    T, B = max(len(p[0]) for p in pairs), len(pairs)
    ids = torch.zeros(B, T, dtype=torch.long)
    types, att = torch.zeros_like(ids), torch.zeros_like(ids)
    labels = torch.full((B, T), -100)
    for r, (tok, a_len, _) in enumerate(pairs):
        n = len(tok)
        ids[r, :n], att[r, :n], types[r, a_len + 2:n] = tok, 1, 1
        candidates = [t for t in range(n) if tok[t].item() not in (CLS, SEP, PAD)]
        for t in rng.sample(candidates, min(20, round(len(candidates) * 0.15))):
            labels[r, t] = tok[t]
            u = rng.random()
            if u < 0.8:
                ids[r, t] = MASK
            elif u < 0.9:
                ids[r, t] = rng.randrange(999, V)
    return ids, types, att, labels, torch.tensor([p[2] for p in pairs])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--schedule-steps", type=int, default=0,
                    help="steps of the warmup + linear decay schedule (default --steps), e.g. those of the C++ run compared")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ref.LayerNorm.forward = layer_norm_fp32
    model = ref.BertForPreTraining(CONFIG)
    for name, p in model.named_parameters():
        if name.endswith(".gamma"):
            nn.init.ones_(p)
        elif name.endswith(".beta") or name.endswith("bias"):
            nn.init.zeros_(p)
        else:
            nn.init.normal_(p, 0.0, 0.02)
    train = load_safetensors(os.path.join(args.data, "train.safetensors"))[0]
    val = load_safetensors(os.path.join(args.data, "val.safetensors"))[0]

    def forward(ids, types, att, selected):
        seq, pooled = model.bert(ids, types, att)
        h = model.cls.predictions.transform(seq[selected])
        mlm = h @ model.bert.embeddings.word_embeddings.weight.t() + model.cls.predictions.bias
        return mlm, model.cls.seq_relationship(pooled)

    def evaluate():
        model.eval()
        rng, right, total, nsp_right, n = random.Random(7), 0, 0, 0, min(384, val["a_length"].shape[0])
        with torch.no_grad():
            for s in range(0, n - 31, 32):
                ids, types, att, labels, nsp = batch(val, range(s, s + 32), rng)
                sel = labels != -100
                mlm, ns = forward(ids, types, att, sel)
                right += (mlm.argmax(-1) == labels[sel]).sum().item()
                total += sel.sum().item()
                nsp_right += (ns.argmax(-1) == nsp).sum().item()
        model.train()
        return right / total, nsp_right / (n // 32 * 32)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=5e-4, betas=(0.9, 0.999), eps=1e-6)
    warmup, total = 100, args.schedule_steps or args.steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    rng = random.Random(1)
    order = list(range(train["a_length"].shape[0]))
    rng.shuffle(order)
    pos, start = 0, time.time()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0:
            mlm_acc, nsp_acc = evaluate()
            print(f"step {step}: val mlm_acc {mlm_acc:.4f} nsp_acc {nsp_acc:.3f} ({time.time() - start:.0f} s)", flush=True)
        if step == args.steps:
            break
        if pos + 32 > len(order):
            rng.shuffle(order)
            pos = 0
        ids, types, att, labels, nsp = batch(train, order[pos:pos + 32], rng)
        pos += 32
        sel = labels != -100
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mlm, ns = forward(ids, types, att, sel)
        loss = nn.functional.cross_entropy(mlm.float(), labels[sel]) + nn.functional.cross_entropy(ns.float(), nsp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()


if __name__ == "__main__":
    main()

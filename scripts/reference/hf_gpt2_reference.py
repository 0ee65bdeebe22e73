#!/usr/bin/env python3
"""A tiny GPT-2 in Hugging Face's checkpoint layout, and the golden files of the HF importer test.

This is our own small GPT-2 written the way Hugging Face's modeling_gpt2.py lays out its
weights (no transformers import): Conv1D layers keep their weight as [in, out] and compute
x @ W + b; the causal mask is a registered buffer `attn.bias` (1, 1, n_positions, n_positions)
and `attn.masked_bias` a scalar, as older Hub checkpoints store them; the output head
`lm_head.weight` is tied to `transformer.wte.weight`.  Keys (GPT2LMHeadModel.state_dict()):

    transformer.wte.weight                  [V, C]
    transformer.wpe.weight                  [n_positions, C]
    transformer.h.<i>.ln_1.weight / .bias   [C]
    transformer.h.<i>.attn.bias             [1, 1, n_positions, n_positions]  (buffer)
    transformer.h.<i>.attn.masked_bias      []                                 (buffer)
    transformer.h.<i>.attn.c_attn.weight    [C, 3C]   Conv1D: [in, out]; columns q, k, v
    transformer.h.<i>.attn.c_attn.bias      [3C]
    transformer.h.<i>.attn.c_proj.weight    [C, C]
    transformer.h.<i>.ln_2.weight / .bias   [C]
    transformer.h.<i>.mlp.c_fc.weight       [C, 4C]
    transformer.h.<i>.mlp.c_proj.weight     [4C, C]
    transformer.ln_f.weight / .bias         [C]
    lm_head.weight                          [V, C]   (the same tensor as wte)

Running it (Debian's python3-torch 1.13) rewrites

    tests/data/hf_gpt2_tiny/config.json         a GPT2Config as save_pretrained writes it
    tests/data/hf_gpt2_tiny/model.safetensors   the weights above (lm_head.weight included)
    tests/data/hf_gpt2_tiny_logits.safetensors  "idx" (B, T) int64 and "logits" (B, T, V) float32

The forward runs in float64 and the logits are rounded to float32 once, so the C++ model
(float32) is compared with the exact answer.  The vocabulary (100) is deliberately not a
multiple of 64.

    /usr/bin/python3 scripts/reference/hf_gpt2_reference.py [--out-dir tests/data]
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import load_safetensors, save_safetensors  # noqa: E402

CONFIG = {
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 32,
    "n_positions": 32,
    "vocab_size": 100,
    "layer_norm_epsilon": 1e-5,
    "activation_function": "gelu_new",
}
SEED = 20240605
B, T = 2, 13


class Conv1D(nn.Module):
    """GPT-2's "Conv1D": a linear layer whose weight is stored [in, out]."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        n = c["n_positions"]
        self.n_head = c["n_head"]
        self.register_buffer("bias", torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n))
        self.register_buffer("masked_bias", torch.tensor(-1e4))
        self.c_attn = Conv1D(c["n_embd"], 3 * c["n_embd"])
        self.c_proj = Conv1D(c["n_embd"], c["n_embd"])

    def forward(self, x):
        b, t, ch = x.shape
        h, d = self.n_head, ch // self.n_head
        q, k, v = self.c_attn(x).split(ch, dim=2)
        q, k, v = (z.view(b, t, h, d).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        w = q @ k.transpose(-1, -2) / math.sqrt(d)                             # (B, H, T, T)
        causal = self.bias[:, :, :t, :t].bool()
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        y = w.softmax(dim=-1) @ v                                              # (B, H, T, D)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, ch))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = Conv1D(c["n_embd"], 4 * c["n_embd"])
        self.c_proj = Conv1D(4 * c["n_embd"], c["n_embd"])

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        eps = c["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(c["n_embd"], eps=eps)
        self.attn = Attention(c)
        self.ln_2 = nn.LayerNorm(c["n_embd"], eps=eps)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["n_positions"], c["n_embd"])
        self.h = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(c["n_embd"], eps=c["layer_norm_epsilon"])


class GPT2LMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = Transformer(c)
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied

    def forward(self, idx):
        tr = self.transformer
        pos = torch.arange(idx.shape[1])
        x = tr.wte(idx) + tr.wpe(pos)
        for block in tr.h:
            x = block(x)
        return self.lm_head(tr.ln_f(x))


def init_random(model, gen):
    """Every parameter random and of order one, so that a wrong transpose, a missing bias or a
    wrong activation changes the logits far beyond the tolerance."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[0] if p.dim() == 2 and "c_" in name else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def hf_config():
    """A GPT2Config's fields as GPT2LMHeadModel.save_pretrained writes them."""
    return {
        "activation_function": CONFIG["activation_function"],
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": CONFIG["vocab_size"] - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": CONFIG["vocab_size"] - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": CONFIG["layer_norm_epsilon"],
        "model_type": "gpt2",
        "n_ctx": CONFIG["n_positions"],
        "n_embd": CONFIG["n_embd"],
        "n_head": CONFIG["n_head"],
        "n_inner": None,
        "n_layer": CONFIG["n_layer"],
        "n_positions": CONFIG["n_positions"],
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": "float32",
        "transformers_version": "4.40.0",
        "use_cache": True,
        "vocab_size": CONFIG["vocab_size"],
    }


def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(root, "tests", "data"))
    args = ap.parse_args(argv)

    gen = torch.Generator().manual_seed(SEED)
    model = GPT2LMHead(CONFIG)
    init_random(model, gen)
    model.eval()
    idx = torch.randint(0, CONFIG["vocab_size"], (B, T), generator=gen)
    with torch.no_grad():
        logits = model.double()(idx).float()  # (B, T, V)
    model.float()

    state = model.state_dict()
    # Buffers keep their stored dtypes: attn.bias uint8 is not in gpt_reference's writer, so as
    # float32 (Hub checkpoints have it as float32 or uint8 alike; the importer ignores it).
    tensors = {k: (v.float() if v.dtype != torch.float32 else v).clone() for k, v in state.items()}
    assert torch.equal(tensors["lm_head.weight"], tensors["transformer.wte.weight"])

    hf_dir = os.path.join(args.out_dir, "hf_gpt2_tiny")
    os.makedirs(hf_dir, exist_ok=True)
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(hf_config(), f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(hf_dir, "model.safetensors"), tensors, {"format": "pt"})
    golden = os.path.join(args.out_dir, "hf_gpt2_tiny_logits.safetensors")
    save_safetensors(golden, {"idx": idx, "logits": logits},
                     {"seed": SEED, "about": "scripts/reference/hf_gpt2_reference.py"})

    # Read back and recompute in float32 from the file, as the C++ test will.
    back, _ = load_safetensors(os.path.join(hf_dir, "model.safetensors"))
    check = GPT2LMHead(CONFIG)
    check.load_state_dict({k: v.to(state[k].dtype) for k, v in back.items()})
    check.eval()
    with torch.no_grad():
        diff = (check(idx) - logits).abs().max().item()
    print(f"wrote {hf_dir} and {golden}; float32 vs float64 max |logit diff| {diff:.3g}")
    assert diff < 1e-4


if __name__ == "__main__":
    main()

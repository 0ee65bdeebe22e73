#!/usr/bin/env python3
"""Plain-torch reference of attnzoo's GPT, and writer of its golden test files.

The model is a small GPT-2 style decoder (token + learned position embeddings,
pre-LayerNorm blocks of causal self-attention and a GELU MLP, final LayerNorm,
output projection tied to the token embedding).  Parameter names follow the
state-dict layout the C++ model uses:

    transformer.wte.weight            [V, C]
    transformer.wpe.weight            [T, C]
    transformer.h.<i>.ln_1.weight     [C]        (.bias when bias=True)
    transformer.h.<i>.attn.c_attn.weight [3C, C] (rows: q, then k, then v)
    transformer.h.<i>.attn.c_proj.weight [C, C]
    transformer.h.<i>.ln_2.weight     [C]
    transformer.h.<i>.mlp.c_fc.weight [4C, C]
    transformer.h.<i>.mlp.c_proj.weight [C, 4C]
    transformer.ln_f.weight           [C]

Linear layers have PyTorch's [out, in] layout.  There is no lm_head parameter:
logits are computed as x @ wte.weight^T.

Running this file (with Debian's python3-torch) rewrites
tests/data/gpt_golden.safetensors and tests/data/gpt_golden_tanh.safetensors
and then reads them back to check them.

    /usr/bin/python3 scripts/reference/gpt_reference.py [--out-dir DIR]
"""

import argparse
import json
import math
import os
import struct
import sys
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- model

@dataclass
class GPTConfig:
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 16
    vocab_size: int = 37
    bias: bool = True
    dropout: float = 0.0
    activation: str = "gelu"  # "gelu" (exact, erf) or "gelu_tanh"


class LayerNorm(nn.Module):
    """LayerNorm over the last dim, eps 1e-5, with an optional bias.

    torch 1.13's nn.LayerNorm always has a bias, hence this small module.
    Under CPU autocast the input may arrive as bfloat16 while the affine
    parameters stay float32; the norm is then computed in float32.
    """

    def __init__(self, dim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        if x.dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.attn_drop = nn.Dropout(cfg.dropout)
        self.resid_drop = nn.Dropout(cfg.dropout)
        # Lower-triangular mask; not a parameter, not part of the state dict.
        mask = torch.ones(cfg.block_size, cfg.block_size, dtype=torch.bool).tril()
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=-1)
        # [B, T, C] -> [B, n_head, T, hs]
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        scores = scores.masked_fill(~self.causal_mask[:T, :T], float("-inf"))
        probs = self.attn_drop(F.softmax(scores, dim=-1))
        y = (probs @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.activation == "gelu":
            self.approximate = "none"
        elif cfg.activation == "gelu_tanh":
            self.approximate = "tanh"
        else:
            raise ValueError(f"unknown activation {cfg.activation!r}")
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        h = F.gelu(self.c_fc(x), approximate=self.approximate)
        return self.drop(self.c_proj(h))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.n_embd, cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = LayerNorm(cfg.n_embd, cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=LayerNorm(cfg.n_embd, cfg.bias),
        ))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        # Linear / Embedding weights ~ N(0, 0.02), biases 0, LayerNorm 1 / 0;
        # the two residual output projections get a depth-scaled std.
        proj_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        for name, mod in self.named_modules():
            if isinstance(mod, nn.Linear):
                std = proj_std if name.endswith("c_proj") else 0.02
                nn.init.normal_(mod.weight, mean=0.0, std=std)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Embedding):
                nn.init.normal_(mod.weight, mean=0.0, std=0.02)
            elif isinstance(mod, LayerNorm):
                nn.init.ones_(mod.weight)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        assert T <= self.cfg.block_size, f"sequence of {T} > block_size {self.cfg.block_size}"
        tr = self.transformer
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = tr.drop(tr.wte(idx) + tr.wpe(pos))
        for block in tr.h:
            x = block(x)
        x = tr.ln_f(x)
        logits = F.linear(x, tr.wte.weight)  # tied output projection, no bias
        loss = None
        if targets is not None:
            flat = logits.view(-1, logits.size(-1))
            if flat.dtype in (torch.bfloat16, torch.float16):
                flat = flat.float()  # reduced-precision logits (autocast): loss in float32
            loss = F.cross_entropy(flat, targets.view(-1))
        return logits, loss


# --------------------------------------------------------------------------- safetensors

_DTYPES = {
    torch.float32: ("F32", "<f4"),
    torch.float64: ("F64", "<f8"),
    torch.int64: ("I64", "<i8"),
    torch.int32: ("I32", "<i4"),
}
_FROM_NAME = {name: (dt, np_dt) for dt, (name, np_dt) in _DTYPES.items()}


def save_safetensors(path, tensors, metadata=None):
    """Write {name: tensor} as a safetensors file (keys sorted, header 8-aligned)."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        dtype_name, np_dtype = _DTYPES[t.dtype]
        raw = t.numpy().astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path):
    """Read a safetensors file back; returns (tensors, metadata), checking offsets."""
    import numpy as np

    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, "header length not 8-aligned"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    expected = 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"][0]):
        info = header[name]
        begin, end = info["data_offsets"]
        assert begin == expected, f"{name}: gap or overlap in data"
        expected = end
        dt, np_dtype = _FROM_NAME[info["dtype"]]
        arr = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.astype(np_dtype[1:], copy=True))
        assert tensors[name].dtype == dt
    assert expected == len(body), "trailing bytes after the last tensor"
    return tensors, metadata


# --------------------------------------------------------------------------- golden files

GOLDEN_B, GOLDEN_T = 2, 11


def make_golden(cfg, seed, with_grads):
    """Build the model and one batch from `seed`; return the tensors to store."""
    torch.manual_seed(seed)
    model = GPT(cfg)
    idx = torch.randint(cfg.vocab_size, (GOLDEN_B, GOLDEN_T), dtype=torch.long)
    targets = torch.randint(cfg.vocab_size, (GOLDEN_B, GOLDEN_T), dtype=torch.long)

    model.train()  # dropout is 0.0, so train/eval give the same numbers
    logits, loss = model(idx, targets)
    out = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out["input.idx"] = idx
    out["input.targets"] = targets
    out["output.logits"] = logits.detach()
    out["output.loss"] = loss.detach().reshape([])
    if with_grads:
        loss.backward()
        for name, p in model.named_parameters():
            out["grad." + name] = p.grad.detach().clone()
    return model, out


def check_golden(path, cfg, with_grads):
    """Read `path` back, rebuild the model from its weights and recompute."""
    tensors, meta = load_safetensors(path)
    assert json.loads(meta["config"]) == asdict(cfg), "config metadata mismatch"
    model = GPT(cfg)
    weights = {k: v for k, v in tensors.items() if not k.startswith(("input.", "output.", "grad."))}
    model.load_state_dict(weights, strict=True)
    logits, loss = model(tensors["input.idx"], tensors["input.targets"])
    assert torch.equal(logits.detach(), tensors["output.logits"]), "logits do not reproduce"
    assert torch.equal(loss.detach().reshape([]), tensors["output.loss"]), "loss does not reproduce"
    grad_keys = [k for k in tensors if k.startswith("grad.")]
    if with_grads:
        loss.backward()
        assert sorted(grad_keys) == sorted("grad." + n for n, _ in model.named_parameters())
        for n, p in model.named_parameters():
            assert torch.equal(p.grad, tensors["grad." + n]), f"grad of {n} does not reproduce"
    else:
        assert not grad_keys

    # How far float32 is from a float64 evaluation of the same weights: a guide
    # for the tolerances the C++ tests can use.
    model64 = GPT(cfg).double()
    model64.load_state_dict({k: v.double() for k, v in weights.items()})
    logits64, loss64 = model64(tensors["input.idx"], tensors["input.targets"])
    report = {
        "logits_max_abs_err_vs_f64": (tensors["output.logits"].double() - logits64).abs().max().item(),
        "loss_abs_err_vs_f64": abs(tensors["output.loss"].item() - loss64.item()),
    }
    if with_grads:
        loss64.backward()
        report["grad_max_abs_err_vs_f64"] = max(
            (tensors["grad." + n].double() - p.grad).abs().max().item()
            for n, p in model64.named_parameters())
    return tensors, report


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.normpath(os.path.join(here, "..", "..", "tests", "data"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=default_out)
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(1)  # deterministic reductions

    jobs = [
        ("gpt_golden.safetensors",
         GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=37,
                   bias=True, dropout=0.0, activation="gelu"), 1234, True),
        ("gpt_golden_tanh.safetensors",
         GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=37,
                   bias=False, dropout=0.0, activation="gelu_tanh"), 4321, False),
    ]
    for fname, cfg, seed, with_grads in jobs:
        path = os.path.join(args.out_dir, fname)
        _, tensors = make_golden(cfg, seed, with_grads)
        meta = {
            "config": json.dumps(asdict(cfg), sort_keys=True),
            "seed": str(seed),
            "torch_version": torch.__version__,
            "generator": "scripts/reference/gpt_reference.py",
        }
        save_safetensors(path, tensors, meta)
        _, report = check_golden(path, cfg, with_grads)
        print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes, "
              f"loss {tensors['output.loss'].item():.6f}")
        for k, v in report.items():
            print(f"  {k}: {v:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

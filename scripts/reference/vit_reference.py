#!/usr/bin/env python3
"""A tiny ViT in timm's checkpoint layout, and the golden files of the timm importer test.

Our own small Vision Transformer written the way timm's vision_transformer.py computes and names
it (no timm import): a Conv2d patch embedding with stride = patch, a [class] token, learned
position embeddings, pre-LN blocks (LayerNorm eps 1e-6, fused qkv, exact GELU), a final norm and
a head on the [class] token.  Keys (VisionTransformer.state_dict()):

    cls_token                     [1, 1, C]
    pos_embed                     [1, 1 + N, C]
    patch_embed.proj.weight/bias  [C, Cin, P, P] / [C]
    blocks.<i>.norm1.weight/bias  [C]
    blocks.<i>.attn.qkv.weight    [3C, C]  rows q, k, v; heads contiguous within each
    blocks.<i>.attn.qkv.bias      [3C]
    blocks.<i>.attn.proj.weight   [C, C]
    blocks.<i>.norm2.weight/bias  [C]
    blocks.<i>.mlp.fc1.weight     [hidden, C]
    blocks.<i>.mlp.fc2.weight     [C, hidden]
    norm.weight/bias              [C]
    head.weight/bias              [K, C]

Images of another size get the position embeddings resampled as timm's resample_abs_pos_embed
(bicubic, antialias, align_corners False).

Running it (Debian's python3-torch 1.13) rewrites

    tests/data/timm_vit_tiny/config.json        as the Hugging Face Hub ships a timm model
    tests/data/timm_vit_tiny/model.safetensors  the weights above
    tests/data/timm_vit_tiny_logits.safetensors "images16" (2, 3, 16, 16) -> "logits16" (2, 5),
                                                "images24" (2, 3, 24, 24) -> "logits24" (2, 5)

The forward runs in float64 and the logits are rounded to float32 once.

    /usr/bin/python3 scripts/reference/vit_reference.py [--out-dir tests/data]
"""

import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import save_safetensors  # noqa: E402

IMG, PATCH, CIN, DIM, DEPTH, HEADS, MLP_RATIO, CLASSES = 16, 4, 3, 32, 2, 2, 4.0, 5
SEED = 20261127


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(DIM, 3 * DIM)
        self.attn.proj = nn.Linear(DIM, DIM)
        self.norm2 = nn.LayerNorm(DIM, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(DIM, int(DIM * MLP_RATIO))
        self.mlp.fc2 = nn.Linear(int(DIM * MLP_RATIO), DIM)

    def forward(self, x):
        B, T, C = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(B, T, 3, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, T, D)
        att = (q @ k.transpose(-2, -1)) * (C // HEADS) ** -0.5
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn.proj(y)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        n = (IMG // PATCH) ** 2
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(CIN, DIM, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n, DIM) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, img):
        x = self.patch_embed.proj(img).flatten(2).transpose(1, 2)
        g, nh, nw = IMG // PATCH, img.shape[2] // PATCH, img.shape[3] // PATCH
        pos = self.pos_embed
        if (nh, nw) != (g, g):
            grid = pos[:, 1:].reshape(1, g, g, DIM).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
            pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, nh * nw, DIM)], 1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data"))
    args = ap.parse_args()
    torch.manual_seed(SEED)
    model = ViT()
    with torch.no_grad():  # non-trivial norms and biases, so that every key matters
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model = model.double().eval()
    images16 = torch.randn(2, CIN, 16, 16).double()  # float32 values, exact in float64
    images24 = torch.randn(2, CIN, 24, 24).double()
    with torch.no_grad():
        logits16, logits24 = model(images16), model(images24)

    d = os.path.join(args.out_dir, "timm_vit_tiny")
    os.makedirs(d, exist_ok=True)
    save_safetensors(os.path.join(d, "model.safetensors"),
                     {k: v.float().contiguous() for k, v in model.state_dict().items()})
    config = {
        "architecture": "vit_tiny_patch16_224.test_only",
        "num_classes": CLASSES,
        "num_features": DIM,
        "global_pool": "token",
        "model_args": {"img_size": IMG, "patch_size": PATCH, "embed_dim": DIM, "depth": DEPTH, "num_heads": HEADS,
                       "mlp_ratio": MLP_RATIO},
        "label_names": ["zero", "one", "two", "three", "four"],
        "pretrained_cfg": {"tag": "test_only", "input_size": [CIN, IMG, IMG], "fixed_input_size": True,
                           "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center",
                           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "num_classes": CLASSES,
                           "pool_size": None, "first_conv": "patch_embed.proj", "classifier": "head"},
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_safetensors(os.path.join(args.out_dir, "timm_vit_tiny_logits.safetensors"),
                     {"images16": images16.float(), "logits16": logits16.float(),
                      "images24": images24.float(), "logits24": logits24.float()})
    print("wrote", d, "and timm_vit_tiny_logits.safetensors")


if __name__ == "__main__":
    main()

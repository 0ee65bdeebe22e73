#!/usr/bin/env python3
"""A tiny masked autoencoder in the official MAE layout (models_mae.py), and the golden file of
the C++ MAE test.

Our own small MAE computing as the official code does (no timm or mae import): patch embedding,
fixed 2-D sin-cos position embeddings (get_2d_sincos_pos_embed: row i*g + j holds
[sincos(j), sincos(i)], a zero row for [class]), per-sample masking by argsort of noise, an encoder
of timm blocks (LayerNorm eps 1e-6) over the visible patches, decoder_embed, a shared mask_token
unshuffled with ids_restore, decoder blocks, decoder_norm, decoder_pred, and the MSE on masked
patches (plain and with norm_pix_loss).  Keys as MaskedAutoencoderViT.state_dict():

    cls_token, pos_embed, patch_embed.proj.*, blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*,
    norm.*, decoder_embed.*, mask_token, decoder_pos_embed, decoder_blocks.<i>.*, decoder_norm.*, decoder_pred.*

Running it (Debian's python3-torch 1.13) rewrites tests/data/mae_tiny.safetensors: the weights
above under "model.<key>", and "images" (2, 3, 16, 16), "noise" (2, 16), "pred" (2, 16, 48),
"mask" (2, 16), "loss" and "loss_norm_pix" (scalars).  Float64 forward, float32 outputs.

    /usr/bin/python3 scripts/reference/mae_reference.py [--out-dir tests/data]
"""

import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import save_safetensors  # noqa: E402

IMG, P, CIN, DIM, DEPTH, HEADS, MLP = 16, 4, 3, 32, 2, 2, 4.0
DDIM, DDEPTH, DHEADS = 16, 1, 2
MASK_RATIO = 0.75
SEED = 20261128


def sincos_1d(dim, pos):
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = pos.reshape(-1)[:, None] * omega[None, :]
    return torch.cat([out.sin(), out.cos()], 1)


def sincos_2d(dim, g):
    gw, gh = torch.meshgrid(torch.arange(g, dtype=torch.float64), torch.arange(g, dtype=torch.float64), indexing="xy")
    emb = torch.cat([sincos_1d(dim // 2, gw), sincos_1d(dim // 2, gh)], 1)  # numpy meshgrid(w, h): grid[0] = w
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), emb], 0)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, int(dim * MLP))
        self.mlp.fc2 = nn.Linear(int(dim * MLP), dim)

    def forward(self, x):
        B, T, C = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        att = ((q @ k.transpose(-2, -1)) * (C // self.heads) ** -0.5).softmax(-1)
        x = x + self.attn.proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class MAE(nn.Module):
    def __init__(self):
        super().__init__()
        g = IMG // P
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(CIN, DIM, P, stride=P)
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.pos_embed = nn.Parameter(sincos_2d(DIM, g).float()[None], requires_grad=False)
        self.blocks = nn.ModuleList([Block(DIM, HEADS) for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.decoder_embed = nn.Linear(DIM, DDIM)
        self.mask_token = nn.Parameter(torch.randn(1, 1, DDIM) * 0.02)
        self.decoder_pos_embed = nn.Parameter(sincos_2d(DDIM, g).float()[None], requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(DDIM, DHEADS) for _ in range(DDEPTH)])
        self.decoder_norm = nn.LayerNorm(DDIM, eps=1e-6)
        self.decoder_pred = nn.Linear(DDIM, P * P * CIN)

    def patchify(self, imgs):
        B, C, H, W = imgs.shape
        h = H // P
        x = imgs.reshape(B, C, h, P, h, P)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(B, h * h, P * P * C)

    def forward(self, imgs, noise):
        x = self.patch_embed.proj(imgs).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]
        B, N, C = x.shape
        keep = int(N * (1 - MASK_RATIO))
        ids_shuffle = noise.argsort(1)
        ids_restore = ids_shuffle.argsort(1)
        x = x.gather(1, ids_shuffle[:, :keep, None].expand(-1, -1, C))
        mask = torch.ones(B, N, dtype=x.dtype)
        mask[:, :keep] = 0
        mask = mask.gather(1, ids_restore)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1)
        x = torch.cat([cls, x], 1)
        for b in self.blocks:
            x = b(x)
        x = self.decoder_embed(self.norm(x))
        tokens = torch.cat([x[:, 1:], self.mask_token.expand(B, N - keep, -1)], 1)
        tokens = tokens.gather(1, ids_restore[:, :, None].expand(-1, -1, DDIM))
        x = torch.cat([x[:, :1], tokens], 1) + self.decoder_pos_embed
        for b in self.decoder_blocks:
            x = b(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:]
        target = self.patchify(imgs)
        loss = (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()
        t = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
        loss_np = (((pred - t) ** 2).mean(-1) * mask).sum() / mask.sum()
        return pred, mask, loss, loss_np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data"))
    args = ap.parse_args()
    torch.manual_seed(SEED)
    model = MAE()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model = model.double().eval()
    images = torch.randn(2, CIN, IMG, IMG).double()
    noise = torch.rand(2, (IMG // P) ** 2).double()
    with torch.no_grad():
        pred, mask, loss, loss_np = model(images, noise)
    out = {"model." + k: v.float().contiguous() for k, v in model.state_dict().items()}
    out.update({"images": images.float(), "noise": noise.float(), "pred": pred.float(), "mask": mask.float(),
                "loss": loss.float(), "loss_norm_pix": loss_np.float()})
    save_safetensors(os.path.join(args.out_dir, "mae_tiny.safetensors"), out)
    print("wrote mae_tiny.safetensors")


if __name__ == "__main__":
    main()

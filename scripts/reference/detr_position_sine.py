#!/usr/bin/env python3
"""Golden values of DETR's 2-D sine position embedding, for tests/models/positional_test.cpp.

Computes the encoding of the official DETR's PositionEmbeddingSine (models/position_encoding.py)
from its definition, one pixel and one channel at a time in float64, without torch:

    y(b, i, j) = number of unpadded pixels in rows 0..i of column j   (1-based row)
    x(b, i, j) = number of unpadded pixels in columns 0..j of row i
    normalize: y /= (y of the column's last row + 1e-6), x likewise, both times `scale`
    channel k of F = num_pos_feats:  t = temperature ** (2 * (k // 2) / F)
                                     sin(coord / t) for even k, cos(coord / t) for odd k
    output channels: [y features (F), x features (F)]  ->  (B, 2F, H, W)

Writes tests/data/detr_position_sine.json:
    {"cases": [{"config": {...}, "mask": [B][H][W] bools (true = padding),
                "shape": [B, 2F, H, W], "pos": flat list in (B, 2F, H, W) order}]}

    /usr/bin/python3 scripts/reference/detr_position_sine.py [--out FILE]
"""

import argparse
import json
import math
import os


def encode(mask, num_pos_feats, temperature, normalize, scale):
    B, H, W = len(mask), len(mask[0]), len(mask[0][0])
    F = num_pos_feats
    out = [[[[0.0] * W for _ in range(H)] for _ in range(2 * F)] for _ in range(B)]
    for b in range(B):
        for i in range(H):
            for j in range(W):
                y = sum(1 for r in range(i + 1) if not mask[b][r][j])
                x = sum(1 for c in range(j + 1) if not mask[b][i][c])
                if normalize:
                    y_total = sum(1 for r in range(H) if not mask[b][r][j])
                    x_total = sum(1 for c in range(W) if not mask[b][i][c])
                    y = y / (y_total + 1e-6) * scale
                    x = x / (x_total + 1e-6) * scale
                for k in range(F):
                    t = temperature ** (2 * (k // 2) / F)
                    f = math.sin if k % 2 == 0 else math.cos
                    out[b][k][i][j] = f(y / t)
                    out[b][F + k][i][j] = f(x / t)
    return out


def flatten(nested):
    if isinstance(nested, list):
        return [v for item in nested for v in flatten(item)]
    return [nested]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "data", "detr_position_sine.json"))
    args = parser.parse_args()

    # Image 0 fills the 3 x 4 batch canvas; image 1 is 2 x 3, padded below and to the right.
    mask = [[[False] * 4 for _ in range(3)],
            [[r >= 2 or c >= 3 for c in range(4)] for r in range(3)]]
    configs = [
        {"num_pos_feats": 4, "temperature": 10000.0, "normalize": True, "scale": 2 * math.pi},
        {"num_pos_feats": 6, "temperature": 20.0, "normalize": False, "scale": 2 * math.pi},
    ]
    cases = []
    for cfg in configs:
        pos = encode(mask, **cfg)
        cases.append({"config": cfg, "mask": mask, "shape": [len(mask), 2 * cfg["num_pos_feats"], 3, 4],
                      "pos": [round(v, 9) for v in flatten(pos)]})
    with open(args.out, "w") as f:
        json.dump({"cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A tiny BERT in Hugging Face's checkpoint layout, and the golden files of the HF BERT importer test.

This is our own small BERT written the way Hugging Face's modeling_bert.py lays out
BertForPreTraining (no transformers import): a post-LN encoder with separate query/key/value
projections, LayerNorm eps 1e-12, exact (erf) GELU, a tanh pooler on [CLS], the MLM head
(transform dense + GELU + LayerNorm, then a decoder tied to the word embeddings plus a bias)
and the NSP head.  The padding mask is HF's: (1 - attention_mask) * finfo.min added to the
scores of padded keys.  The file is written the way bert-base-uncased's model.safetensors on
the Hub is: LayerNorm parameters under their old TensorFlow names `gamma` / `beta`, the
`bert.embeddings.position_ids` buffer (int64), and no `cls.predictions.decoder.*` (tied).
Keys:

    bert.embeddings.word_embeddings.weight             [V, C]
    bert.embeddings.position_embeddings.weight         [P, C]
    bert.embeddings.token_type_embeddings.weight       [2, C]
    bert.embeddings.LayerNorm.gamma / .beta            [C]
    bert.embeddings.position_ids                       [1, P]  int64
    bert.encoder.layer.<i>.attention.self.query|key|value.weight [C, C]  .bias [C]
    bert.encoder.layer.<i>.attention.output.dense.weight         [C, C]  .bias [C]
    bert.encoder.layer.<i>.attention.output.LayerNorm.gamma / .beta
    bert.encoder.layer.<i>.intermediate.dense.weight   [I, C]  .bias [I]
    bert.encoder.layer.<i>.output.dense.weight         [C, I]  .bias [C]
    bert.encoder.layer.<i>.output.LayerNorm.gamma / .beta
    bert.pooler.dense.weight / .bias                   [C, C] / [C]
    cls.predictions.bias                               [V]
    cls.predictions.transform.dense.weight / .bias     [C, C] / [C]
    cls.predictions.transform.LayerNorm.gamma / .beta  [C]
    cls.seq_relationship.weight / .bias                [2, C] / [2]

Running it (Debian's python3-torch 1.13) rewrites

    tests/data/hf_bert_tiny/config.json            a BertConfig as save_pretrained writes it
    tests/data/hf_bert_tiny/model.safetensors      the weights above
    tests/data/hf_bert_tiny/vocab.txt              a 100-token WordPiece vocabulary
    tests/data/hf_bert_tiny/tokenizer_config.json  {"do_lower_case": true, ...}
    tests/data/hf_bert_tiny_logits.safetensors     input_ids, token_type_ids, attention_mask (B, T)
                                                   int64; prediction_logits (B, T, V) and
                                                   seq_relationship_logits (B, 2) float32

The batch has two sequences of two segments; the second is padded.  The forward runs in float64
and the logits are rounded to float32 once, so the C++ model (float32) is compared with the exact
answer.

    /usr/bin/python3 scripts/reference/hf_bert_reference.py [--out-dir tests/data]
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
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 48,
    "max_position_embeddings": 40,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
}
SEED = 20240606
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "of", "and", "to", "in", "is", "was", "he", "she", "it", "they", "people", "speak",
         "germany", "german", "france", "french", "england", "english", "god", "said", "light", "day",
         "night", "earth", "heaven", "water", "king", "land", "house", "son"]
PUNCT = [",", ".", "!", "?", "'", ";", ":"]
PIECES = ["##s", "##ed", "##ing", "##er", "##ly", "##n", "##e", "##a"]


def vocabulary():
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = SPECIALS + PUNCT + letters + WORDS + PIECES
    vocab += [f"[unused{i}]" for i in range(CONFIG["vocab_size"] - len(vocab))]
    assert len(vocab) == CONFIG["vocab_size"] and len(set(vocab)) == len(vocab)
    return vocab


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


class LayerNorm(nn.Module):
    """nn.LayerNorm with the parameters named as in TensorFlow-converted BERT checkpoints."""

    def __init__(self, c, eps):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c))
        self.beta = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        return nn.functional.layer_norm(x, x.shape[-1:], self.gamma, self.beta, self.eps)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["hidden_size"]
        self.word_embeddings = nn.Embedding(c["vocab_size"], C)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], C)
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], C)
        self.LayerNorm = LayerNorm(C, c["layer_norm_eps"])
        self.register_buffer("position_ids", torch.arange(c["max_position_embeddings"]).unsqueeze(0))

    def forward(self, ids, types):
        pos = self.position_ids[:, : ids.shape[1]]
        x = self.word_embeddings(ids) + self.token_type_embeddings(types) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["hidden_size"]
        self.h = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)

    def forward(self, x, additive_mask):
        b, t, ch = x.shape
        d = ch // self.h
        q, k, v = (p(x).view(b, t, self.h, d).transpose(1, 2) for p in (self.query, self.key, self.value))
        w = q @ k.transpose(-1, -2) / math.sqrt(d) + additive_mask  # (B, H, T, T)
        y = w.softmax(dim=-1) @ v                                    # (B, H, T, D)
        return y.transpose(1, 2).reshape(b, t, ch)


class Output(nn.Module):
    """BertSelfOutput / BertOutput: LayerNorm(dense(x) + residual)."""

    def __init__(self, c, n_in):
        super().__init__()
        self.dense = nn.Linear(n_in, c["hidden_size"])
        self.LayerNorm = LayerNorm(c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "self", SelfAttention(c))
        self.output = Output(c, c["hidden_size"])

    def forward(self, x, mask):
        return self.output(getattr(self, "self")(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = Output(c, c["intermediate_size"])

    def forward(self, x, mask):
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c)

    def forward(self, ids, types, attention_mask):
        x = self.embeddings(ids, types)
        # HF's extended attention mask: 0 where attended, the dtype's minimum at padded keys.
        additive = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, additive)
        return x, self.pooler(x)


class Transform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = LayerNorm(c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(gelu(self.dense(x)))


class Predictions(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = Transform(c)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))


class Heads(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = Predictions(c)
        self.seq_relationship = nn.Linear(c["hidden_size"], 2)


class BertForPreTraining(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.cls = Heads(c)

    def forward(self, ids, types, attention_mask):
        seq, pooled = self.bert(ids, types, attention_mask)
        h = self.cls.predictions.transform(seq)
        mlm = h @ self.bert.embeddings.word_embeddings.weight.t() + self.cls.predictions.bias  # tied decoder
        return mlm, self.cls.seq_relationship(pooled)


def init_random(model, gen):
    """Every parameter random and of order one, so that a wrong key, a missing bias, a wrong
    activation or a misplaced LayerNorm changes the logits far beyond the tolerance."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".gamma"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".beta") or name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))


def hf_config():
    """A BertConfig's fields as BertForPreTraining.save_pretrained writes them."""
    return {
        "architectures": ["BertForPreTraining"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": CONFIG["hidden_act"],
        "hidden_dropout_prob": 0.1,
        "hidden_size": CONFIG["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": CONFIG["intermediate_size"],
        "layer_norm_eps": CONFIG["layer_norm_eps"],
        "max_position_embeddings": CONFIG["max_position_embeddings"],
        "model_type": "bert",
        "num_attention_heads": CONFIG["num_attention_heads"],
        "num_hidden_layers": CONFIG["num_hidden_layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.40.0",
        "type_vocab_size": CONFIG["type_vocab_size"],
        "use_cache": True,
        "vocab_size": CONFIG["vocab_size"],
    }


def batch(gen):
    """[CLS] A [SEP] B [SEP] twice: 13 tokens, and 9 tokens padded to 13."""
    V = CONFIG["vocab_size"]
    ids = torch.zeros(2, 13, dtype=torch.long)
    types = torch.zeros(2, 13, dtype=torch.long)
    mask = torch.zeros(2, 13, dtype=torch.long)
    for row, (la, lb) in enumerate([(5, 5), (3, 3)]):
        n = la + lb + 3
        ids[row, :n] = torch.randint(5, V, (n,), generator=gen)
        ids[row, 0], ids[row, la + 1], ids[row, n - 1] = 2, 3, 3  # [CLS], [SEP], [SEP]
        ids[row, 2] = 4                                            # a [MASK]
        types[row, la + 2:n] = 1
        mask[row, :n] = 1
    return ids, types, mask


def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(root, "tests", "data"))
    args = ap.parse_args(argv)

    gen = torch.Generator().manual_seed(SEED)
    model = BertForPreTraining(CONFIG)
    init_random(model, gen)
    model.eval()
    ids, types, mask = batch(gen)
    with torch.no_grad():
        mlm, nsp = model.double()(ids, types, mask)
    mlm, nsp = mlm.float(), nsp.float()
    model.float()

    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    assert tensors["bert.embeddings.position_ids"].dtype == torch.int64

    hf_dir = os.path.join(args.out_dir, "hf_bert_tiny")
    os.makedirs(hf_dir, exist_ok=True)
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(hf_config(), f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(hf_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": CONFIG["max_position_embeddings"],
                   "tokenizer_class": "BertTokenizer"}, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(hf_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(vocabulary()) + "\n")
    save_safetensors(os.path.join(hf_dir, "model.safetensors"), tensors, {"format": "pt"})
    golden = os.path.join(args.out_dir, "hf_bert_tiny_logits.safetensors")
    save_safetensors(golden, {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
                              "prediction_logits": mlm, "seq_relationship_logits": nsp},
                     {"seed": SEED, "about": "scripts/reference/hf_bert_reference.py"})

    # Read back and recompute in float32 from the file, as the C++ test will.
    back, _ = load_safetensors(os.path.join(hf_dir, "model.safetensors"))
    check = BertForPreTraining(CONFIG)
    check.load_state_dict(back)
    check.eval()
    with torch.no_grad():
        m32, n32 = check(ids, types, mask)
    diff = max((m32 - mlm).abs().max().item(), (n32 - nsp).abs().max().item())
    print(f"wrote {hf_dir} and {golden}; float32 vs float64 max |logit diff| {diff:.3g} "
          f"(logits up to {mlm.abs().max().item():.3g})")
    assert diff < 1e-4


if __name__ == "__main__":
    main()

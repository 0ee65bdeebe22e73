// Multi-head attention (Vaswani et al. 2017, §3.2.2): H heads of scaled dot-product attention
// (attention.h) on learned projections of the queries, keys and values, concatenated and projected:
// MultiHead(Q, K, V) = Concat(head_1, …, head_H) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).
// One module serves self-attention (one fused 3E projection), cross-attention (queries from the
// decoder, keys and values from the encoder, one fused 2E projection) and incremental decoding
// (an AttentionCache of projected keys and values).
//
// Parameters are named and laid out as PyTorch's nn.MultiheadAttention, so that its state dicts,
// and the official DETR checkpoints built on it, load by key:
//   in_proj_weight (3E, E)  rows W^Q, W^K, W^V (torch's (out, in) layout); in_proj_bias (3E)
//   out_proj.weight (E, E), out_proj.bias (E)
// With kdim or vdim != E, PyTorch's separate q_proj_weight (E, E), k_proj_weight (E, kdim) and
// v_proj_weight (E, vdim) replace in_proj_weight. Other layouts (timm's qkv/proj, Hugging Face
// BERT's query/key/value/output.dense) are concatenations or renames of these, done in weights/.
// Inputs are batch first (B, T, E); PyTorch's module is sequence first unless batch_first.
//
// Shape letters: B batch, Tq queries, Tk keys, E embed_dim, H num_heads, D = E / H head size.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/attention.h"

namespace attnzoo::models {

struct MultiheadAttentionConfig {
  int64_t embed_dim = 64;  // E
  int64_t num_heads = 4;   // H, must divide E
  int64_t kdim = 0;        // feature size of the key input; 0 = E
  int64_t vdim = 0;        // feature size of the value input; 0 = E
  double dropout = 0.0;    // on the attention weights, when training
  bool bias = true;        // in_proj_bias and out_proj.bias

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MultiheadAttentionConfig, embed_dim, num_heads, kdim, vdim, dropout,
                                                bias)

// Projected keys and values of the positions seen so far, for incremental decoding.
struct AttentionCache {
  torch::Tensor k{}, v{};  // (B, H, capacity, D); the first `length` positions are valid. Grown on demand.
  int64_t length = 0;      // positions cached
  bool static_kv = false;  // cross-attention: keys and values come from the encoder; projected on the
                           // first call and reused on later ones (their key/value inputs are ignored)
};

struct MultiheadAttentionOutput {
  torch::Tensor out;      // (B, Tq, E)
  torch::Tensor weights;  // (B, H, Tq, Tk) per head, before dropout, when need_weights
};

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiheadAttentionImpl(MultiheadAttentionConfig cfg);

  // query (B, Tq, E), key (B, Tk, kdim), value (B, Tk, vdim). Masks, causality, the local window
  // and need_weights come from opt (attention.h); dropout comes from the config, so opt.dropout
  // and opt.training must be left unset. When query, key and value are the same tensor the
  // projection is one 3E-wide GEMM; when key and value are, one 2E-wide GEMM.
  // With a cache (not static_kv), the Tq queries follow the cache->length cached positions, their
  // keys and values are appended, and attention covers all length + Tq of them.
  MultiheadAttentionOutput forward(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                                   const AttentionOptions& opt = {}, AttentionCache* cache = nullptr);

  // Self-attention over x (B, T, E).
  MultiheadAttentionOutput self_attention(const torch::Tensor& x, const AttentionOptions& opt = {},
                                          AttentionCache* cache = nullptr) {
    return forward(x, x, x, opt, cache);
  }
  // Cross-attention: x (B, Tq, E) attends over memory (B, Tk, kdim), with kdim == vdim.
  MultiheadAttentionOutput cross_attention(const torch::Tensor& x, const torch::Tensor& memory,
                                           const AttentionOptions& opt = {}, AttentionCache* cache = nullptr) {
    return forward(x, memory, memory, opt, cache);
  }

  const MultiheadAttentionConfig& config() const { return cfg; }

  torch::Tensor in_proj_weight;  // (3E, E): W^Q, W^K, W^V; undefined when kdim or vdim != E
  torch::Tensor q_proj_weight;   // (E, E)    only when kdim or vdim != E
  torch::Tensor k_proj_weight;   // (E, kdim) only when kdim or vdim != E
  torch::Tensor v_proj_weight;   // (E, vdim) only when kdim or vdim != E
  torch::Tensor in_proj_bias;    // (3E), undefined without bias
  torch::nn::Linear out_proj = nullptr;  // E -> E: W^O

 private:
  // Rows [i·E, (i + n)·E) of the stacked input projection (i = 0 q, 1 k, 2 v).
  torch::Tensor project(const torch::Tensor& x, int64_t i, int64_t n) const;

  MultiheadAttentionConfig cfg;
  bool packed;  // in_proj_weight rather than three separate weights
};
TORCH_MODULE(MultiheadAttention);

}  // namespace attnzoo::models

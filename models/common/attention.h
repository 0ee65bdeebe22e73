// Scaled dot-product attention, softmax(Q Kᵀ / √d_k) V (Vaswani et al. 2017, eq. 1), written once
// for every model in the zoo, with the masks the lecture names: causal (triangular), full (no
// mask), key padding, and local (Luong et al. 2015's window of ±w positions). Masks combine with
// AND. Shapes: B batch, H heads, Tq queries, Tk keys, D head size.
//
// Positions: query i sits at absolute position Tk - Tq + i (the last Tq of Tk positions, as in
// incremental decoding with a KV cache); key j at position j.
//
// A query that may see no key at all (every key padded, say) gets all-zero weights and a zero
// output, never NaN, and passes no gradient back.
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

struct AttentionOptions {
  bool causal = false;               // query at position p sees keys j <= p
  int64_t window = -1;               // local: query at position p sees keys |p - j| <= window; -1 = global
  torch::Tensor mask{};              // optional bool, broadcastable to (B, H, Tq, Tk); true = may attend
  torch::Tensor key_padding_mask{};  // optional bool (B, Tk); true = padding, never attended (PyTorch's convention)
  torch::Tensor key_lengths{};       // optional integer (B): keys j >= key_lengths[b] are padding
  double dropout = 0.0;              // on the attention weights, only when training
  bool training = false;
  bool need_weights = false;         // return the (B, H, Tq, Tk) weights, before dropout (disables fused kernels)
};

struct AttentionOutput {
  torch::Tensor out;      // (B, H, Tq, D)
  torch::Tensor weights;  // (B, H, Tq, Tk) when need_weights, else undefined
};

// q: (B, H, Tq, D), k: (B, H, Tk, D), v: (B, H, Tk, Dv). Uses LibTorch 2.x's fused kernel when
// weights are not requested; on 1.13 one explicit path.
AttentionOutput scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, const AttentionOptions& opt = {});

// (Tq, Tk) bool mask, true on and below the diagonal that ends at the last key.
torch::Tensor causal_mask(int64_t tq, int64_t tk, torch::Device device);

// (Tq, Tk) bool mask, true where |(Tk - Tq + i) - j| <= window.
torch::Tensor local_mask(int64_t tq, int64_t tk, int64_t window, torch::Device device);

// (B, Tk) bool key padding mask from lengths (B): true at j >= lengths[b].
torch::Tensor key_padding_mask_from_lengths(const torch::Tensor& lengths, int64_t tk);

// The combined "may attend" mask of opt for B, H, Tq, Tk (bool, broadcastable to (B, H, Tq, Tk)),
// undefined when every key is visible. Throws c10::Error for masks of the wrong shape or dtype.
torch::Tensor attention_mask(const AttentionOptions& opt, int64_t B, int64_t H, int64_t tq, int64_t tk,
                             torch::Device device);

// softmax over the last dimension restricted to `allowed` (bool, broadcastable to scores): exactly
// 0 elsewhere, and an all-zero row where nothing is allowed. An undefined mask allows everything.
torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& allowed);

}  // namespace attnzoo::models

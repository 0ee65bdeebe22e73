// Scaled dot-product attention, softmax(Q Kᵀ / √d_k) V (Vaswani et al. 2017, eq. 1), written once
// for every model in the zoo. Shapes: B batch, H heads, Tq queries, Tk keys, D head size.
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

struct AttentionOptions {
  bool causal = false;       // query i (at absolute position Tk - Tq + i) sees keys 0..Tk - Tq + i
  torch::Tensor mask;        // optional bool, broadcastable to (B, H, Tq, Tk); true = may attend
  double dropout = 0.0;      // on the attention weights, only when training
  bool training = false;
  bool need_weights = false; // return the (B, H, Tq, Tk) weights (disables fused kernels)
};

struct AttentionOutput {
  torch::Tensor out;      // (B, H, Tq, D)
  torch::Tensor weights;  // (B, H, Tq, Tk) when need_weights, else undefined
};

// q: (B, H, Tq, D), k and v: (B, H, Tk, D). Uses LibTorch 2.x's fused kernel when weights are not
// requested; on 1.13 one explicit path.
AttentionOutput scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, const AttentionOptions& opt = {});

// (Tq, Tk) bool mask, true on and below the diagonal that ends at the last key.
torch::Tensor causal_mask(int64_t tq, int64_t tk, torch::Device device);

}  // namespace attnzoo::models

#include "models/common/attention.h"

#include "models/common/gemm.h"

#include <cmath>
#include <limits>

namespace attnzoo::models {

torch::Tensor causal_mask(int64_t tq, int64_t tk, torch::Device device) {
  return torch::ones({tq, tk}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(tk - tq);
}

AttentionOutput scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, const AttentionOptions& opt) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects (B, H, T, D) inputs, got q ",
              q.sizes(), ", k ", k.sizes(), ", v ", v.sizes());
  TORCH_CHECK(q.size(-1) == k.size(-1) && k.sizes() == v.sizes(), "attention: q ", q.sizes(), ", k ",
              k.sizes(), " and v ", v.sizes(), " do not fit together");
  const int64_t tq = q.size(2), tk = k.size(2);
  TORCH_CHECK(!opt.causal || tq <= tk, "causal attention needs Tq <= Tk, got ", tq, " > ", tk);
  const double p = opt.training ? opt.dropout : 0.0;

  torch::Tensor mask = opt.mask;
  if (opt.causal) {
    auto c = causal_mask(tq, tk, q.device());
    mask = mask.defined() ? mask.logical_and(c) : c;
  }

#if TORCH_VERSION_MAJOR >= 2
  if (!opt.need_weights) {
    // The fused kernel (flash / memory-efficient on GPU, fused CPU kernel) when no weights are needed.
    const bool plain_causal = opt.causal && !opt.mask.defined() && tq == tk;
    auto out = at::scaled_dot_product_attention(q, k, v, plain_causal ? c10::optional<at::Tensor>() : mask, p,
                                                plain_causal);
    return {out, {}};
  }
#endif

  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = matmul(q, k.transpose(-2, -1), scale);  // (B, H, Tq, Tk)
  if (mask.defined()) scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  auto weights = torch::softmax(scores, -1);
  auto dropped = p > 0.0 ? torch::dropout(weights, p, true) : weights;
  // (B, H, Tq, D), stored as (B, Tq, H, D): merging the heads afterwards is a view, not a copy.
  auto out = matmul(dropped, v, 1.0, /*heads_last=*/true);
  return {out, opt.need_weights ? weights : torch::Tensor()};
}

}  // namespace attnzoo::models

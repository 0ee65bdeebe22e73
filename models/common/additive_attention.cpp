#include "models/common/additive_attention.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "models/common/attention.h"
#include "models/common/layers.h"

namespace attnzoo::models {

void AdditiveAttentionConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(query_dim, "query_dim");
  positive(key_dim, "key_dim");
  positive(hidden_dim, "hidden_dim");
}

AdditiveAttentionImpl::AdditiveAttentionImpl(AdditiveAttentionConfig c) : cfg(std::move(c)) {
  cfg.validate();
  query_proj = register_module("query_proj",
                               torch::nn::Linear(torch::nn::LinearOptions(cfg.query_dim, cfg.hidden_dim).bias(false)));
  key_proj = register_module("key_proj",
                             torch::nn::Linear(torch::nn::LinearOptions(cfg.key_dim, cfg.hidden_dim).bias(cfg.bias)));
  v = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden_dim, 1).bias(false)));
}

torch::Tensor AdditiveAttentionImpl::project_keys(const torch::Tensor& keys) {
  TORCH_CHECK(keys.dim() == 3 && keys.size(2) == cfg.key_dim, "additive attention expects keys (B, Tk, Dk = ",
              cfg.key_dim, "), got ", keys.sizes());
  return linear(key_proj, keys);
}

AdditiveAttentionOutput AdditiveAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& keys,
                                                       const torch::Tensor& key_padding_mask,
                                                       const torch::Tensor& projected_keys) {
  TORCH_CHECK((query.dim() == 2 || query.dim() == 3) && query.size(-1) == cfg.query_dim,
              "additive attention expects a query (B, Dq) or (B, Tq, Dq) with Dq = ", cfg.query_dim, ", got ",
              query.sizes());
  TORCH_CHECK(keys.dim() == 3 && keys.size(0) == query.size(0) && keys.size(2) == cfg.key_dim,
              "additive attention expects keys (B, Tk, Dk) = (", query.size(0), ", Tk, ", cfg.key_dim, "), got ",
              keys.sizes());
  const int64_t B = keys.size(0), Tk = keys.size(1);
  auto uh = projected_keys.defined() ? projected_keys : project_keys(keys);  // (B, Tk, A)
  TORCH_CHECK(uh.sizes() == torch::IntArrayRef({B, Tk, cfg.hidden_dim}), "projected keys must be (B, Tk, A) = (", B,
              ", ", Tk, ", ", cfg.hidden_dim, "), got ", uh.sizes());
  const bool one_step = query.dim() == 2;
  auto s = one_step ? query.unsqueeze(1) : query;  // (B, Tq, Dq)
  auto ws = linear(query_proj, s);                 // (B, Tq, A)
  // (B, Tq, 1, A) + (B, 1, Tk, A) -> tanh -> v -> (B, Tq, Tk)
  auto scores = linear(v, torch::tanh(ws.unsqueeze(2) + uh.unsqueeze(1))).squeeze(-1);
  torch::Tensor allowed;  // (B, 1, Tk)
  if (key_padding_mask.defined()) {
    TORCH_CHECK(key_padding_mask.scalar_type() == torch::kBool &&
                    key_padding_mask.sizes() == torch::IntArrayRef({B, Tk}),
                "key padding mask must be bool (B, Tk) = (", B, ", ", Tk, "), got ", key_padding_mask.scalar_type(),
                " ", key_padding_mask.sizes());
    allowed = key_padding_mask.logical_not().unsqueeze(1);
  }
  auto weights = masked_softmax(scores, allowed);  // (B, Tq, Tk)
  if (allowed.defined())
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto context = torch::bmm(weights, keys);        // (B, Tq, Dk)
  if (one_step) return {context.squeeze(1), weights.squeeze(1), scores.squeeze(1)};
  return {context, weights, scores};
}

}  // namespace attnzoo::models

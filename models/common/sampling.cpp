#include "models/common/sampling.h"

#include <limits>

namespace attnzoo::models {

torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& previous, double penalty) {
  TORCH_CHECK(logits.dim() == 2 && previous.dim() == 2 && previous.size(0) == logits.size(0),
              "apply_repetition_penalty expects (B, V) logits and (B, T) ids, got ", logits.sizes(), " and ",
              previous.sizes());
  TORCH_CHECK(penalty > 0.0, "repetition penalty must be positive, got ", penalty);
  if (penalty == 1.0 || previous.size(1) == 0) return logits;
  const auto ids = previous.clamp(0, logits.size(1) - 1).to(torch::kLong);
  auto seen = logits.gather(1, ids);
  seen = torch::where(seen > 0, seen / penalty, seen * penalty);
  return logits.scatter(1, ids, seen);  // a repeated id gets the same value from each of its copies
}

torch::Tensor sample_next(const torch::Tensor& logits_in, const SamplingOptions& opt,
                          std::optional<torch::Generator> gen) {
  TORCH_CHECK(logits_in.dim() == 2, "sample_next expects (B, V) logits, got ", logits_in.sizes());
  auto logits = logits_in.to(torch::kFloat);
  if (opt.temperature <= 0.0) return logits.argmax(-1, /*keepdim=*/true);
  logits = logits / opt.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (opt.top_k > 0 && opt.top_k < logits.size(-1)) {
    auto kth = std::get<0>(logits.topk(opt.top_k, -1)).select(-1, opt.top_k - 1).unsqueeze(-1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (opt.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose probability reaches top_p (always the first).
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    auto cumulative = sorted.softmax(-1).cumsum(-1);
    auto drop_sorted = (cumulative - sorted.softmax(-1)) >= opt.top_p;
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    logits = logits.masked_fill(drop, neg_inf);
  }
  auto probs = logits.softmax(-1);
  return gen ? torch::multinomial(probs, 1, false, *gen) : torch::multinomial(probs, 1);
}

}  // namespace attnzoo::models

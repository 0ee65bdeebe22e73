#include "losses/label_smoothing.h"

namespace attnzoo::losses {

torch::Tensor label_smoothed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                           double smoothing, int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == targets.dim() + 1 && logits.sizes().slice(0, targets.dim()) == targets.sizes(),
              "label_smoothed_cross_entropy expects logits (..., V) and targets (...), got ", logits.sizes(),
              " and ", targets.sizes());
  TORCH_CHECK(smoothing >= 0.0 && smoothing <= 1.0, "smoothing must lie in [0, 1], got ", smoothing);
  const int64_t V = logits.size(-1);
  auto logp = torch::log_softmax(logits.reshape({-1, V}).to(torch::kFloat), -1);  // (N, V)
  auto y = targets.reshape({-1});                                                  // (N)
  auto valid = y != ignore_index;
  auto nll = -logp.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1);  // (N): −log p_y
  auto uniform = -logp.mean(1);                                         // (N): (1/V) Σ_j −log p_j
  auto per_token = ((1.0 - smoothing) * nll + smoothing * uniform) * valid;
  return per_token.sum() / valid.sum().clamp_min(1);
}

}  // namespace attnzoo::losses

#include "losses/language_model.h"

#include "losses/fused_cross_entropy.h"

namespace attnzoo::losses {

torch::Tensor language_model_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                  int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
                  logits.size(1) == targets.size(1),
              "language_model_loss expects logits (B, T, V) and targets (B, T), got ", logits.sizes(), " and ",
              targets.sizes());
  const int64_t V = logits.size(-1);
  const auto rows = logits.reshape({-1, V});
  if (fused_cross_entropy_fits(rows)) return fused_cross_entropy(rows, targets.reshape({-1}), ignore_index);
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, V}).to(torch::kFloat), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index));
}

}  // namespace attnzoo::losses

#include "models/common/hard_attention.h"

#include <limits>

namespace attnzoo::models {

HardAttentionSample hard_attention_sample(const torch::Tensor& logits, bool stochastic,
                                          c10::optional<torch::Generator> gen) {
  TORCH_CHECK(logits.dim() >= 1 && logits.size(-1) > 0 && logits.is_floating_point(),
              "hard attention expects floating-point logits (..., Tk) with Tk > 0, got ", logits.scalar_type(), " ",
              logits.sizes());
  const auto allowed = logits > -std::numeric_limits<double>::infinity();  // (..., Tk)
  TORCH_CHECK(allowed.any(-1).all().item<bool>(), "hard attention: a row of logits is -inf everywhere, so no "
              "position can be chosen (is every key padding?)");
  const auto log_p = torch::log_softmax(logits, -1);  // (..., Tk)
  const auto p = log_p.exp();
  torch::Tensor index;
  {
    torch::NoGradGuard no_grad;
    if (stochastic) {
      const auto flat = p.detach().reshape({-1, logits.size(-1)});  // (N, Tk)
      index = torch::multinomial(flat, 1, /*replacement=*/false, gen).view(logits.sizes().slice(0, logits.dim() - 1));
    } else {
      index = logits.argmax(-1);
    }
  }
  auto log_prob = log_p.gather(-1, index.unsqueeze(-1)).squeeze(-1);
  // 0 · log 0 = 0 at forbidden positions; zeroing log p there (not the product) keeps the
  // backward free of 0 · ∞.
  auto entropy = -(p * log_p.masked_fill(allowed.logical_not(), 0.0)).sum(-1);
  auto weights = torch::zeros_like(logits).scatter_(-1, index.unsqueeze(-1), 1.0);
  return {index, weights, log_prob, entropy};
}

torch::Tensor gather_positions(const torch::Tensor& values, const torch::Tensor& index) {
  TORCH_CHECK(values.dim() == 3 && index.dim() == 1 && index.size(0) == values.size(0),
              "gather_positions expects values (B, Tk, Dv) and index (B), got ", values.sizes(), " and ",
              index.sizes());
  const int64_t Dv = values.size(2);
  return values.gather(1, index.view({-1, 1, 1}).expand({-1, 1, Dv})).squeeze(1);  // (B, Dv)
}

torch::Tensor reinforce_loss(const torch::Tensor& log_prob, const torch::Tensor& reward, const torch::Tensor& baseline,
                             const torch::Tensor& entropy, double entropy_coef) {
  TORCH_CHECK(reward.sizes() == log_prob.sizes(), "reinforce_loss: rewards ", reward.sizes(),
              " and log-probabilities ", log_prob.sizes(), " must have the same shape");
  auto advantage = reward.detach().to(log_prob.scalar_type());
  if (baseline.defined()) advantage = advantage - baseline.detach().to(log_prob.scalar_type());
  auto loss = -(advantage * log_prob).mean();
  if (entropy_coef != 0.0) {
    TORCH_CHECK(entropy.defined() && entropy.sizes() == log_prob.sizes(), "reinforce_loss: an entropy bonus needs "
                "entropies shaped as the log-probabilities ", log_prob.sizes());
    loss = loss - entropy_coef * entropy.mean();
  }
  return loss;
}

MovingAverageBaselineImpl::MovingAverageBaselineImpl(double momentum) : momentum(momentum) {
  TORCH_CHECK(momentum >= 0.0 && momentum < 1.0, "baseline momentum must be in [0, 1), got ", momentum);
  mean = register_buffer("mean", torch::zeros({}));
  updates = register_buffer("updates", torch::zeros({}, torch::kLong));
}

void MovingAverageBaselineImpl::update(const torch::Tensor& reward) {
  torch::NoGradGuard no_grad;
  const auto batch_mean = reward.detach().to(mean.scalar_type()).mean();
  if (updates.item<int64_t>() == 0) {
    mean.copy_(batch_mean);
  } else {
    mean.mul_(momentum).add_(batch_mean, 1.0 - momentum);
  }
  updates.add_(1);
}

}  // namespace attnzoo::models

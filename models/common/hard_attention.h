// Hard (stochastic) attention (Xu et al. 2015, "Show, Attend and Tell", §4.1): the model looks at
// exactly one position, drawn from the attention distribution p = softmax(logits) while training
// (the weights are one-hot) and the most likely one at evaluation. The draw has no gradient, so the
// attention logits are trained with REINFORCE (Williams 1992), the score-function estimator
//   ∇_θ E_{a~p}[R(a)] = E_{a~p}[(R(a) − b) ∇_θ log p(a)],
// unbiased for any b that does not depend on a; a moving average of past rewards as b lowers its
// variance, and an entropy bonus λ H(p) keeps the distribution from collapsing early.
//
// The pieces: hard_attention_sample (index, one-hot weights, log p, entropy), gather_positions (the
// attended value), reinforce_loss (the surrogate whose gradient is the estimate) and
// MovingAverageBaseline (b, a module so that checkpoints keep it).
//
// Shape letters: B batch (any leading dimensions "..."), Tk positions, Dv value size.
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

struct HardAttentionSample {
  torch::Tensor index;     // (...) int64: the position attended to
  torch::Tensor weights;   // (..., Tk) one-hot, in the logits' dtype
  torch::Tensor log_prob;  // (...) log p(index), differentiable w.r.t. the logits
  torch::Tensor entropy;   // (...) H(p) = −Σ_j p_j log p_j, differentiable
};

// logits: (..., Tk), −inf at positions that may not be chosen (at least one per row must be
// finite). stochastic: draw from p (training); otherwise the argmax (evaluation). gen: the random
// source, the global one when unset.
HardAttentionSample hard_attention_sample(const torch::Tensor& logits, bool stochastic,
                                          c10::optional<torch::Generator> gen = c10::nullopt);

// values (B, Tk, Dv), index (B) -> (B, Dv): values[b, index[b]], the context of hard attention.
torch::Tensor gather_positions(const torch::Tensor& values, const torch::Tensor& index);

// mean over samples of −(R − b) log p(a) − entropy_coef · H(p). Minimising it follows the REINFORCE
// estimate of ∇(E[R] + entropy_coef · H(p)). reward: (...) per sample; baseline: a scalar or (...),
// undefined for none; reward and baseline are constants (detached here). entropy: (...) or
// undefined when entropy_coef is 0.
torch::Tensor reinforce_loss(const torch::Tensor& log_prob, const torch::Tensor& reward,
                             const torch::Tensor& baseline = {}, const torch::Tensor& entropy = {},
                             double entropy_coef = 0.0);

// b ← momentum · b + (1 − momentum) · mean(reward), starting from the first batch's mean. Update it
// after computing the loss with value(), so that b never depends on the sample it baselines.
class MovingAverageBaselineImpl : public torch::nn::Module {
 public:
  explicit MovingAverageBaselineImpl(double momentum = 0.9);
  torch::Tensor value() const { return mean; }  // 0-d, 0 before the first update
  void update(const torch::Tensor& reward);

  torch::Tensor mean;     // buffer, 0-d float
  torch::Tensor updates;  // buffer, 0-d int64: updates so far
  double momentum;
};
TORCH_MODULE(MovingAverageBaseline);

}  // namespace attnzoo::models

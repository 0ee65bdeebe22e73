// Tests for models/common/hard_attention: argmax at evaluation, one-hot samples that follow the
// attention distribution and never pick a forbidden position, log-probabilities and entropy, and
// the REINFORCE estimator's unbiasedness: on a 4-way choice with known rewards, the average of many
// Monte-Carlo gradients matches the exact gradient of the expected reward (autograd through the
// enumerated expectation) within a few standard errors, with no baseline, a constant one, a moving
// average and with an entropy bonus; the baseline lowers the variance.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "models/common/hard_attention.h"
#include "tests/test_util.h"

using attnzoo::models::gather_positions;
using attnzoo::models::hard_attention_sample;
using attnzoo::models::MovingAverageBaseline;
using attnzoo::models::reinforce_loss;
using attnzoo::testing::seeded;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(HardAttention, EvaluationTakesTheArgmax) {
  const auto logits = torch::tensor({0.1f, 2.0f, -1.0f, 1.9f, 5.0f, 0.0f, 0.0f, 4.0f}).view({2, 4});
  const auto s = hard_attention_sample(logits, /*stochastic=*/false);
  EXPECT_TRUE(torch::equal(s.index, torch::tensor({1, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(s.weights, torch::tensor({0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f}).view({2, 4})));
  EXPECT_TRUE(torch::allclose(s.log_prob, torch::log_softmax(logits, -1).gather(1, s.index.unsqueeze(1)).squeeze(1)));
}

TEST(HardAttention, SamplesFollowTheDistributionAndAvoidForbiddenPositions) {
  const int64_t N = 40000;
  const auto probs = torch::tensor({0.1, 0.0, 0.6, 0.3});
  const auto logits = probs.log().to(torch::kFloat).unsqueeze(0).expand({N, 4});  // log 0 = -inf: forbidden
  auto gen = seeded(1);
  const auto s = hard_attention_sample(logits, true, gen);
  ASSERT_EQ(s.index.sizes(), (std::vector<int64_t>{N}));
  EXPECT_TRUE(torch::equal(s.weights.sum(-1), torch::ones({N})));
  EXPECT_TRUE(torch::equal(s.weights.argmax(-1), s.index));
  const auto freq = torch::bincount(s.index, {}, 4).to(torch::kDouble) / N;
  EXPECT_EQ(freq[1].item<double>(), 0.0);
  for (int j : {0, 2, 3}) EXPECT_NEAR(freq[j].item<double>(), probs[j].item<double>(), 0.01) << j;
  EXPECT_TRUE(torch::allclose(s.log_prob, probs.log().index_select(0, s.index).to(torch::kFloat)));
  // H = −Σ p log p over the allowed positions, finite despite the −inf logit.
  const double H = -(0.1 * std::log(0.1) + 0.6 * std::log(0.6) + 0.3 * std::log(0.3));
  EXPECT_NEAR(s.entropy[0].item<double>(), H, 1e-6);
  // Same seed, same draws.
  auto gen2 = seeded(1);
  EXPECT_TRUE(torch::equal(hard_attention_sample(logits, true, gen2).index, s.index));
  // 1-D logits: one draw.
  EXPECT_EQ(hard_attention_sample(torch::zeros({5}), true, gen).index.dim(), 0);
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>(
                      [] { hard_attention_sample(torch::full({2, 3}, -kInf).to(torch::kFloat), true); }),
                  "-inf everywhere");
}

TEST(HardAttention, ContextIsTheChosenValue) {
  torch::manual_seed(2);
  const auto values = torch::randn({3, 5, 4});
  const auto s = hard_attention_sample(torch::randn({3, 5}), true);
  const auto ctx = gather_positions(values, s.index);
  ASSERT_EQ(ctx.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(torch::allclose(ctx, torch::bmm(s.weights.unsqueeze(1), values).squeeze(1)));
  EXPECT_THROW(gather_positions(values, s.index.narrow(0, 0, 2)), c10::Error);
}

// The exact gradient of E_{a~softmax(θ)}[r_a] + coef · H(softmax(θ)), by autograd through the sum.
torch::Tensor exact_gradient(const torch::Tensor& theta0, const torch::Tensor& rewards, double coef) {
  auto theta = theta0.clone().requires_grad_(true);
  const auto p = torch::softmax(theta, 0);
  const auto objective = (p * rewards).sum() - coef * (p * p.log()).sum();
  objective.backward();
  return theta.grad();
}

struct Estimate {
  torch::Tensor mean;       // (K): the average Monte-Carlo gradient of the objective
  torch::Tensor std_error;  // (K): its standard error
};

// N single-sample REINFORCE estimates of ∇θ(E[r] + coef · H): −∇ of the surrogate loss on a batch
// of N draws is their average; the per-draw values (r_a − b)(e_a − p) give the spread.
Estimate monte_carlo(const torch::Tensor& theta0, const torch::Tensor& rewards, double baseline, double coef, int64_t N,
                     torch::Generator gen) {
  auto theta = theta0.clone().requires_grad_(true);
  const int64_t K = theta0.size(0);
  const auto s = hard_attention_sample(theta.unsqueeze(0).expand({N, K}), true, gen);
  const auto r = rewards.index_select(0, s.index);
  reinforce_loss(s.log_prob, r, torch::tensor(baseline), s.entropy, coef).backward();
  const auto p = torch::softmax(theta0, 0);
  const auto per_draw = (r - baseline).unsqueeze(1) * (s.weights - p);  // (N, K), the score-function part
  return {-theta.grad(), per_draw.std(0) / std::sqrt(static_cast<double>(N))};
}

void expect_within(const Estimate& est, const torch::Tensor& exact, double n_sigma = 4.5) {
  for (int64_t k = 0; k < exact.size(0); ++k) {
    const double diff = std::abs(est.mean[k].item<double>() - exact[k].item<double>());
    EXPECT_LT(diff, n_sigma * est.std_error[k].item<double>() + 1e-6)
        << "component " << k << ": Monte-Carlo " << est.mean[k].item<double>() << ", exact " << exact[k].item<double>()
        << ", standard error " << est.std_error[k].item<double>();
  }
}

TEST(HardAttention, ReinforceGradientIsUnbiased) {
  const auto theta = torch::tensor({0.3f, -0.5f, 1.0f, 0.1f});
  const auto rewards = torch::tensor({1.0f, 0.2f, -0.5f, 2.0f});
  const int64_t N = 200000;
  auto gen = seeded(42);
  const auto exact = exact_gradient(theta, rewards, 0.0);

  const auto plain = monte_carlo(theta, rewards, 0.0, 0.0, N, gen);
  expect_within(plain, exact);
  // Tolerance sanity: the standard error is small against the gradient, so a biased estimator
  // (say, one missing the −p term of ∇ log p) would fail.
  EXPECT_LT(plain.std_error.max().item<double>(), 0.01);
  EXPECT_GT(exact.abs().max().item<double>(), 0.2);

  // A constant baseline near E[r] leaves the mean alone and shrinks the spread.
  const double expected_reward = (torch::softmax(theta, 0) * rewards).sum().item<double>();
  const auto baselined = monte_carlo(theta, rewards, expected_reward, 0.0, N, gen);
  expect_within(baselined, exact);
  EXPECT_LT(baselined.std_error.sum().item<double>(), 0.8 * plain.std_error.sum().item<double>());

  // The entropy bonus is exact (not sampled): the estimate follows ∇(E[r] + 0.1 H).
  expect_within(monte_carlo(theta, rewards, expected_reward, 0.1, N, gen), exact_gradient(theta, rewards, 0.1));
}

TEST(HardAttention, ReinforceWithAMovingAverageBaselineStaysUnbiased) {
  // The baseline is read before and updated after each batch, so it never depends on the draws it
  // baselines: the average over batches is still unbiased.
  const auto theta = torch::tensor({0.0f, 1.5f, -1.0f});
  const auto rewards = torch::tensor({3.0f, 1.0f, 5.0f});
  const auto exact = exact_gradient(theta, rewards, 0.0);
  MovingAverageBaseline baseline(0.9);
  auto gen = seeded(7);
  const int64_t batches = 50, N = 4000;
  auto sum = torch::zeros({3});
  auto sq = torch::zeros({3});
  for (int64_t i = 0; i < batches; ++i) {
    auto th = theta.clone().requires_grad_(true);
    const auto s = hard_attention_sample(th.unsqueeze(0).expand({N, 3}), true, gen);
    const auto r = rewards.index_select(0, s.index);
    reinforce_loss(s.log_prob, r, baseline->value()).backward();
    baseline->update(r);
    sum += -th.grad();
    sq += th.grad().square();
  }
  const auto mean = sum / batches;
  const auto std_error = (sq / batches - mean.square()).clamp_min(0).sqrt() / std::sqrt(static_cast<double>(batches));
  expect_within({mean, std_error}, exact);
  EXPECT_NEAR(baseline->value().item<double>(), (torch::softmax(theta, 0) * rewards).sum().item<double>(), 0.1);
}

TEST(HardAttention, MovingAverageBaseline) {
  MovingAverageBaseline b(0.5);
  EXPECT_EQ(b->value().item<float>(), 0.0f);
  b->update(torch::tensor({1.0f, 3.0f}));  // the first batch's mean
  EXPECT_FLOAT_EQ(b->value().item<float>(), 2.0f);
  b->update(torch::tensor({6.0f}));  // 0.5 · 2 + 0.5 · 6
  EXPECT_FLOAT_EQ(b->value().item<float>(), 4.0f);
  EXPECT_EQ(b->updates.item<int64_t>(), 2);
  // Buffers, so a checkpoint keeps it.
  const auto buffers = b->named_buffers();
  EXPECT_TRUE(buffers.contains("mean"));
  EXPECT_TRUE(buffers.contains("updates"));
  EXPECT_THROW(MovingAverageBaseline(1.0), c10::Error);
}

TEST(HardAttention, ReinforceLossValueAndErrors) {
  const auto log_prob = torch::tensor({-1.0f, -2.0f});
  const auto reward = torch::tensor({3.0f, 1.0f});
  // −mean((r − b) log p) − coef · mean(H) = −((2·−1) + (0·−2)) / 2 − 0.5 · 1.5 = 1 − 0.75
  EXPECT_FLOAT_EQ(reinforce_loss(log_prob, reward, torch::tensor(1.0f), torch::tensor({1.0f, 2.0f}), 0.5).item<float>(),
                  0.25f);
  EXPECT_FLOAT_EQ(reinforce_loss(log_prob, reward).item<float>(), 2.5f);
  EXPECT_THROW(reinforce_loss(log_prob, torch::ones({3})), c10::Error);
  EXPECT_THROW(reinforce_loss(log_prob, reward, {}, {}, 0.1), c10::Error) << "a bonus needs entropies";
}

}  // namespace

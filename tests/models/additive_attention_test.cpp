// Tests for models/common/additive_attention: Bahdanau scores, weights and context against a small
// example worked out by hand, padding (exactly zero weight, renormalised rest, an all-padding row
// gives zeros without NaN), several decoder steps at once, precomputed key projections, bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "models/common/additive_attention.h"
#include "tests/test_util.h"

using attnzoo::models::AdditiveAttention;
using attnzoo::models::AdditiveAttentionConfig;

namespace {

// W = I, U = diag(2, −1), v = (1, 0.5); s = (0.5, −0.5); h_1 = (0.1, 0.2), h_2 = (−0.3, 0.4), h_3 = 0.
AdditiveAttention hand_example() {
  AdditiveAttention att(AdditiveAttentionConfig{.query_dim = 2, .key_dim = 2, .hidden_dim = 2});
  torch::NoGradGuard no_grad;
  att->query_proj->weight.copy_(torch::tensor({1.f, 0.f, 0.f, 1.f}).view({2, 2}));
  att->key_proj->weight.copy_(torch::tensor({2.f, 0.f, 0.f, -1.f}).view({2, 2}));
  att->v->weight.copy_(torch::tensor({1.f, 0.5f}).view({1, 2}));
  return att;
}

const torch::Tensor& hand_keys() {
  static const auto keys = torch::tensor({0.1f, 0.2f, -0.3f, 0.4f, 0.f, 0.f}).view({1, 3, 2});
  return keys;
}

TEST(AdditiveAttention, MatchesTheHandWorkedExample) {
  auto att = hand_example();
  const auto s = torch::tensor({0.5f, -0.5f}).view({1, 2});
  const auto out = att(s, hand_keys());
  // W s + U h_j:  (0.7, −0.7), (−0.1, −0.9), (0.5, −0.5)
  const double e1 = std::tanh(0.7) + 0.5 * std::tanh(-0.7);   //  0.302184
  const double e2 = std::tanh(-0.1) + 0.5 * std::tanh(-0.9);  // −0.457817
  const double e3 = std::tanh(0.5) + 0.5 * std::tanh(-0.5);   //  0.231059
  EXPECT_NEAR(e1, 0.302184, 1e-6);
  EXPECT_NEAR(e2, -0.457817, 1e-6);
  ASSERT_EQ(out.scores.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_NEAR(out.scores[0][0].item<double>(), e1, 1e-6);
  EXPECT_NEAR(out.scores[0][1].item<double>(), e2, 1e-6);
  EXPECT_NEAR(out.scores[0][2].item<double>(), e3, 1e-6);
  const double z = std::exp(e1) + std::exp(e2) + std::exp(e3);
  const double a1 = std::exp(e1) / z, a2 = std::exp(e2) / z, a3 = std::exp(e3) / z;  // 0.4039, 0.1888, 0.4073
  EXPECT_NEAR(out.weights[0][0].item<double>(), a1, 1e-6);
  EXPECT_NEAR(out.weights[0][1].item<double>(), a2, 1e-6);
  EXPECT_NEAR(out.weights[0][2].item<double>(), a3, 1e-6);
  ASSERT_EQ(out.context.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(out.context[0][0].item<double>(), a1 * 0.1 - a2 * 0.3, 1e-6);
  EXPECT_NEAR(out.context[0][1].item<double>(), a1 * 0.2 + a2 * 0.4, 1e-6);

  // h_3 as padding: weight exactly 0, the other two renormalised.
  const auto padded = att(s, hand_keys(), torch::tensor({false, false, true}).view({1, 3}));
  EXPECT_EQ(padded.weights[0][2].item<float>(), 0.0f);
  EXPECT_EQ(padded.scores[0][2].item<float>(), -std::numeric_limits<float>::infinity());
  EXPECT_NEAR(padded.weights[0][0].item<double>(), a1 / (a1 + a2), 1e-6);
  EXPECT_NEAR(padded.context[0][1].item<double>(), (a1 * 0.2 + a2 * 0.4) / (a1 + a2), 1e-6);
}

TEST(AdditiveAttention, ZeroScoringVectorAveragesTheKeys) {
  AdditiveAttention att(AdditiveAttentionConfig{.query_dim = 3, .key_dim = 4, .hidden_dim = 5, .bias = true});
  {
    torch::NoGradGuard no_grad;
    att->v->weight.zero_();
  }
  torch::manual_seed(1);
  const auto keys = torch::randn({2, 6, 4});
  const auto out = att(torch::randn({2, 3}), keys);
  EXPECT_TRUE(torch::allclose(out.weights, torch::full({2, 6}, 1.0 / 6)));
  EXPECT_TRUE(torch::allclose(out.context, keys.mean(1), 1e-5, 1e-6));
}

TEST(AdditiveAttention, ManyStepsPrecomputedKeysAndAllPaddingRows) {
  AdditiveAttention att(AdditiveAttentionConfig{.query_dim = 3, .key_dim = 4, .hidden_dim = 5});
  torch::manual_seed(2);
  const auto keys = torch::randn({2, 6, 4}).requires_grad_(true);
  const auto queries = torch::randn({2, 5, 3});
  auto padding = torch::zeros({2, 6}, torch::kBool);
  padding[1].fill_(true);  // sequence 1 is all padding
  const auto projected = att->project_keys(keys);
  const auto all = att(queries, keys, padding, projected);
  ASSERT_EQ(all.weights.sizes(), (std::vector<int64_t>{2, 5, 6}));
  ASSERT_EQ(all.context.sizes(), (std::vector<int64_t>{2, 5, 4}));
  for (int64_t t = 0; t < 5; ++t) {
    const auto one = att(queries.select(1, t), keys, padding);
    EXPECT_TRUE(torch::allclose(one.context, all.context.select(1, t), 1e-5, 1e-6));
  }
  EXPECT_TRUE(torch::allclose(all.weights[0].sum(-1), torch::ones({5})));
  EXPECT_EQ(all.weights[1].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(all.context[1].abs().sum().item<float>(), 0.0f);
  all.context.sum().backward();
  EXPECT_TRUE(keys.grad().isfinite().all().item<bool>());
  for (const auto& p : att->parameters()) EXPECT_TRUE(p.grad().isfinite().all().item<bool>());
}

TEST(AdditiveAttention, RejectsBadShapes) {
  AdditiveAttention att(AdditiveAttentionConfig{.query_dim = 3, .key_dim = 4, .hidden_dim = 5});
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>([&] { att(torch::randn({2, 4}), torch::randn({2, 6, 4})); }),
                  "Dq = 3");
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>([&] { att(torch::randn({2, 3}), torch::randn({2, 6, 3})); }),
                  "keys (B, Tk, Dk)");
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>(
                      [&] { att(torch::randn({2, 3}), torch::randn({2, 6, 4}), torch::zeros({2, 5}, torch::kBool)); }),
                  "key padding mask");
  EXPECT_THROW(AdditiveAttention(AdditiveAttentionConfig{.hidden_dim = 0}), std::invalid_argument);
}

}  // namespace

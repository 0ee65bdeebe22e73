// losses::fused_cross_entropy against LibTorch's cross_entropy on the same values in fp64: the
// loss and the gradient, fp32 and bf16 logits, vocabularies that are and are not multiples of the
// vector width, ignored rows, and bad targets.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "losses/fused_cross_entropy.h"
#include "losses/language_model.h"
#include "tests/test_util.h"

namespace {

using attnzoo::losses::fused_cross_entropy;

struct Reference {
  double loss;
  torch::Tensor grad;  // fp64
};

Reference reference(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore, const torch::Tensor& w) {
  auto x = logits.detach().to(torch::kDouble).requires_grad_();
  auto loss = torch::nn::functional::cross_entropy(x, targets, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore));
  auto g = torch::autograd::grad({loss * w}, {x})[0];
  return {loss.item<double>(), g};
}

TEST(FusedCrossEntropy, MatchesLibTorchInFp32AndBf16OnBothPaths) {
  torch::manual_seed(21);
  for (bool portable : {false, true})
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
  for (int64_t V : {1, 16, 37, 50257}) {
    SCOPED_TRACE(std::string(dtype == torch::kFloat ? "fp32" : "bf16") + ", V " + std::to_string(V) +
                 (portable ? ", portable" : ""));
    const int64_t N = 23;
    auto logits = (torch::randn({N, V}) * 4).to(dtype).requires_grad_();
    auto targets = torch::randint(0, V, {N}, torch::kLong);
    targets[3] = -1, targets[17] = -1;  // ignored rows
    auto loss = fused_cross_entropy(logits, targets, -1, portable);
    EXPECT_EQ(loss.scalar_type(), torch::kFloat);
    const auto want = reference(logits, targets, -1, torch::tensor(2.5, torch::kDouble));
    EXPECT_NEAR(loss.item<double>(), want.loss, 2e-6 * std::max(1.0, std::abs(want.loss)));
    const auto g = torch::autograd::grad({loss * 2.5}, {logits})[0];
    EXPECT_EQ(g.scalar_type(), dtype);
    const double tol = dtype == torch::kFloat ? 1e-6 : want.grad.abs().max().item<double>() / 128 + 1e-9;
    EXPECT_LT((g.to(torch::kDouble) - want.grad).abs().max().item<double>(), tol);
    EXPECT_EQ(g[3].abs().sum().item<double>(), 0.0) << "an ignored row has no gradient";
  }
}

TEST(FusedCrossEntropy, ExtremeLogitsStayFinite) {
  // A row with one huge logit and very negative ones: exp underflows to 0 without NaN.
  auto logits = torch::full({2, 40}, -1e4f);
  logits[0][5] = 1e4f;
  logits[1][7] = 50.0f;
  logits.requires_grad_();
  auto targets = torch::tensor({5, 8}, torch::kLong);
  auto loss = fused_cross_entropy(logits, targets);
  const auto want = reference(logits, targets, -100, torch::tensor(1.0, torch::kDouble));
  EXPECT_NEAR(loss.item<double>(), want.loss, 1e-3);
  const auto g = torch::autograd::grad({loss}, {logits})[0];
  EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
  EXPECT_LT((g.to(torch::kDouble) - want.grad).abs().max().item<double>(), 1e-6);
}

TEST(FusedCrossEntropy, LanguageModelLossUsesItAndBadInputIsAnError) {
  torch::manual_seed(22);
  auto logits = torch::randn({2, 5, 30});
  auto targets = torch::randint(0, 30, {2, 5}, torch::kLong);
  const auto want = torch::nn::functional::cross_entropy(logits.reshape({-1, 30}), targets.reshape({-1}));
  EXPECT_NEAR(attnzoo::losses::language_model_loss(logits, targets).item<double>(), want.item<double>(), 1e-5);
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>([&] { fused_cross_entropy(torch::randn({2, 4}), torch::tensor({1, 4})); }),
                  "outside [0, 4)");
  EXPECT_THROW(fused_cross_entropy(torch::randn({2, 4}), torch::tensor({1})), c10::Error);
  EXPECT_THROW(fused_cross_entropy(torch::randn({2, 4}, torch::kDouble), torch::tensor({1, 2})), c10::Error);
  // Every row ignored: NaN, as LibTorch's mean over no rows.
  EXPECT_TRUE(std::isnan(fused_cross_entropy(torch::randn({2, 4}), torch::tensor({-100, -100})).item<double>()));
}

}  // namespace

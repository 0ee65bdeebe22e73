// models::attention_softmax (models/common/softmax.h): plain and causal softmax over the last
// dimension, fp32 and bf16, values and gradients against the fp64 softmax of the same scores with
// the masked keys set to -inf; masked weights exactly 0 with no gradient.
#include <gtest/gtest.h>

#include <limits>

#include <torch/torch.h>

#include "models/common/attention.h"
#include "models/common/softmax.h"

namespace {

namespace m = attnzoo::models;

TEST(AttentionSoftmax, MatchesFp64SoftmaxWithGradients) {
  torch::manual_seed(21);
  // (Tq, Tk): square, fewer queries than keys (a cached prefix), one query, rows shorter and
  // longer than a vector and not multiples of one.
  for (auto [tq, tk] : std::vector<std::pair<int64_t, int64_t>>{{37, 37}, {5, 21}, {1, 9}, {100, 130}, {16, 16}})
  for (auto type : {torch::kFloat, torch::kBFloat16})
  for (bool causal : {false, true}) {
    SCOPED_TRACE(std::to_string(tq) + "x" + std::to_string(tk) + (type == torch::kFloat ? " fp32" : " bf16") +
                 (causal ? " causal" : " plain"));
    const auto x = (torch::randn({2, 3, tq, tk}) * 4).to(type);
    const auto g = torch::randn({2, 3, tq, tk}).to(type);
    const auto xr = x.clone().requires_grad_();
    const auto y = m::attention_softmax(xr, causal);
    const auto gx = torch::autograd::grad({y}, {xr}, {g})[0];
    ASSERT_EQ(y.scalar_type(), type);
    ASSERT_EQ(gx.scalar_type(), type);

    auto xd = x.to(torch::kDouble).requires_grad_();
    const auto allowed = causal ? m::causal_mask(tq, tk, x.device()) : torch::ones({tq, tk}, torch::kBool);
    const auto yd = torch::softmax(xd.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity()), -1);
    const auto gd = torch::autograd::grad({yd}, {xd}, {g.to(torch::kDouble)})[0];

    const double rel = type == torch::kFloat ? 1e-6 : 1.0 / 128;
    EXPECT_LE(((y.to(torch::kDouble) - yd.detach()).abs() - yd.detach().abs() * rel).max().item<double>(), 1e-7);
    const double gscale = gd.abs().max().item<double>();
    EXPECT_LE((gx.to(torch::kDouble) - gd).abs().max().item<double>(), gscale * rel * 4 + 1e-7);
    // Rows sum to one; masked weights and their gradients are exactly zero.
    EXPECT_LE((y.to(torch::kDouble).sum(-1) - 1).abs().max().item<double>(), type == torch::kFloat ? 1e-5 : 2e-2);
    const auto hidden = allowed.logical_not().expand_as(y);
    EXPECT_EQ(y.masked_select(hidden).abs().sum().item<double>(), 0.0);
    EXPECT_EQ(gx.masked_select(hidden).abs().sum().item<double>(), 0.0);
  }
}

TEST(AttentionSoftmax, StridedInputAndBadShapes) {
  torch::manual_seed(22);
  const auto base = torch::randn({3, 20, 20});
  const auto x = base.transpose(1, 2);  // not contiguous
  EXPECT_LE((m::attention_softmax(x) - torch::softmax(x, -1)).abs().max().item<double>(), 1e-6);
  EXPECT_THROW(m::attention_softmax(torch::randn({4, 3}), /*causal=*/true), c10::Error);  // Tq > Tk
  EXPECT_THROW(m::attention_softmax(torch::randn({4})), c10::Error);
  // fp64 takes LibTorch's softmax, masked the same way.
  const auto xd = torch::randn({2, 6, 6}, torch::kDouble);
  EXPECT_FALSE(m::attention_softmax_uses_own_kernel(xd));
  const auto yd = m::attention_softmax(xd, true);
  EXPECT_EQ(yd.triu(1).abs().sum().item<double>(), 0.0);
  EXPECT_LE((yd.sum(-1) - 1).abs().max().item<double>(), 1e-12);
}

}  // namespace

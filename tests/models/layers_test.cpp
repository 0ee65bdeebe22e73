// Tests for models/common/layers: LayerNorm in every dtype pairing the models use.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "models/common/layers.h"

namespace {

namespace m = attnzoo::models;

// fp32 LayerNorm equals LibTorch's; bf16 parameters (a model cast to bf16 for inference) give
// the fp32 result rounded to bf16; a bf16 input with fp32 parameters (autocast) gives fp32.
TEST(LayerNorm, MatchesLibTorchInFp32AndRoundsOnceInBf16) {
  torch::manual_seed(3);
  for (bool bias : {true, false}) {
    m::LayerNorm ln(48, bias, 1e-6);
    torch::NoGradGuard no_grad;
    ln->weight.uniform_(0.5, 1.5);
    if (bias) ln->bias.uniform_(-0.5, 0.5);
    auto x = torch::randn({3, 5, 48}) * 3 + 1;
    const auto want = at::layer_norm(x, {48}, ln->weight, bias ? ln->bias : torch::Tensor(), 1e-6);
    EXPECT_TRUE(torch::allclose(ln(x), want, 1e-5, 1e-5));

    const auto xb = x.to(torch::kBFloat16);
    const auto from_bf16 = at::layer_norm(xb.to(torch::kFloat), {48}, ln->weight, bias ? ln->bias : torch::Tensor(), 1e-6);
    auto mixed = ln(xb);  // fp32 parameters, bf16 input
    EXPECT_EQ(mixed.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(mixed, from_bf16, 1e-5, 1e-5));

    ln->to(torch::kBFloat16);
    auto low = ln(xb);
    EXPECT_EQ(low.scalar_type(), torch::kBFloat16);
    const auto w = ln->weight.to(torch::kFloat), b = bias ? ln->bias.to(torch::kFloat) : torch::Tensor();
    const auto exact = at::layer_norm(xb.to(torch::kFloat), {48}, w, b, 1e-6);
    // Rounded once: within half a bf16 step (2^-8 of the value) of the fp32 result.
    EXPECT_LE((low.to(torch::kFloat) - exact).abs().max().item<double>(),
              exact.abs().max().item<double>() / 256 + 1e-6);
  }
}

}  // namespace

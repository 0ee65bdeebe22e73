// models::gelu (models/common/gelu.h): bf16 on oneDNN's eltwise GELU and the AVX-512 backward,
// values and gradients within a bf16 rounding of the GELU of the same values, exact and
// tanh-approximated, tails included, and under autocast; other types are at::gelu itself.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include "models/common/gelu.h"
#include "models/common/layers.h"

namespace {

namespace m = attnzoo::models;

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

TEST(Gelu, Bf16MatchesFp32GeluValuesAndGradients) {
  torch::manual_seed(11);
  for (bool tanh : {false, true}) {
    SCOPED_TRACE(tanh ? "tanh" : "erf");
    // Inputs over GELU's whole shape (the negative tail, the bend, the linear part), a length that
    // is no multiple of a vector, and a non-contiguous view.
    auto base = (torch::randn({37, 129}) * 3).to(torch::kBFloat16);
    auto x = base.t().requires_grad_();
    const auto xf = x.detach().to(torch::kFloat).requires_grad_();
    auto y = m::gelu(x, tanh);
    const auto yf = tanh ? at::gelu(xf, "tanh") : at::gelu(xf);
#ifdef ATTNZOO_HAVE_DNNL
    EXPECT_TRUE(m::gelu_uses_dnnl(x));
#endif
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(y.sizes(), x.sizes());
    // One bf16 rounding: 2^-8 relative.
    EXPECT_LE(((y.to(torch::kFloat) - yf).abs() - yf.abs() / 256).max().item<double>(), 1e-6);
    const auto g = torch::randn({129, 37}).to(torch::kBFloat16);
    const auto gx = torch::autograd::grad({y}, {x}, {g})[0];
    const auto gxf = torch::autograd::grad({yf}, {xf}, {g.to(torch::kFloat)})[0];
    EXPECT_EQ(gx.scalar_type(), torch::kBFloat16);
    EXPECT_LE(((gx.to(torch::kFloat) - gxf).abs() - gxf.abs() / 128).max().item<double>(), 1e-3);
    // The activation() names route here.
    EXPECT_EQ(max_diff(m::activation(x.detach(), tanh ? "gelu_tanh" : "gelu"), y.detach()), 0.0);
  }
}

// The gradient at every bf16 value from -12 to 12 (the far tails, the zero of GELU' near -0.75, the
// bend) times random bf16 gradients: one bf16 rounding of the fp64 product, a length spread over
// several threads' chunks and ending in a partial vector.
TEST(Gelu, Bf16GradientIsOneRoundingOfTheFp64Gradient) {
  torch::manual_seed(13);
  const auto x = torch::linspace(-12, 12, 100003).to(torch::kBFloat16);
  const auto g = torch::randn({x.numel()}).to(torch::kBFloat16);
  for (bool tanh : {false, true}) {
    SCOPED_TRACE(tanh ? "tanh" : "erf");
    const auto xr = x.clone().requires_grad_();
    const auto gx = torch::autograd::grad({m::gelu(xr, tanh)}, {xr}, {g})[0];
    const auto xd = x.to(torch::kDouble).requires_grad_();
    const auto yd = tanh ? at::gelu(xd, "tanh") : at::gelu(xd);
    const auto ref = torch::autograd::grad({yd}, {xd}, {g.to(torch::kDouble)})[0];
    ASSERT_EQ(gx.scalar_type(), torch::kBFloat16);
    const auto err = (gx.to(torch::kDouble) - ref).abs() - ref.abs() / 256;
    EXPECT_LE(err.max().item<double>(), 1e-6) << "at x = " << x[err.argmax()].item<float>();
    // Signs agree wherever the gradient is not within the tolerance of zero.
    EXPECT_TRUE(((gx.to(torch::kDouble) * ref) >= 0).logical_or(ref.abs() < 1e-6).all().item<bool>());
  }
}

TEST(Gelu, AutocastAndOtherTypes) {
  torch::manual_seed(12);
  auto x = torch::randn({4, 50});
  EXPECT_FALSE(m::gelu_uses_dnnl(x));
  EXPECT_EQ(max_diff(m::gelu(x), at::gelu(x)), 0.0);
  EXPECT_EQ(max_diff(m::gelu(x, true), at::gelu(x, "tanh")), 0.0);
  EXPECT_FALSE(m::gelu_uses_dnnl(torch::empty({0}, torch::kBFloat16)));
  // Under bf16 autocast the linear before it is bf16, and so is the GELU, as LibTorch's.
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  auto w = torch::randn({30, 50}, torch::requires_grad());
  auto h = m::linear(x, w);
  auto ours = m::gelu(h), theirs = at::gelu(h);
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  EXPECT_EQ(ours.scalar_type(), theirs.scalar_type());
  EXPECT_LE(max_diff(ours, theirs), theirs.abs().max().item<double>() / 128);
  const auto g = torch::autograd::grad({ours.to(torch::kFloat).sum()}, {w})[0];
  EXPECT_EQ(g.scalar_type(), torch::kFloat);
}

}  // namespace

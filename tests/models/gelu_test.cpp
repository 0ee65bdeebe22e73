// models::gelu (models/common/gelu.h): bf16 on oneDNN's eltwise GELU, values and gradients within a
// bf16 rounding of the fp32 GELU of the same values, exact and tanh-approximated, and under
// autocast; other types are at::gelu itself.
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

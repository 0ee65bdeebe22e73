// models::gelu (models/common/gelu.h): fp32 and bf16 on its own kernels (AVX-512, or oneDNN's
// eltwise GELU for bf16 elsewhere), values and gradients within a rounding of the fp64 GELU of the
// same values, exact and tanh-approximated, tails included, and under autocast; other types are
// at::gelu itself.
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
    EXPECT_NE(m::gelu_kernel(x), m::GeluKernel::aten);
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

// Values and gradients at every bf16 value from -12 to 12 (the far tails, the zero of GELU' near
// -0.75, the bend) times random gradients, in fp32 and bf16: within one rounding of the fp64
// result (fp32: the 1.5e-7 of the erf approximation ATen's fp32 erf uses too), over a length
// spread across several threads' chunks and ending in a partial vector.
TEST(Gelu, ValuesAndGradientsWithinOneRoundingOfFp64) {
  torch::manual_seed(13);
  const auto grid = torch::linspace(-12, 12, 100003).to(torch::kBFloat16);
  const auto g_all = torch::randn({grid.numel()}).to(torch::kBFloat16);
  for (auto type : {torch::kFloat, torch::kBFloat16})
  for (bool tanh : {false, true}) {
    SCOPED_TRACE(std::string(tanh ? "tanh" : "erf") + (type == torch::kFloat ? " fp32" : " bf16"));
    const auto x = grid.to(type), g = g_all.to(type);
    // LibTorch's and oneDNN's tanh forms (the fallbacks) lose ~3e-6 to cancellation in the far
    // negative tail, where the AVX-512 kernels keep 1e-6.
    const double rel = type == torch::kFloat ? 4e-7 : 1.0 / 256;
    const double abs = m::gelu_kernel(x) == m::GeluKernel::avx512 ? 1e-6 : 1e-5;
    const auto xr = x.clone().requires_grad_();
    const auto y = m::gelu(xr, tanh);
    const auto gx = torch::autograd::grad({y}, {xr}, {g})[0];
    const auto xd = x.to(torch::kDouble).requires_grad_();
    const auto yd = tanh ? at::gelu(xd, "tanh") : at::gelu(xd);
    const auto ref = torch::autograd::grad({yd}, {xd}, {g.to(torch::kDouble)})[0];
    ASSERT_EQ(y.scalar_type(), type);
    ASSERT_EQ(gx.scalar_type(), type);
    const auto y_err = (y.to(torch::kDouble) - yd.detach()).abs() - yd.detach().abs() * rel;
    EXPECT_LE(y_err.max().item<double>(), abs) << "GELU at x = " << x[y_err.argmax()].item<float>();
    const auto err = (gx.to(torch::kDouble) - ref).abs() - ref.abs() * rel;
    EXPECT_LE(err.max().item<double>(), abs) << "GELU' at x = " << x[err.argmax()].item<float>();
    // Signs agree wherever the gradient is not within the tolerance of zero.
    EXPECT_TRUE(((gx.to(torch::kDouble) * ref) >= 0).logical_or(ref.abs() < abs).all().item<bool>());
  }
}

TEST(Gelu, AutocastAndOtherTypes) {
  torch::manual_seed(12);
  auto x = torch::randn({4, 50});
  // fp64 and empty tensors are at::gelu's.
  const auto xd = x.to(torch::kDouble);
  EXPECT_EQ(m::gelu_kernel(xd), m::GeluKernel::aten);
  EXPECT_EQ(max_diff(m::gelu(xd), at::gelu(xd)), 0.0);
  EXPECT_EQ(max_diff(m::gelu(xd, true), at::gelu(xd, "tanh")), 0.0);
  EXPECT_EQ(m::gelu_kernel(torch::empty({0}, torch::kBFloat16)), m::GeluKernel::aten);
  // fp32 agrees with ATen's fp32 GELU (the same erf approximation) to a few units in the last place.
  EXPECT_LE(max_diff(m::gelu(x), at::gelu(x)), 1e-6);
  EXPECT_LE(max_diff(m::gelu(x, true), at::gelu(x, "tanh")), 1e-6);
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

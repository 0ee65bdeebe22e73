// models::matmul and models::linear (models/common/gemm.h) against LibTorch's own ops, values and
// gradients, on strided inputs as attention produces them; on a build with oneDNN these run the
// oneDNN path (checked with uses_dnnl).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include "models/common/gemm.h"

namespace {

namespace m = attnzoo::models;  // qualified: at::matmul and at::linear are found by ADL as well
using m::uses_dnnl;

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double tol = 1e-4) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), tol) << "largest |want| " << want.abs().max().item<double>();
}

// q, k, v as views of one (B, T, 3C) projection: the layout the GPT attention hands to matmul.
struct Heads {
  torch::Tensor qkv, q, k, v;
};
Heads make_heads(int64_t B, int64_t T, int64_t H, int64_t D) {
  Heads h;
  h.qkv = torch::randn({B, T, 3 * H * D}, torch::requires_grad());
  auto parts = h.qkv.split(H * D, 2);
  h.q = parts[0].view({B, T, H, D}).transpose(1, 2);
  h.k = parts[1].view({B, T, H, D}).transpose(1, 2);
  h.v = parts[2].view({B, T, H, D}).transpose(1, 2);
  return h;
}

TEST(Gemm, MatmulOnStridedViewsMatchesTorchWithGradients) {
  torch::manual_seed(0);
  auto h = make_heads(2, 7, 3, 5);
  const double alpha = 0.37;
  auto got = m::matmul(h.q, h.k.transpose(-2, -1), alpha);
  auto g = torch::randn(got.sizes());
  auto grad_got = torch::autograd::grad({got}, {h.qkv}, {g})[0];
  auto want = torch::matmul(h.q, h.k.transpose(-2, -1)) * alpha;
  auto grad_want = torch::autograd::grad({want}, {h.qkv}, {g})[0];
  expect_close(got, want);
  expect_close(grad_got, grad_want);
}

TEST(Gemm, HeadsLastLayoutMergesHeadsWithoutACopy) {
  torch::manual_seed(1);
  auto h = make_heads(2, 6, 4, 3);
  auto w = torch::softmax(torch::randn({2, 4, 6, 6}), -1).requires_grad_();
  auto out = m::matmul(w, h.v, 1.0, /*heads_last=*/true);  // (B, H, T, D)
  auto want = torch::matmul(w, h.v);
  expect_close(out, want);
  if (uses_dnnl(w)) {
    EXPECT_TRUE(out.transpose(1, 2).is_contiguous()) << "stored as (B, T, H, D)";
  }
  auto g = torch::randn(out.sizes());
  auto got_grads = torch::autograd::grad({out}, {w, h.qkv}, {g});
  auto want_grads = torch::autograd::grad({want}, {w, h.qkv}, {g});
  expect_close(got_grads[0], want_grads[0]);
  expect_close(got_grads[1], want_grads[1]);
}

TEST(Gemm, LinearWithAndWithoutBiasMatchesAtLinear) {
  torch::manual_seed(2);
  for (bool with_bias : {true, false}) {
    auto x = torch::randn({3, 5, 8}, torch::requires_grad());
    auto w = torch::randn({6, 8}, torch::requires_grad());
    auto b = with_bias ? torch::randn({6}, torch::requires_grad()) : torch::Tensor();
    auto got = m::linear(x, w, b);
    auto want = at::linear(x, w, b);
    expect_close(got, want);
    auto g = torch::randn(got.sizes());
    std::vector<torch::Tensor> inputs{x, w};
    if (with_bias) inputs.push_back(b);
    auto got_grads = torch::autograd::grad({got}, inputs, {g});
    auto want_grads = torch::autograd::grad({want}, inputs, {g});
    for (size_t i = 0; i < inputs.size(); ++i) expect_close(got_grads[i], want_grads[i]);
  }
}

// A product large enough that fp32's input gradient (g W, W row-major) reads W in oneDNN's
// blocked layout: the gradients of a (1024 x 2048) -> 1024 layer against LibTorch's in fp64.
TEST(Gemm, LargeFp32LayerGradientsMatchFp64) {
  torch::manual_seed(8);
  auto x = torch::randn({2, 512, 2048}, torch::requires_grad());
  auto w = (torch::randn({1024, 2048}) / 45).requires_grad_(), b = torch::randn({1024}, torch::requires_grad());
  auto y = m::linear(x, w, b);
  const auto g = torch::randn(y.sizes());
  auto got = torch::autograd::grad({y}, {x, w, b}, {g});
  auto xd = x.detach().to(torch::kDouble).requires_grad_(), wd = w.detach().to(torch::kDouble).requires_grad_(),
       bd = b.detach().to(torch::kDouble).requires_grad_();
  auto yd = at::linear(xd, wd, bd);
  auto want = torch::autograd::grad({yd}, {xd, wd, bd}, {g.to(torch::kDouble)});
  expect_close(y.to(torch::kDouble), yd, 1e-4);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    expect_close(got[i].to(torch::kDouble), want[i], 1e-5 * want[i].abs().max().item<double>() + 1e-5);
  }
}

TEST(Gemm, LinearAcceptsNonContiguousInput) {
  torch::manual_seed(3);
  auto x = torch::randn({8, 4}).t();  // (4, 8), transposed storage
  auto w = torch::randn({3, 8});
  expect_close(m::linear(x, w), at::linear(x, w));
}

TEST(Gemm, FallsBackForOtherDtypesAndRejectsMismatchedShapes) {
  auto a = torch::randn({2, 3, 4}, torch::kDouble), b = torch::randn({2, 4, 5}, torch::kDouble);
  EXPECT_FALSE(uses_dnnl(a));
  expect_close(m::matmul(a, b, 2.0), torch::matmul(a, b) * 2.0, 1e-12);
  EXPECT_THROW(m::matmul(torch::randn({2, 3, 4}), torch::randn({3, 4, 5}), 1.0), c10::Error);
  EXPECT_THROW(m::matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 5}), 1.0), c10::Error);
}

TEST(Gemm, InferenceModeWorks) {
  c10::InferenceMode guard;
  auto x = torch::randn({4, 8}), w = torch::randn({3, 8}), b = torch::randn({3});
  expect_close(m::linear(x, w, b), at::linear(x, w, b));
}

// Decoding: one row at a time (B = 1, T = 1) takes the matrix-vector path, in fp32 and bf16,
// with and without bias, on strided weights (a transposed view) too; gradients still flow when
// autograd asks for them (the GEMM path then).
TEST(Gemm, SingleRowLinearMatchesAtLinear) {
  torch::manual_seed(4);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    // bf16: the matrix-vector paths sum in fp32 and round once (half a bf16 step, 2^-8 relative);
    // LibTorch's bf16 linear, which strided weights fall back to, rounds more often.
    auto tol = [dtype](const torch::Tensor& want, double rel) {
      return dtype == torch::kFloat ? 1e-4 : rel * want.abs().max().item<double>() + 1e-3;
    };
    // Sizes that fill the AVX-512 bf16 kernel's blocks of 4 rows × 16 columns, sizes that leave
    // remainders, and enough rows for several threads.
    for (auto [K, N] : {std::pair<int64_t, int64_t>{64, 40}, {70, 41}, {64, 1003}})
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE("K " + std::to_string(K) + ", N " + std::to_string(N) + (with_bias ? ", bias" : "") +
                   (dtype == torch::kFloat ? ", fp32" : ", bf16"));
      c10::InferenceMode guard;
      auto x = torch::randn({1, 1, K}).to(dtype), w = torch::randn({N, K}).to(dtype);
      auto b = with_bias ? torch::randn({N}).to(dtype) : torch::Tensor();
      auto got = m::linear(x, w, b);
      EXPECT_EQ(got.scalar_type(), dtype);
      const auto want = at::linear(x.to(torch::kFloat), w.to(torch::kFloat), with_bias ? b.to(torch::kFloat) : torch::Tensor());
      expect_close(got.to(torch::kFloat), want, tol(want, 1.0 / 256));
      SCOPED_TRACE("strided weights");
      auto wt = torch::randn({K, N}).to(dtype).t();  // (N, K), column-major
      const auto want_t = at::linear(x.to(torch::kFloat), wt.to(torch::kFloat), with_bias ? b.to(torch::kFloat) : torch::Tensor());
      expect_close(m::linear(x, wt, b).to(torch::kFloat), want_t, tol(want_t, 0.02));
    }
  }
  auto x = torch::randn({1, 16}, torch::requires_grad()), w = torch::randn({8, 16}, torch::requires_grad());
  auto g = torch::autograd::grad({m::linear(x, w).sum()}, {x, w});
  expect_close(g[0], w.detach().sum(0, true));
  expect_close(g[1], x.detach().expand({8, 16}));
}

// Under CPU bf16 autocast the products run in bf16 as LibTorch's autocast runs them, and the
// gradients of fp32 inputs come back in fp32.
TEST(Gemm, AutocastBf16MatchesLibTorchAutocast) {
  // 27 rows, and 90: enough for the weights to be copied into oneDNN's blocked layout.
  for (int64_t rows : {9, 30}) {
  SCOPED_TRACE(rows);
  torch::manual_seed(5);
  auto h = make_heads(2, 9, 2, 8);
  auto x = torch::randn({3, rows, 16}, torch::requires_grad());
  auto w = torch::randn({12, 16}, torch::requires_grad()), b = torch::randn({12}, torch::requires_grad());
  auto run = [&](bool ours) {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    auto y = ours ? m::linear(x, w, b) : at::linear(x, w, b);
    auto s = ours ? m::matmul(h.q, h.k.transpose(-2, -1), 0.5) : torch::matmul(h.q, h.k.transpose(-2, -1)) * 0.5;
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(s.scalar_type(), torch::kBFloat16);
    auto loss = (y.to(torch::kFloat) * torch::linspace(-1, 1, 12)).sum() + s.to(torch::kFloat).pow(2).mean();
    auto grads = torch::autograd::grad({loss}, {x, w, b, h.qkv});
    std::vector<torch::Tensor> out{y.to(torch::kFloat), s.to(torch::kFloat)};
    out.insert(out.end(), grads.begin(), grads.end());
    return out;
  };
  auto ours = run(true), theirs = run(false);
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].scalar_type(), torch::kFloat) << i;
    const double scale = theirs[i].abs().max().item<double>();
    EXPECT_LT((ours[i] - theirs[i]).abs().max().item<double>(), 0.02 * scale + 1e-3) << "output " << i;
  }
  }
}

// bf16 tensors outside autocast (a model cast to bf16 for inference) take the oneDNN path too: on
// the strided q, k, v views and in the heads-last layout, with gradients, within a bf16 rounding of
// the fp32 product of the same values.
TEST(Gemm, Bf16TensorsRunOnOneDnnWithinOneRounding) {
#ifdef ATTNZOO_HAVE_DNNL
  torch::manual_seed(6);
  const auto bf = torch::kBFloat16, f = torch::kFloat;
  auto qkv = torch::randn({2, 9, 3 * 2 * 16}).to(bf).requires_grad_();
  auto parts = qkv.split(32, 2);
  auto q = parts[0].view({2, 9, 2, 16}).transpose(1, 2), k = parts[1].view({2, 9, 2, 16}).transpose(1, 2);
  EXPECT_TRUE(uses_dnnl(q));
  auto s = m::matmul(q, k.transpose(-2, -1), 0.25, /*heads_last=*/true);
  EXPECT_EQ(s.scalar_type(), bf);
  EXPECT_EQ(s.stride(1), 9);  // (B, H, M, N) stored as (B, M, H, N)
  const auto want_s = torch::matmul(q.to(f), k.to(f).transpose(-2, -1)) * 0.25;
  expect_close(s.to(f), want_s, want_s.abs().max().item<double>() / 128);
  // 15 rows: B read as given; 150: B copied into oneDNN's blocked layout first.
  for (int64_t rows : {5, 50}) {
  SCOPED_TRACE(rows);
  auto x = torch::randn({3, rows, 40}).to(bf).requires_grad_();
  auto w = torch::randn({24, 40}).to(bf).requires_grad_(), b = torch::randn({24}).to(bf).requires_grad_();
  auto y = m::linear(x, w, b);
  EXPECT_EQ(y.scalar_type(), bf);
  const auto want_y = at::linear(x.to(f), w.to(f), b.to(f));
  expect_close(y.to(f), want_y, want_y.abs().max().item<double>() / 128);
  auto g = torch::autograd::grad({y.to(f).sum() + s.to(f).sum()}, {x, w, b, qkv}, {}, /*retain_graph=*/true);
  auto xf = x.detach().to(f).requires_grad_(), wf = w.detach().to(f).requires_grad_(),
       bfp = b.detach().to(f).requires_grad_(), qkvf = qkv.detach().to(f).requires_grad_();
  auto pf = qkvf.split(32, 2);
  auto sf = torch::matmul(pf[0].view({2, 9, 2, 16}).transpose(1, 2), pf[1].view({2, 9, 2, 16}).transpose(1, 2).transpose(-2, -1)) * 0.25;
  auto want_g = torch::autograd::grad({at::linear(xf, wf, bfp).sum() + sf.sum()}, {xf, wf, bfp, qkvf});
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(g[i].scalar_type(), bf) << i;
    expect_close(g[i].to(f), want_g[i], want_g[i].abs().max().item<double>() / 64 + 1e-3);
  }
  }
#else
  GTEST_SKIP() << "built without oneDNN";
#endif
}

// An MLP's first layer at inference: the activation runs inside the matmul, on its fp32 result.
// The same numbers as linear then the activation (fp32), or within one bf16 rounding of them.
TEST(Gemm, FusedLinearActivationMatchesLinearThenActivation) {
#ifdef ATTNZOO_HAVE_DNNL
  torch::manual_seed(7);
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
  for (const std::string act : {"gelu", "gelu_tanh", "relu"}) {
    SCOPED_TRACE(act + (dtype == torch::kFloat ? " fp32" : " bf16"));
    // 70 rows: in bf16, the weights are copied into oneDNN's blocked layout first.
    auto x = torch::randn({2, 35, 48}).to(dtype), w = (torch::randn({80, 48}) / 6).to(dtype), b = torch::randn({80}).to(dtype);
    torch::Tensor want = at::linear(x.to(torch::kFloat), w.to(torch::kFloat), b.to(torch::kFloat));
    want = act == "gelu" ? at::gelu(want) : act == "gelu_tanh" ? at::gelu(want, "tanh") : torch::relu(want);
    {
      c10::InferenceMode guard;
      auto got = m::fused_linear_activation(x, w, b, act);
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->scalar_type(), dtype);
      EXPECT_EQ(got->sizes(), want.sizes());
      expect_close(got->to(torch::kFloat), want, dtype == torch::kFloat ? 1e-5 : want.abs().max().item<double>() / 256 + 1e-6);
      EXPECT_FALSE(m::fused_linear_activation(x, w, b, "none").has_value());
      EXPECT_FALSE(m::fused_linear_activation(x.select(1, 0).select(0, 0), w, b, act).has_value()) << "one row";
    }
    // With autograd wanted it declines, and the caller's linear + activation carries the gradients.
    auto wg = w.clone().requires_grad_();
    EXPECT_FALSE(m::fused_linear_activation(x, wg, b, act).has_value());
  }
#else
  GTEST_SKIP() << "built without oneDNN";
#endif
}

}  // namespace

namespace {

// linear's result (then ReLU, with relu) against fp64, within what the type allows (bf16: a
// fraction of the largest value).
void expect_linear_of(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                      bool relu = false) {
  auto want = at::linear(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble));
  if (relu) want = want.relu();
  const double tol = y.scalar_type() == torch::kBFloat16 ? want.abs().max().item<double>() / 64 : 1e-4;
  expect_close(y.to(torch::kDouble), want, tol);
}

}  // namespace

// At inference a weight's blocked copy is kept and used again (models/common/gemm.cpp,
// BlockedWeights); these change the weight between products in every way the models do and check
// that no product ever sees an old copy: in-place ops, a new storage (Module::to), weights freed and
// new ones made (their memory reused), products with gradients in between, and under autocast.
TEST(Gemm, InferenceSeesEveryChangeOfAWeight) {
  torch::manual_seed(11);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    auto x = torch::randn({96, 40}).to(dtype);  // enough rows for the blocked copy
    auto w = torch::randn({24, 40}).to(dtype).requires_grad_(), b = torch::randn({24}).to(dtype).requires_grad_();
    torch::NoGradGuard no_grad;
    expect_linear_of(m::linear(x, w, b), x, w, b);
    expect_linear_of(m::linear(x, w, b), x, w, b);  // the kept copy
    w.mul_(-1.5);
    expect_linear_of(m::linear(x, w, b), x, w, b);
    w.index_put_({3}, 7.0);
    expect_linear_of(m::linear(x, w, b), x, w, b);
    w.set_data(w.detach().add(2.0));  // what Module::to does: a new storage, the same version
    expect_linear_of(m::linear(x, w, b), x, w, b);
    for (int i = 0; i < 4; ++i) {  // new weights, likely at the addresses of freed ones
      auto wi = torch::randn({24, 40}).to(dtype);
      expect_linear_of(m::linear(x, wi, b), x, wi, b);
      if (auto y = m::fused_linear_activation(x, wi, b, "relu")) expect_linear_of(*y, x, wi, b, /*relu=*/true);
    }
    {
      torch::AutoGradMode grad(true);  // a training product in between
      auto y = m::linear(x, w, b);
      y.sum().backward();
    }
    w.add_(w.grad());
    expect_linear_of(m::linear(x, w, b), x, w, b);
  }
}

TEST(Gemm, AutocastInferenceSeesAChangedFp32Weight) {
  torch::manual_seed(12);
  auto x = torch::randn({96, 40}), w = torch::randn({24, 40}), b = torch::randn({24});
  torch::NoGradGuard no_grad;
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  auto y1 = m::linear(x, w, b);
  w.sub_(1.0);
  auto y2 = m::linear(x, w, b);
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  expect_linear_of(y2.to(torch::kBFloat16), x, w, b);
  EXPECT_GT((y1.to(torch::kFloat) - y2.to(torch::kFloat)).abs().max().item<double>(), 1.0);
}

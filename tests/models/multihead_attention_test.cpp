// Tests for models/common/multihead_attention: equality with torch::nn::MultiheadAttention given
// the same weights (self-attention with padding and causal masks, cross-attention with Tq != Tk,
// separate kdim/vdim projections; outputs, per-head weights and gradients), the fused and unfused
// projections, the incremental KV cache against the full causal forward, static cross-attention
// caches, dropout, and bad inputs.
#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "models/common/multihead_attention.h"
#include "tests/test_util.h"

using attnzoo::models::AttentionCache;
using attnzoo::models::AttentionOptions;
using attnzoo::models::causal_mask;
using attnzoo::models::MultiheadAttention;
using attnzoo::models::MultiheadAttentionConfig;

namespace {

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double atol = 1e-5) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::allclose(got, want, 1e-4, atol)) << "max abs diff " << (got - want).abs().max().item<double>();
}

// A torch::nn::MultiheadAttention with random weights (biases too) and ours with the same ones,
// copied by key: the names must be the same.
std::pair<MultiheadAttention, torch::nn::MultiheadAttention> twins(const MultiheadAttentionConfig& cfg, uint64_t seed) {
  torch::manual_seed(seed);
  auto opts = torch::nn::MultiheadAttentionOptions(cfg.embed_dim, cfg.num_heads).bias(cfg.bias);
  if (cfg.kdim) opts.kdim(cfg.kdim);
  if (cfg.vdim) opts.vdim(cfg.vdim);
  torch::nn::MultiheadAttention ref(opts);
  MultiheadAttention ours(cfg);
  torch::NoGradGuard no_grad;
  auto ref_params = ref->named_parameters();
  std::set<std::string> ref_keys, our_keys;
  for (auto& p : ref_params) {
    p.value().normal_(0.0, 0.5);
    ref_keys.insert(p.key());
  }
  for (auto& p : ours->named_parameters()) {
    our_keys.insert(p.key());
    if (ref_params.contains(p.key())) p.value().copy_(ref_params[p.key()]);
  }
  EXPECT_EQ(our_keys, ref_keys) << "checkpoint keys differ from nn.MultiheadAttention's";
  ref->eval();
  ours->eval();
  return {ours, ref};
}

struct RefOut {
  torch::Tensor out, weights;  // (B, Tq, E), (B, H, Tq, Tk)
};

// Batch-first wrapper around the sequence-first reference. allowed: (Tq, Tk), true = may attend.
// The 1.13 C++ module adds attn_mask to the scores, so it gets 0 / -inf, not a bool mask.
RefOut reference(torch::nn::MultiheadAttention& ref, const torch::Tensor& q, const torch::Tensor& k,
                 const torch::Tensor& v, const torch::Tensor& key_padding_mask = {},
                 const torch::Tensor& allowed = {}) {
  torch::Tensor additive;
  if (allowed.defined())
    additive = torch::zeros(allowed.sizes()).masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto [out, w] = ref->forward(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), key_padding_mask, true,
                               additive, false);
  return {out.transpose(0, 1), w};
}

TEST(MultiHeadAttention, SelfAttentionMatchesTorchWithPaddingAndCausalMasks) {
  const MultiheadAttentionConfig cfg{.embed_dim = 8, .num_heads = 2};
  auto [ours, ref] = twins(cfg, 1);
  const int64_t B = 3, T = 5;
  const auto x = torch::randn({B, T, 8});
  const auto padding = attnzoo::models::key_padding_mask_from_lengths(torch::tensor({5, 3, 1}), T);

  auto got = ours->self_attention(x, {.key_padding_mask = padding, .need_weights = true});
  auto want = reference(ref, x, x, x, padding);
  expect_close(got.out, want.out);
  ASSERT_EQ(got.weights.sizes(), (std::vector<int64_t>{B, 2, T, T}));
  expect_close(got.weights, want.weights);

  got = ours->self_attention(x, {.causal = true, .key_lengths = torch::tensor({5, 3, 1}), .need_weights = true});
  want = reference(ref, x, x, x, padding, causal_mask(T, T, torch::kCPU));
  expect_close(got.out, want.out);
  expect_close(got.weights, want.weights);
  // Without weights, the same output.
  expect_close(ours->self_attention(x, {.causal = true, .key_lengths = torch::tensor({5, 3, 1})}).out, want.out);
}

TEST(MultiHeadAttention, GradientsMatchTorch) {
  const MultiheadAttentionConfig cfg{.embed_dim = 12, .num_heads = 3};
  auto [ours, ref] = twins(cfg, 2);
  const auto x0 = torch::randn({2, 4, 12});
  const auto mem0 = torch::randn({2, 6, 12});
  const auto probe = torch::randn({2, 4, 12});
  auto x1 = x0.clone().requires_grad_(true), x2 = x0.clone().requires_grad_(true);
  auto m1 = mem0.clone().requires_grad_(true), m2 = mem0.clone().requires_grad_(true);
  // Self-attention (fused 3E projection) plus cross-attention (fused 2E) through the same weights.
  auto ours_out = ours->self_attention(x1, {.causal = true}).out + ours->cross_attention(x1, m1).out;
  auto ref_out = reference(ref, x2, x2, x2, {}, causal_mask(4, 4, torch::kCPU)).out + reference(ref, x2, m2, m2).out;
  expect_close(ours_out, ref_out);
  (ours_out * probe).sum().backward();
  (ref_out * probe).sum().backward();
  auto ref_params = ref->named_parameters();
  for (const auto& p : ours->named_parameters()) {
    SCOPED_TRACE(p.key());
    expect_close(p.value().grad(), ref_params[p.key()].grad(), 1e-4);
  }
  expect_close(x1.grad(), x2.grad(), 1e-4);
  expect_close(m1.grad(), m2.grad(), 1e-4);
}

TEST(MultiHeadAttention, CrossAttentionWithOtherLengthsAndSeparateKeyValueSizes) {
  // The 1.13 C++ reference needs kdim == vdim; ours does not (the shapes are checked below).
  const MultiheadAttentionConfig cfg{.embed_dim = 8, .num_heads = 4, .kdim = 5, .vdim = 5};
  auto [ours, ref] = twins(cfg, 3);
  EXPECT_FALSE(ours->in_proj_weight.defined());
  ASSERT_EQ(ours->k_proj_weight.sizes(), (std::vector<int64_t>{8, 5}));
  const auto q = torch::randn({2, 3, 8}), k = torch::randn({2, 7, 5}), v = torch::randn({2, 7, 5});
  const auto padding = attnzoo::models::key_padding_mask_from_lengths(torch::tensor({7, 4}), 7);
  const auto got = ours->forward(q, k, v, {.key_padding_mask = padding, .need_weights = true});
  const auto want = reference(ref, q, k, v, padding);
  ASSERT_EQ(got.out.sizes(), (std::vector<int64_t>{2, 3, 8}));
  expect_close(got.out, want.out);
  expect_close(got.weights, want.weights);

  MultiheadAttention narrow_values(MultiheadAttentionConfig{.embed_dim = 8, .num_heads = 4, .kdim = 5, .vdim = 3});
  ASSERT_EQ(narrow_values->v_proj_weight.sizes(), (std::vector<int64_t>{8, 3}));
  EXPECT_EQ(narrow_values->forward(q, k, torch::randn({2, 7, 3})).out.sizes(), (std::vector<int64_t>{2, 3, 8}));
}

TEST(MultiHeadAttention, FusedAndSeparateProjectionsAgree) {
  MultiheadAttention mha(MultiheadAttentionConfig{.embed_dim = 16, .num_heads = 4});
  mha->eval();
  torch::manual_seed(4);
  const auto x = torch::randn({2, 6, 16}), mem = torch::randn({2, 9, 16});
  // Clones are different tensors: the module projects q, k and v one by one.
  expect_close(mha->self_attention(x, {.causal = true}).out,
               mha->forward(x, x.clone(), x.clone(), {.causal = true}).out);
  expect_close(mha->cross_attention(x, mem).out, mha->forward(x, mem, mem.clone()).out);
  // DETR's decoder self-attention: query and key share (tgt + pos), the value differs.
  const auto pos = torch::randn({2, 6, 16});
  const auto qk = x + pos;
  EXPECT_EQ(mha->forward(qk, qk, x).out.sizes(), x.sizes());
}

TEST(MultiHeadAttention, KvCacheMatchesTheFullCausalForward) {
  MultiheadAttention mha(MultiheadAttentionConfig{.embed_dim = 16, .num_heads = 2});
  mha->eval();
  torch::manual_seed(5);
  const int64_t B = 2, T = 21;  // past the cache's first capacity (16): it grows once
  const auto x = torch::randn({B, T, 16});
  const auto full = mha->self_attention(x, {.causal = true}).out;

  AttentionCache one_by_one;
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < T; ++t) steps.push_back(mha->self_attention(x.narrow(1, t, 1), {.causal = true}, &one_by_one).out);
  EXPECT_EQ(one_by_one.length, T);
  expect_close(torch::cat(steps, 1), full);

  // A prompt of 5, then chunks of 2, 7 and 7.
  AttentionCache chunks;
  std::vector<torch::Tensor> parts;
  int64_t at = 0;
  for (int64_t n : {5, 2, 7, 7}) {
    parts.push_back(mha->self_attention(x.narrow(1, at, n), {.causal = true}, &chunks).out);
    at += n;
  }
  expect_close(torch::cat(parts, 1), full);
}

TEST(MultiHeadAttention, StaticCrossAttentionCacheProjectsTheMemoryOnce) {
  MultiheadAttention mha(MultiheadAttentionConfig{.embed_dim = 8, .num_heads = 2});
  mha->eval();
  torch::manual_seed(6);
  const auto x = torch::randn({2, 4, 8}), mem = torch::randn({2, 9, 8});
  const auto full = mha->cross_attention(x, mem).out;
  AttentionCache cache{.static_kv = true};
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < 4; ++t) {
    // After the first step the memory argument is ignored: an undefined tensor will do.
    steps.push_back(mha->cross_attention(x.narrow(1, t, 1), t == 0 ? mem : torch::Tensor(), {}, &cache).out);
    EXPECT_EQ(cache.length, 9);
  }
  expect_close(torch::cat(steps, 1), full);
}

TEST(MultiHeadAttention, DropoutOnWeightsOnlyWhenTraining) {
  MultiheadAttention mha(MultiheadAttentionConfig{.embed_dim = 8, .num_heads = 2, .dropout = 0.5});
  torch::manual_seed(7);
  const auto x = torch::randn({2, 6, 8});
  mha->eval();
  const auto a = mha->self_attention(x).out;
  expect_close(mha->self_attention(x).out, a);
  mha->train();
  const auto dropped = mha->self_attention(x, {.need_weights = true});
  EXPECT_FALSE(torch::allclose(dropped.out, a));
  expect_close(dropped.weights.sum(-1), torch::ones({2, 2, 6}));  // the weights before dropout
  EXPECT_THROW(mha->self_attention(x, {.dropout = 0.1}), c10::Error);
}

TEST(MultiHeadAttention, RejectsBadConfigsAndInputs) {
  EXPECT_CONTAINS(attnzoo::testing::error_of<std::invalid_argument>(
                      [] { MultiheadAttention(MultiheadAttentionConfig{.embed_dim = 10, .num_heads = 4}); }),
                  "divisible by num_heads");
  EXPECT_THROW(MultiheadAttention(MultiheadAttentionConfig{.embed_dim = 8, .num_heads = 2, .dropout = 1.0}),
               std::invalid_argument);
  MultiheadAttention mha(MultiheadAttentionConfig{.embed_dim = 8, .num_heads = 2});
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>([&] { mha->self_attention(torch::randn({2, 3, 6})); }),
                  "(B, Tq, E = 8)");
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>(
                      [&] { mha->forward(torch::randn({2, 3, 8}), torch::randn({2, 4, 8}), torch::randn({2, 5, 8})); }),
                  "keys (B, Tk, kdim)");
  EXPECT_THROW(mha->self_attention(torch::randn({2, 3, 8}), {.key_padding_mask = torch::zeros({2, 4}, torch::kBool)}),
               c10::Error);
}

TEST(MultiHeadAttention, ConfigJsonRoundTrip) {
  const MultiheadAttentionConfig cfg{.embed_dim = 32, .num_heads = 8, .kdim = 3, .vdim = 0, .dropout = 0.1,
                                     .bias = false};
  const auto back = nlohmann::json(cfg).get<MultiheadAttentionConfig>();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(cfg));
  EXPECT_EQ(nlohmann::json::parse(R"({"embed_dim": 16})").get<MultiheadAttentionConfig>().num_heads, 4);
  MultiheadAttention no_bias(cfg);
  EXPECT_FALSE(no_bias->in_proj_bias.defined());
  EXPECT_FALSE(no_bias->out_proj->bias.defined());
}

}  // namespace

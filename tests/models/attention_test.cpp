// Tests for models/common: scaled dot-product attention against a loop written from the paper's
// formula (causal, local, padding masks by lengths or bool mask, their combinations, Tq < Tk as in
// incremental decoding), its attention weights (rows sum to 1, exactly 0 where masked), fully masked
// rows (zero, no NaN, no gradient), bad masks, the causal and local masks, and next-token sampling
// (greedy, top-k, top-p, seeded reproducibility).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <vector>

#include <torch/torch.h>

#include "models/common/attention.h"
#include "models/common/sampling.h"
#include "tests/test_util.h"

using attnzoo::models::AttentionOptions;
using attnzoo::models::causal_mask;
using attnzoo::models::key_padding_mask_from_lengths;
using attnzoo::models::local_mask;
using attnzoo::models::masked_softmax;
using attnzoo::models::sample_next;
using attnzoo::models::SamplingOptions;
using attnzoo::models::scaled_dot_product_attention;
using attnzoo::testing::seeded;

namespace {

// softmax(q kᵀ / √D) v one query at a time, in double. allowed(b, i, j): may query i see key j.
// A query that sees no key gets a zero output.
torch::Tensor brute_force_attention(const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in,
                                    const std::function<bool(int64_t, int64_t, int64_t)>& allowed) {
  const auto q = q_in.to(torch::kDouble), k = k_in.to(torch::kDouble), v = v_in.to(torch::kDouble);
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2), D = q.size(3);
  auto out = torch::zeros({B, H, Tq, D}, torch::kDouble);
  auto qa = q.accessor<double, 4>(), ka = k.accessor<double, 4>(), va = v.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        std::vector<double> score(static_cast<size_t>(Tk), -std::numeric_limits<double>::infinity());
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < Tk; ++j) {
          if (!allowed(b, i, j)) continue;
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += qa[b][h][i][d] * ka[b][h][j][d];
          score[static_cast<size_t>(j)] = s / std::sqrt(static_cast<double>(D));
          max_score = std::max(max_score, score[static_cast<size_t>(j)]);
        }
        if (max_score == -std::numeric_limits<double>::infinity()) continue;  // no key: a zero row (documented)
        double total = 0;
        for (auto& s : score) total += (s = std::exp(s - max_score));
        for (int64_t j = 0; j < Tk; ++j)
          for (int64_t d = 0; d < D; ++d) oa[b][h][i][d] += score[static_cast<size_t>(j)] / total * va[b][h][j][d];
      }
  return out.to(torch::kFloat);
}

struct Qkv {
  torch::Tensor q, k, v;
};

Qkv random_qkv(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({B, H, Tq, D}), torch::randn({B, H, Tk, D}), torch::randn({B, H, Tk, D})};
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double atol = 1e-5) {
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, atol)) << "max abs diff " << (got - want).abs().max().item<double>();
}

TEST(Attention, MatchesBruteForceWithoutMask) {
  auto [q, k, v] = random_qkv(2, 3, 5, 5, 4, 0);
  const auto out = scaled_dot_product_attention(q, k, v).out;
  expect_close(out, brute_force_attention(q, k, v, [](int64_t, int64_t, int64_t) { return true; }));
}

TEST(Attention, MatchesBruteForceCausal) {
  auto [q, k, v] = random_qkv(2, 3, 6, 6, 8, 1);
  const auto out = scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}}).out;
  expect_close(out, brute_force_attention(q, k, v, [](int64_t, int64_t i, int64_t j) { return j <= i; }));
}

TEST(Attention, MatchesBruteForceCausalWithFewerQueriesThanKeys) {
  // Queries are the last Tq positions of Tk (a KV cache): query i sits at position Tk - Tq + i.
  const int64_t Tq = 3, Tk = 7;
  auto [q, k, v] = random_qkv(2, 2, Tq, Tk, 4, 2);
  const auto out = scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}}).out;
  expect_close(out, brute_force_attention(q, k, v, [&](int64_t, int64_t i, int64_t j) { return j <= Tk - Tq + i; }));

  // A single new token sees every key.
  auto [q1, k1, v1] = random_qkv(1, 2, 1, 5, 4, 3);
  expect_close(scaled_dot_product_attention(q1, k1, v1, {.causal = true, .mask = {}}).out,
               scaled_dot_product_attention(q1, k1, v1).out);
  EXPECT_THROW(scaled_dot_product_attention(k, q, q, {.causal = true, .mask = {}}), c10::Error) << "Tq > Tk";
}

TEST(Attention, MatchesBruteForceWithPaddingMask) {
  const int64_t B = 3, Tk = 6;
  auto [q, k, v] = random_qkv(B, 2, 4, Tk, 4, 4);
  // Sequence b has Tk - b real keys; the rest are padding. (B, 1, 1, Tk) broadcasts over heads and queries.
  const std::vector<int64_t> lengths = {6, 5, 3};
  auto mask = torch::zeros({B, 1, 1, Tk}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) mask[b].narrow(-1, 0, lengths[static_cast<size_t>(b)]).fill_(true);

  const auto out = scaled_dot_product_attention(q, k, v, {.mask = mask}).out;
  expect_close(out, brute_force_attention(
                        q, k, v, [&](int64_t b, int64_t, int64_t j) { return j < lengths[static_cast<size_t>(b)]; }));

  // Padding and causal together (Tq = 4 < Tk = 6: query i sees keys <= 2 + i).
  const auto both = scaled_dot_product_attention(q, k, v, {.causal = true, .mask = mask}).out;
  expect_close(both, brute_force_attention(q, k, v, [&](int64_t b, int64_t i, int64_t j) {
                 return j < lengths[static_cast<size_t>(b)] && j <= 2 + i;
               }));
}

TEST(Attention, WeightsAreRowStochasticAndZeroAboveTheCausalDiagonal) {
  const int64_t Tq = 4, Tk = 6;
  auto [q, k, v] = random_qkv(2, 3, Tq, Tk, 4, 5);
  EXPECT_FALSE(scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}}).weights.defined())
      << "no weights unless asked for";
  const auto att = scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}, .need_weights = true});
  ASSERT_TRUE(att.weights.defined());
  ASSERT_EQ(att.weights.sizes(), (std::vector<int64_t>{2, 3, Tq, Tk}));
  expect_close(att.weights.sum(-1), torch::ones({2, 3, Tq}));
  EXPECT_GE(att.weights.min().item<float>(), 0.0f);
  const auto above = causal_mask(Tq, Tk, torch::kCPU).logical_not();  // (Tq, Tk)
  EXPECT_EQ(att.weights.masked_select(above.expand({2, 3, Tq, Tk})).abs().max().item<float>(), 0.0f);
  EXPECT_GT(att.weights.masked_select(above.logical_not().expand({2, 3, Tq, Tk})).min().item<float>(), 0.0f)
      << "every allowed key gets some weight";
  // The weights reproduce the output.
  expect_close(torch::matmul(att.weights, v), att.out);
}

TEST(Attention, DropoutOnlyWhenTraining) {
  auto [q, k, v] = random_qkv(1, 2, 5, 5, 4, 6);
  const auto plain = scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}}).out;
  expect_close(scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}, .dropout = 0.5}).out, plain);
  const auto dropped =
      scaled_dot_product_attention(q, k, v, {.causal = true, .mask = {}, .dropout = 0.5, .training = true}).out;
  EXPECT_FALSE(torch::allclose(dropped, plain));
}

TEST(Attention, RejectsMismatchedShapes) {
  EXPECT_THROW(scaled_dot_product_attention(torch::randn({2, 3, 4}), torch::randn({2, 3, 4}), torch::randn({2, 3, 4})),
               c10::Error);
  EXPECT_THROW(
      scaled_dot_product_attention(torch::randn({1, 2, 3, 4}), torch::randn({1, 2, 3, 5}), torch::randn({1, 2, 3, 5})),
      c10::Error);
}

// One mask kind (or a combination) and the rule the brute force applies. B = 3, Tq = 5, Tk = 7:
// query i sits at position 2 + i.
struct MaskCase {
  const char* name;
  AttentionOptions opt;
  std::function<bool(int64_t, int64_t, int64_t)> allowed;
};

std::vector<MaskCase> mask_cases() {
  const int64_t Tq = 5, Tk = 7, off = Tk - Tq;
  const std::vector<int64_t> lengths = {7, 4, 1};
  auto len = [lengths](int64_t b) { return lengths[static_cast<size_t>(b)]; };
  auto lengths_t = torch::tensor(lengths);
  auto padding = key_padding_mask_from_lengths(lengths_t, Tk);  // (B, Tk), true = padding
  // An arbitrary (Tq, Tk) pattern, one allowed key per row at least.
  torch::manual_seed(99);
  auto pattern = torch::rand({Tq, Tk}) < 0.5;
  pattern.select(1, 0).fill_(true);
  auto pat = [pattern](int64_t i, int64_t j) { return pattern[i][j].item<bool>(); };
  return {
      {"full", {}, [](int64_t, int64_t, int64_t) { return true; }},
      {"causal", {.causal = true}, [=](int64_t, int64_t i, int64_t j) { return j <= off + i; }},
      {"local w=1", {.window = 1}, [=](int64_t, int64_t i, int64_t j) { return std::abs(off + i - j) <= 1; }},
      {"local w=0", {.window = 0}, [=](int64_t, int64_t i, int64_t j) { return off + i == j; }},
      {"local w=2 causal", {.causal = true, .window = 2},
       [=](int64_t, int64_t i, int64_t j) { return j <= off + i && off + i - j <= 2; }},
      {"key lengths", {.key_lengths = lengths_t}, [=](int64_t b, int64_t, int64_t j) { return j < len(b); }},
      {"key padding mask", {.key_padding_mask = padding}, [=](int64_t b, int64_t, int64_t j) { return j < len(b); }},
      {"padding causal local", {.causal = true, .window = 3, .key_lengths = lengths_t},
       [=](int64_t b, int64_t i, int64_t j) { return j < len(b) && j <= off + i && off + i - j <= 3; }},
      {"bool mask", {.mask = pattern}, [=](int64_t, int64_t i, int64_t j) { return pat(i, j); }},
      {"bool mask and padding", {.mask = pattern, .key_padding_mask = padding},
       [=](int64_t b, int64_t i, int64_t j) { return pat(i, j) && j < len(b); }},
  };
}

TEST(AttentionMasks, EveryKindMatchesBruteForceWithWeightsThatSumToOneAndZeroWhereMasked) {
  const int64_t B = 3, H = 2, Tq = 5, Tk = 7, D = 4;
  auto [q, k, v] = random_qkv(B, H, Tq, Tk, D, 11);
  for (auto c : mask_cases()) {
    SCOPED_TRACE(c.name);
    expect_close(scaled_dot_product_attention(q, k, v, c.opt).out, brute_force_attention(q, k, v, c.allowed));
    c.opt.need_weights = true;
    const auto att = scaled_dot_product_attention(q, k, v, c.opt);
    expect_close(att.out, brute_force_attention(q, k, v, c.allowed));
    ASSERT_EQ(att.weights.sizes(), (std::vector<int64_t>{B, H, Tq, Tk}));
    auto want_mask = torch::zeros({B, H, Tq, Tk}, torch::kBool);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < Tk; ++j) want_mask.index_put_({b, torch::indexing::Slice(), i, j}, c.allowed(b, i, j));
    EXPECT_EQ(att.weights.masked_select(want_mask.logical_not()).abs().sum().item<float>(), 0.0f)
        << "masked positions get exactly 0";
    EXPECT_GT(att.weights.masked_select(want_mask).min().item<float>(), 0.0f) << "allowed positions get some weight";
    // Rows sum to 1, except rows with nothing to see ("padding causal local": sequence 2 has one
    // key, outside the window of its later queries), which are 0.
    expect_close(att.weights.sum(-1), want_mask.any(-1).to(torch::kFloat));
  }
}

TEST(AttentionMasks, FullyMaskedRowsGiveZeroWeightsAndOutputWithoutNaN) {
  // Sequence 1 has no keys at all; in sequence 0 the bool mask hides every key from query 2.
  const int64_t B = 2, H = 2, Tq = 4, Tk = 5, D = 3;
  auto [q, k, v] = random_qkv(B, H, Tq, Tk, D, 12);
  q.requires_grad_(true);
  k.requires_grad_(true);
  v.requires_grad_(true);
  auto mask = torch::ones({B, 1, Tq, Tk}, torch::kBool);
  mask[0][0][2].fill_(false);
  const AttentionOptions opt{.mask = mask, .key_lengths = torch::tensor({5, 0}), .need_weights = true};
  const auto att = scaled_dot_product_attention(q, k, v, opt);
  EXPECT_FALSE(att.out.isnan().any().item<bool>());
  EXPECT_EQ(att.out[1].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(att.weights[1].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(att.out[0].select(1, 2).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(att.weights[0].select(1, 2).abs().max().item<float>(), 0.0f);
  // Other rows are untouched: query 0 of sequence 0 sees every key.
  expect_close(att.weights[0].select(1, 0).sum(-1), torch::ones({H}));
  // The fast path (no weights) agrees, and nothing NaN flows back.
  auto fast = scaled_dot_product_attention(q, k, v, {.mask = mask, .key_lengths = torch::tensor({5, 0})}).out;
  expect_close(fast, att.out);
  fast.sum().backward();
  for (const auto* g : {&q, &k, &v}) EXPECT_TRUE(g->grad().isfinite().all().item<bool>());
  EXPECT_EQ(k.grad()[1].abs().max().item<float>(), 0.0f) << "keys nobody sees get no gradient";
  EXPECT_EQ(q.grad()[1].abs().max().item<float>(), 0.0f);
}

TEST(AttentionMasks, LaterTokensNeverChangeEarlierCausalOutputs) {
  const int64_t T = 6, t = 3;
  auto [q, k, v] = random_qkv(1, 2, T, T, 4, 13);
  const auto before = scaled_dot_product_attention(q, k, v, {.causal = true}).out;
  auto q2 = q.clone(), k2 = k.clone(), v2 = v.clone();
  for (auto* x : {&q2, &k2, &v2}) x->narrow(2, t + 1, T - t - 1).normal_();
  const auto after = scaled_dot_product_attention(q2, k2, v2, {.causal = true}).out;
  EXPECT_TRUE(torch::equal(before.narrow(2, 0, t + 1), after.narrow(2, 0, t + 1)));
  EXPECT_FALSE(torch::allclose(before.narrow(2, t + 1, T - t - 1), after.narrow(2, t + 1, T - t - 1)));
}

TEST(AttentionMasks, PaddedAndOutOfWindowKeysNeverMatter) {
  const int64_t Tq = 6, Tk = 6;
  auto [q, k, v] = random_qkv(2, 2, Tq, Tk, 4, 14);
  const AttentionOptions padded{.key_lengths = torch::tensor({6, 3})};
  auto k2 = k.clone(), v2 = v.clone();
  k2[1].narrow(1, 3, 3).normal_();
  v2[1].narrow(1, 3, 3).fill_(1e6);
  EXPECT_TRUE(torch::allclose(scaled_dot_product_attention(q, k, v, padded).out,
                              scaled_dot_product_attention(q, k2, v2, padded).out));
  // Window 1: query 0 sees keys 0 and 1 only.
  auto v3 = v.clone();
  v3.narrow(2, 2, 4).fill_(1e6);
  const auto local = scaled_dot_product_attention(q, k, v3, {.window = 1}).out;
  EXPECT_LT(local.select(2, 0).abs().max().item<float>(), 100.0f);
  EXPECT_GT(local.select(2, 1).abs().max().item<float>(), 100.0f) << "query 1 sees key 2";
}

TEST(AttentionMasks, RejectsMasksOfTheWrongShapeOrType) {
  auto [q, k, v] = random_qkv(2, 2, 3, 4, 4, 15);
  auto fails = [&](const AttentionOptions& opt) {
    return attnzoo::testing::error_of<c10::Error>([&] { scaled_dot_product_attention(q, k, v, opt); });
  };
  EXPECT_CONTAINS(fails({.mask = torch::ones({3, 3}, torch::kBool)}), "does not broadcast");
  EXPECT_CONTAINS(fails({.mask = torch::ones({3, 4})}), "must be bool");
  EXPECT_CONTAINS(fails({.mask = torch::ones({1, 1, 1, 3, 4}, torch::kBool)}), "does not broadcast");
  EXPECT_CONTAINS(fails({.key_padding_mask = torch::zeros({2, 3}, torch::kBool)}), "key padding mask");
  EXPECT_CONTAINS(fails({.key_padding_mask = torch::zeros({2, 4})}), "key padding mask");
  EXPECT_CONTAINS(fails({.key_lengths = torch::tensor({1, 2, 3})}), "key lengths");
  EXPECT_CONTAINS(fails({.key_lengths = torch::tensor({1.0, 2.0})}), "integer");
  EXPECT_CONTAINS(fails({.window = -2}), "window");
  EXPECT_NO_THROW(scaled_dot_product_attention(q, k, v, {.mask = torch::ones({2, 1, 1, 4}, torch::kBool)}));
}

TEST(AttentionMasks, LocalMaskAndPaddingFromLengths) {
  const auto m = local_mask(3, 5, 1, torch::kCPU);  // queries at positions 2, 3, 4
  EXPECT_TRUE(torch::equal(m, torch::tensor({0, 1, 1, 1, 0,  //
                                             0, 0, 1, 1, 1,  //
                                             0, 0, 0, 1, 1},
                                            torch::kBool)
                                  .view({3, 5})));
  EXPECT_TRUE(torch::equal(key_padding_mask_from_lengths(torch::tensor({3, 0, 5}), 4),
                           torch::tensor({0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0}, torch::kBool).view({3, 4})));
}

TEST(AttentionMasks, MaskedSoftmax) {
  const auto scores = torch::tensor({1.0f, 2.0f, 3.0f, 0.5f, 0.5f, 0.5f}).view({2, 3});
  const auto allowed = torch::tensor({1, 0, 1, 0, 0, 0}, torch::kBool).view({2, 3});
  const auto w = masked_softmax(scores, allowed);
  const double e = std::exp(2.0);  // exp(3 - 1)
  EXPECT_NEAR(w[0][0].item<double>(), 1.0 / (1.0 + e), 1e-6);
  EXPECT_EQ(w[0][1].item<float>(), 0.0f);
  EXPECT_NEAR(w[0][2].item<double>(), e / (1.0 + e), 1e-6);
  EXPECT_EQ(w[1].abs().sum().item<float>(), 0.0f) << "nothing allowed: a zero row";
  expect_close(masked_softmax(scores, {}), torch::softmax(scores, -1));
}

TEST(CausalMask, ShapeAndContent) {
  for (auto [tq, tk] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {3, 5}, {1, 6}, {1, 1}}) {
    SCOPED_TRACE(std::to_string(tq) + "x" + std::to_string(tk));
    const auto m = causal_mask(tq, tk, torch::kCPU);
    ASSERT_EQ(m.sizes(), (std::vector<int64_t>{tq, tk}));
    ASSERT_EQ(m.scalar_type(), torch::kBool);
    for (int64_t i = 0; i < tq; ++i)
      for (int64_t j = 0; j < tk; ++j) EXPECT_EQ(m[i][j].item<bool>(), j <= tk - tq + i) << i << ", " << j;
  }
  EXPECT_TRUE(torch::equal(causal_mask(3, 3, torch::kCPU),
                           torch::tensor({1, 0, 0, 1, 1, 0, 1, 1, 1}, torch::kBool).view({3, 3})));
}

// (B, V) logits with distinct values per row.
torch::Tensor random_logits(int64_t B, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({B, V}) * 2;
}

TEST(Sampling, TemperatureZeroIsArgmax) {
  const auto logits = random_logits(5, 11, 0);
  const auto next = sample_next(logits, {.temperature = 0.0});
  ASSERT_EQ(next.sizes(), (std::vector<int64_t>{5, 1}));
  EXPECT_TRUE(torch::equal(next, logits.argmax(-1, true)));
}

TEST(Sampling, TopKOneIsArgmax) {
  const auto logits = random_logits(64, 11, 1);
  auto gen = seeded(7);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(torch::equal(sample_next(logits, {.temperature = 1.5, .top_k = 1}, gen), logits.argmax(-1, true)));
}

TEST(Sampling, TinyTopPKeepsOnlyTheMostLikelyToken) {
  const auto logits = random_logits(64, 11, 2);
  auto gen = seeded(8);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(torch::equal(sample_next(logits, {.temperature = 1.0, .top_p = 1e-6}, gen), logits.argmax(-1, true)));
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (in scrambled order): top_p 0.7 keeps the 0.5 and 0.3 tokens.
  const auto logits = torch::tensor({0.15, 0.5, 0.05, 0.3}).log().unsqueeze(0).repeat({2000, 1}).to(torch::kFloat);
  auto gen = seeded(9);
  const auto next = sample_next(logits, {.temperature = 1.0, .top_p = 0.7}, gen).flatten();
  const auto counts = torch::bincount(next, {}, 4);
  EXPECT_EQ(counts[0].item<int64_t>(), 0);
  EXPECT_EQ(counts[2].item<int64_t>(), 0);
  // Renormalised 0.5 : 0.3 = 0.625 : 0.375.
  EXPECT_NEAR(counts[1].item<double>() / 2000.0, 0.625, 0.05);
  EXPECT_NEAR(counts[3].item<double>() / 2000.0, 0.375, 0.05);
}

TEST(Sampling, SeededGeneratorIsReproducible) {
  const auto logits = random_logits(16, 50, 3);
  const SamplingOptions opt{.temperature = 0.9, .top_k = 20, .top_p = 0.95};
  auto g1 = seeded(1234), g2 = seeded(1234), g3 = seeded(4321);
  std::vector<torch::Tensor> a, b, c;
  for (int i = 0; i < 10; ++i) {
    a.push_back(sample_next(logits, opt, g1));
    b.push_back(sample_next(logits, opt, g2));
    c.push_back(sample_next(logits, opt, g3));
  }
  EXPECT_TRUE(torch::equal(torch::cat(a, 1), torch::cat(b, 1)));
  EXPECT_FALSE(torch::equal(torch::cat(a, 1), torch::cat(c, 1)));
}

TEST(Sampling, TopKNeverLeavesTheTopK) {
  const int64_t B = 8, V = 30, K = 3;
  const auto logits = random_logits(B, V, 4) * 0.3;  // flat enough that tokens outside the top 3 are likely
  const auto top = std::get<1>(logits.topk(K, -1));  // (B, K)
  auto gen = seeded(10);
  std::vector<std::set<int64_t>> drawn(B);
  for (int i = 0; i < 500; ++i) {
    const auto next = sample_next(logits, {.temperature = 1.0, .top_k = K}, gen);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t id = next[b][0].item<int64_t>();
      ASSERT_TRUE((top[b] == id).any().item<bool>()) << "row " << b << " drew " << id;
      drawn[static_cast<size_t>(b)].insert(id);
    }
  }
  for (int64_t b = 0; b < B; ++b) EXPECT_EQ(drawn[static_cast<size_t>(b)].size(), 3u) << "all of the top 3 occur";
  // Without top-k the same draws leave the top 3 often.
  const auto free_draw = sample_next(logits.repeat({50, 1}), {.temperature = 1.0}, gen);
  EXPECT_FALSE((free_draw == top.repeat({50, 1})).any(-1).all().item<bool>());
}

TEST(Sampling, RejectsNon2dLogits) { EXPECT_THROW(sample_next(torch::randn({2, 3, 4}), {}), c10::Error); }

}  // namespace

// Tests for models/transformer and losses/label_smoothing: shapes and cross-attention weights,
// decoder causality, source padding, greedy decoding with the KV cache against recomputation,
// shared/tied embeddings, post-LN against pre-LN, the warmup schedule, label smoothing against a
// hand computation, and the Transformer learning to copy and to reverse short sequences.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "losses/label_smoothing.h"
#include "models/transformer/transformer.h"

using namespace attnzoo::models;

namespace {

constexpr int64_t kPad = 0, kBos = 1, kEos = 2;

torch::Tensor shift_right(const torch::Tensor& tgt) {
  return torch::cat({torch::full({tgt.size(0), 1}, kBos, torch::kLong), tgt.narrow(1, 0, tgt.size(1) - 1)}, 1);
}

double train_one_batch(Transformer& model, const torch::Tensor& src, const torch::Tensor& tgt, int steps,
                       double* first) {
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3).betas({0.9, 0.98}));
  double last = 0;
  for (int step = 0; step < steps; ++step) {
    auto loss = attnzoo::losses::label_smoothed_cross_entropy(model(src, shift_right(tgt)).logits, tgt, 0.0);
    if (step == 0) *first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return last;
}

// Trains a tiny Transformer on random sequences of tokens in [3, 10) of length L mapped to
// themselves (copy) or reversed, and returns the greedy exact-match rate on fresh sequences.
double learn_task(bool reverse, int steps) {
  const int64_t V = 10, L = 6;
  auto cfg = transformer_tiny(V);
  cfg.num_encoder_layers = 1;
  cfg.num_decoder_layers = 1;
  cfg.d_ff = 64;
  Transformer model(cfg);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9));
  auto make = [&](int64_t B) {
    auto src = torch::randint(3, V, {B, L}, torch::kLong);
    auto body = reverse ? src.flip({1}) : src;
    auto tgt = torch::cat({body, torch::full({B, 1}, kEos, torch::kLong)}, 1);  // (B, L + 1)
    return std::pair{src, tgt};
  };
  for (int step = 1; step <= steps; ++step) {
    const double lr = transformer_learning_rate(step, cfg.d_model, 50, 0.2);  // peak 5e-3
    for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    auto [src, tgt] = make(64);
    auto loss = attnzoo::losses::label_smoothed_cross_entropy(model(src, shift_right(tgt)).logits, tgt, 0.1);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  model->eval();
  auto [src, tgt] = make(200);
  auto decoded = model->greedy_decode(src, L + 1);
  return (decoded.tokens == tgt).all(1).to(torch::kFloat).mean().item<double>();
}

}  // namespace

// Copies every parameter of `from` into the parameter of `to` with the same name.
void copy_by_name(torch::nn::Module& to, const torch::nn::Module& from) {
  torch::NoGradGuard no_grad;
  auto dst = to.named_parameters();
  for (const auto& p : from.named_parameters()) {
    ASSERT_TRUE(dst.contains(p.key())) << p.key();
    dst[p.key()].copy_(p.value());
  }
  ASSERT_EQ(dst.size(), from.named_parameters().size());
}

TEST(Transformer, LayersEqualTorchTransformerLayersWithTheSameWeights) {
  // torch::nn::TransformerEncoderLayer / DecoderLayer are post-LN, ReLU, sequence first, and use
  // the same parameter names, so their weights copy by key.
  torch::manual_seed(9);
  auto cfg = transformer_tiny(13);
  const int64_t C = cfg.d_model;
  torch::nn::TransformerEncoderLayer ref_enc(
      torch::nn::TransformerEncoderLayerOptions(C, cfg.n_head).dim_feedforward(cfg.d_ff).dropout(0.0));
  torch::nn::TransformerDecoderLayer ref_dec(
      torch::nn::TransformerDecoderLayerOptions(C, cfg.n_head).dim_feedforward(cfg.d_ff).dropout(0.0));
  TransformerEncoderLayer enc(cfg);
  TransformerDecoderLayer dec(cfg);
  copy_by_name(*enc, *ref_enc);
  copy_by_name(*dec, *ref_dec);
  for (auto* m : std::initializer_list<torch::nn::Module*>{ref_enc.get(), ref_dec.get(), enc.get(), dec.get()})
    m->eval();

  auto src = torch::randn({2, 5, C}), tgt = torch::randn({2, 4, C});
  auto padding = torch::tensor({false, false, false, false, false, false, false, false, true, true}).view({2, 5});
  auto memory = enc(src, padding);
  auto ref_memory = ref_enc->forward(src.transpose(0, 1), torch::Tensor(), padding).transpose(0, 1);  // (S, B, C) <-> (B, S, C)
  EXPECT_TRUE(torch::allclose(memory, ref_memory, 1e-5, 1e-5));

  auto out = dec(tgt, memory, padding).x;
  auto causal = torch::nn::TransformerImpl::generate_square_subsequent_mask(4);  // −inf above the diagonal
  auto ref_out = ref_dec->forward(tgt.transpose(0, 1), memory.transpose(0, 1), causal, torch::Tensor(), torch::Tensor(),
                                 padding).transpose(0, 1);
  EXPECT_TRUE(torch::allclose(out, ref_out, 1e-5, 1e-5));
}

TEST(Transformer, ShapesAndCrossAttention) {
  torch::manual_seed(0);
  Transformer model(transformer_tiny(13));
  model->eval();
  auto src = torch::randint(3, 13, {2, 7}, torch::kLong);
  auto tgt_in = torch::randint(3, 13, {2, 5}, torch::kLong);
  auto out = model(src, tgt_in, /*need_weights=*/true);
  ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5, 13}));
  EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>());
  ASSERT_EQ(out.cross_attention.size(), 2u);
  ASSERT_EQ(out.cross_attention[1].sizes(), (std::vector<int64_t>{2, 4, 5, 7}));
  EXPECT_TRUE(torch::allclose(out.cross_attention[1].sum(-1), torch::ones({2, 4, 5})));
  EXPECT_TRUE(model(src, tgt_in).cross_attention.empty());
}

TEST(Transformer, DecoderIsCausal) {
  torch::manual_seed(1);
  for (bool pre_norm : {false, true}) {
    auto cfg = transformer_tiny(13);
    cfg.pre_norm = pre_norm;
    Transformer model(cfg);
    model->eval();
    auto src = torch::randint(3, 13, {3, 6}, torch::kLong);
    auto tgt_in = torch::randint(3, 13, {3, 8}, torch::kLong);
    auto changed = tgt_in.clone();
    changed.narrow(1, 4, 4).random_(3, 13);
    auto a = model(src, tgt_in).logits, b = model(src, changed).logits;
    EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 4), b.narrow(1, 0, 4), 1e-5, 1e-6));
    EXPECT_FALSE(torch::allclose(a.narrow(1, 4, 4), b.narrow(1, 4, 4)));
  }
}

TEST(Transformer, SourcePaddingIsIgnored) {
  torch::manual_seed(2);
  Transformer model(transformer_tiny(13));
  model->eval();
  auto src = torch::randint(3, 13, {2, 5}, torch::kLong);
  auto tgt_in = torch::randint(3, 13, {2, 4}, torch::kLong);
  auto padded = torch::cat({src, torch::full({2, 3}, kPad, torch::kLong)}, 1);  // (2, 8)
  auto a = model(src, tgt_in, true), b = model(padded, tgt_in, true);
  EXPECT_TRUE(torch::allclose(a.logits, b.logits, 1e-5, 1e-6));
  EXPECT_EQ(b.cross_attention[0].narrow(-1, 5, 3).abs().sum().item<float>(), 0.0f);
}

TEST(Transformer, GreedyDecodingWithCacheMatchesRecomputation) {
  torch::manual_seed(3);
  auto cfg = transformer_tiny(13);
  cfg.eos_id = 12;
  Transformer model(cfg);
  model->eval();
  auto src = torch::randint(3, 12, {4, 6}, torch::kLong);
  auto decoded = model->greedy_decode(src, 7);
  ASSERT_EQ(decoded.tokens.sizes(), (std::vector<int64_t>{4, 7}));
  ASSERT_EQ(decoded.cross_attention.sizes(), (std::vector<int64_t>{4, 4, 7, 6}));
  // Recompute: one full teacher-forced pass over bos + the decoded tokens.
  auto full = model(src, shift_right(decoded.tokens), true);
  auto argmax = full.logits.argmax(-1);
  for (int64_t b = 0; b < 4; ++b) {
    for (int64_t t = 0; t < 7; ++t) {
      ASSERT_EQ(argmax[b][t].item<int64_t>(), decoded.tokens[b][t].item<int64_t>()) << b << "," << t;
      if (decoded.tokens[b][t].item<int64_t>() == cfg.eos_id) break;
    }
  }
  if (!(decoded.tokens == cfg.eos_id).any().item<bool>()) {
    EXPECT_TRUE(torch::allclose(full.cross_attention.back(), decoded.cross_attention, 1e-5, 1e-6));
  }
}

TEST(Transformer, SharedAndSeparateEmbeddings) {
  auto shared = transformer_tiny(13);
  Transformer a(shared);
  EXPECT_TRUE(a->tgt_embed.is_empty());
  EXPECT_TRUE(a->generator.is_empty());
  auto params = a->named_parameters();
  EXPECT_TRUE(params.contains("src_embed.weight"));
  EXPECT_TRUE(params.contains("decoder.layers.1.multihead_attn.in_proj_weight"));
  EXPECT_TRUE(params.contains("encoder.layers.0.norm2.weight"));
  EXPECT_FALSE(params.contains("encoder.norm.weight"));  // post-LN has no final norm

  auto separate = shared;
  separate.tgt_vocab_size = 9;
  EXPECT_THROW(Transformer{separate}, std::invalid_argument);
  separate.share_embeddings = false;
  separate.tie_output = false;
  Transformer b(separate);
  EXPECT_EQ(b->tgt_embed->weight.size(0), 9);
  EXPECT_EQ(b(torch::randint(3, 13, {1, 4}), torch::randint(3, 9, {1, 3})).logits.size(-1), 9);
  EXPECT_EQ(b->named_parameters().size(), a->named_parameters().size() + 3);  // tgt_embed, generator w, b

  auto bad = shared;
  bad.n_head = 5;
  EXPECT_THROW(Transformer{bad}, std::invalid_argument);
}

TEST(Transformer, PostAndPreLayerNormDifferAndBothTrain) {
  torch::manual_seed(4);
  auto src = torch::randint(3, 13, {8, 6}, torch::kLong);
  auto tgt = src.flip({1});
  torch::Tensor logits[2];
  for (int pre = 0; pre < 2; ++pre) {
    auto cfg = transformer_tiny(13);
    cfg.pre_norm = pre;
    torch::manual_seed(5);
    Transformer model(cfg);
    EXPECT_EQ(model->named_parameters().contains("decoder.norm.weight"), pre == 1);
    {
      torch::NoGradGuard no_grad;
      logits[pre] = model(src, shift_right(tgt)).logits;
    }
    double first = 0;
    const double last = train_one_batch(model, src, tgt, 60, &first);
    EXPECT_LT(last, first / 2) << "pre_norm " << pre << ": " << first << " -> " << last;
  }
  EXPECT_FALSE(torch::allclose(logits[0], logits[1], 1e-3, 1e-3));
}

TEST(Transformer, WarmupScheduleRisesLinearlyPeaksAtWarmupThenDecays) {
  const int64_t d = 512, w = 4000;
  EXPECT_EQ(transformer_learning_rate(0, d, w), 0.0);
  const double peak = transformer_learning_rate(w, d, w);
  EXPECT_NEAR(peak, std::pow(512.0, -0.5) * std::pow(4000.0, -0.5), 1e-12);  // ≈ 7.0e-4
  EXPECT_NEAR(transformer_learning_rate(w / 2, d, w), peak / 2, 1e-12);
  EXPECT_NEAR(transformer_learning_rate(4 * w, d, w), peak / 2, 1e-12);
  for (int64_t s : {1, 100, 3999, 4001, 10000, 100000}) EXPECT_LT(transformer_learning_rate(s, d, w), peak) << s;
  EXPECT_DOUBLE_EQ(transformer_learning_rate(w, d, w, 2.0), 2 * peak);
  EXPECT_THROW(transformer_learning_rate(1, d, 0), std::invalid_argument);
}

TEST(Transformer, LearnsToCopy) {
  torch::manual_seed(6);
  EXPECT_GE(learn_task(/*reverse=*/false, 300), 0.95);
}

TEST(Transformer, LearnsToReverse) {
  torch::manual_seed(7);
  EXPECT_GE(learn_task(/*reverse=*/true, 300), 0.95);
}

TEST(LabelSmoothing, MatchesHandComputation) {
  // logits (0, ln 2, ln 5) -> p = (1/8, 2/8, 5/8); target 2, ε = 0.3, V = 3:
  // 0.7 · (−ln 5/8) + 0.3 · (1/3)(−ln 1/8 − ln 2/8 − ln 5/8)
  auto logits = torch::tensor({0.0, std::log(2.0), std::log(5.0)}, torch::kFloat).view({1, 3});
  auto target = torch::tensor({2}, torch::kLong);
  const double expected =
      0.7 * -std::log(5.0 / 8) + 0.1 * (-std::log(1.0 / 8) - std::log(2.0 / 8) - std::log(5.0 / 8));
  EXPECT_NEAR(attnzoo::losses::label_smoothed_cross_entropy(logits, target, 0.3).item<double>(), expected, 1e-6);
}

TEST(LabelSmoothing, ReducesToCrossEntropyAndMatchesTorch) {
  torch::manual_seed(8);
  auto logits = torch::randn({2, 5, 7});
  auto targets = torch::randint(0, 7, {2, 5}, torch::kLong);
  targets[1][3] = -1;
  namespace F = torch::nn::functional;
  auto ce = F::cross_entropy(logits.view({-1, 7}), targets.view({-1}), F::CrossEntropyFuncOptions().ignore_index(-1));
  EXPECT_NEAR(attnzoo::losses::label_smoothed_cross_entropy(logits, targets, 0.0).item<double>(), ce.item<double>(),
              1e-6);
  auto smoothed = F::cross_entropy(logits.view({-1, 7}), targets.view({-1}),
                                   F::CrossEntropyFuncOptions().ignore_index(-1).label_smoothing(0.1));
  EXPECT_NEAR(attnzoo::losses::label_smoothed_cross_entropy(logits, targets, 0.1).item<double>(),
              smoothed.item<double>(), 1e-6);
  EXPECT_THROW(attnzoo::losses::label_smoothed_cross_entropy(logits, targets.view({-1})), c10::Error);
}

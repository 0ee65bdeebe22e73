// Tests for models/bert: tiny-config forward (shapes, finite), Hugging Face's module names, the MLM
// head on masked positions only equal to the full head, padding that changes nothing for the real
// tokens, segment embeddings, the sequence classifier sharing the encoder's keys, overfit one batch,
// config validation and presets. Golden outputs against a PyTorch reference are in
// tests/weights/hf_bert_test.cpp (the same model through a Hub-layout checkpoint).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/adamw.h"
#include "models/bert/bert.h"
#include "tests/test_util.h"
#include "weights/state_dict.h"

using attnzoo::models::bert_preset;
using attnzoo::models::bert_tiny;
using attnzoo::models::BertConfig;
using attnzoo::models::BertForPreTraining;
using attnzoo::models::BertForSequenceClassification;
using attnzoo::testing::error_of;
namespace weights = attnzoo::weights;

namespace {

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double atol, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double diff = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LE(diff, atol) << what << ": max abs diff " << diff;
}

// Ids in [5, V): clear of the special tokens 0..4 of the tests' vocabularies.
torch::Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(5, V, {B, T}, torch::kLong);
}

TEST(Bert, TinyForwardShapesAndFinite) {
  torch::manual_seed(0);
  BertForPreTraining model(bert_tiny());
  model->eval();
  const auto& cfg = model->config();
  for (int64_t T : std::vector<int64_t>{1, 9, cfg.max_position_embeddings}) {
    const auto out = model->forward(random_ids(3, T, cfg.vocab_size, 1));
    ASSERT_EQ(out.prediction_logits.sizes(), (std::vector<int64_t>{3, T, cfg.vocab_size}));
    ASSERT_EQ(out.seq_relationship_logits.sizes(), (std::vector<int64_t>{3, 2}));
    EXPECT_TRUE(torch::isfinite(out.prediction_logits).all().item<bool>());
    EXPECT_TRUE(torch::isfinite(out.seq_relationship_logits).all().item<bool>());
  }
  const std::string what = error_of<c10::Error>(
      [&] { model->forward(random_ids(1, cfg.max_position_embeddings + 1, cfg.vocab_size, 1)); });
  EXPECT_CONTAINS(what, "longer than the 64 positions");
}

TEST(Bert, ModuleNamesAreHuggingFaces) {
  BertConfig cfg = bert_tiny();
  cfg.num_hidden_layers = 1;
  BertForPreTraining model(cfg);
  std::set<std::string> keys;
  for (const auto& [k, v] : weights::state_dict(*model)) keys.insert(k);
  const std::string L = "bert.encoder.layer.0.";
  std::set<std::string> expected = {
      "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
      "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
      "bert.embeddings.LayerNorm.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias",
      "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
      "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
      "cls.seq_relationship.weight", "cls.seq_relationship.bias"};
  for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                        "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"})
    for (const char* p : {".weight", ".bias"}) expected.insert(L + m + p);
  EXPECT_EQ(keys, expected);
  EXPECT_EQ(model->num_parameters(), [&] {
    int64_t n = 0;
    for (const auto& [k, v] : weights::state_dict(*model)) n += v.numel();
    return n;
  }());
}

TEST(Bert, MaskedPositionsGiveTheFullHeadsRows) {
  torch::manual_seed(1);
  BertForPreTraining model(bert_tiny());
  model->eval();
  const auto ids = random_ids(2, 12, 100, 2);
  auto mask = torch::zeros({2, 12}, torch::kBool);
  mask.index_put_({0, 3}, true), mask.index_put_({1, 0}, true), mask.index_put_({1, 11}, true);
  torch::NoGradGuard no_grad;
  const auto full = model->forward(ids).prediction_logits;          // (2, 12, V)
  const auto some = model->forward(ids, {}, {}, mask).prediction_logits;  // (3, V)
  ASSERT_EQ(some.sizes(), (std::vector<int64_t>{3, 100}));
  expect_close(some[0], full[0][3], 1e-5, "row (0, 3)");
  expect_close(some[1], full[1][0], 1e-5, "row (1, 0)");
  expect_close(some[2], full[1][11], 1e-5, "row (1, 11)");
  EXPECT_EQ(model->forward(ids, {}, {}, torch::zeros({2, 12}, torch::kBool)).prediction_logits.size(0), 0);
}

TEST(Bert, PaddingChangesNothingForRealTokens) {
  torch::manual_seed(2);
  BertForPreTraining model(bert_tiny());
  // Weights far from BERT's N(0, 0.02), so that what a token attends to shows in the outputs.
  attnzoo::models::init_bert_weights(*model, 0.3);
  model->eval();
  const auto ids = random_ids(1, 7, 100, 3);
  const auto types = torch::tensor({0, 0, 0, 0, 1, 1, 1}, torch::kLong).unsqueeze(0);
  torch::NoGradGuard no_grad;
  const auto alone = model->forward(ids, types);
  // The same sequence padded to 10, next to another one of full length.
  auto padded = torch::zeros({2, 10}, torch::kLong);
  padded[0].narrow(0, 0, 7).copy_(ids[0]);
  padded[1].copy_(random_ids(1, 10, 100, 4)[0]);
  auto padded_types = torch::zeros({2, 10}, torch::kLong);
  padded_types[0].narrow(0, 0, 7).copy_(types[0]);
  auto attention_mask = torch::ones({2, 10}, torch::kLong);
  attention_mask[0].narrow(0, 7, 3).fill_(0);
  const auto batch = model->forward(padded, padded_types, attention_mask);
  expect_close(batch.prediction_logits[0].narrow(0, 0, 7), alone.prediction_logits[0], 1e-5, "MLM logits");
  expect_close(batch.seq_relationship_logits[0], alone.seq_relationship_logits[0], 1e-5, "NSP logits");
  // Without the mask the padding is attended to and the outputs change.
  const auto unmasked = model->forward(padded, padded_types);
  EXPECT_GT((unmasked.seq_relationship_logits[0] - alone.seq_relationship_logits[0]).abs().max().item<double>(), 1e-4);
  // Segment embeddings matter: the same ids as one segment give other outputs.
  const auto one_segment = model->forward(ids);
  EXPECT_GT((one_segment.prediction_logits - alone.prediction_logits).abs().max().item<double>(), 1e-4);
}

TEST(Bert, ClassifierSharesTheEncoderKeys) {
  torch::manual_seed(3);
  BertForPreTraining pretrained(bert_tiny());
  BertForSequenceClassification clf(bert_tiny(), 3);
  const auto report = weights::load_state_dict(*clf, weights::state_dict(*pretrained), /*strict=*/false);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_TRUE(report.mismatched.empty());
  for (const auto& k : report.unexpected) EXPECT_STARTS_WITH(k, "cls.");
  pretrained->eval(), clf->eval();
  const auto ids = random_ids(2, 6, 100, 5);
  torch::NoGradGuard no_grad;
  const auto logits = clf->forward(ids);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3}));
  // The pooled output is the pretrained model's: its NSP head on it gives its NSP logits.
  const auto pooled = clf->bert->forward(ids).pooled_output;
  expect_close(pretrained->cls->seq_relationship->forward(pooled), pretrained->forward(ids).seq_relationship_logits,
               1e-6, "pooled output");
}

TEST(Bert, OverfitsOneBatch) {
  torch::manual_seed(4);
  BertConfig cfg = bert_tiny();
  cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0;
  BertForPreTraining model(cfg);
  const auto ids = random_ids(4, 16, cfg.vocab_size, 6);
  const auto positions = torch::rand({4, 16}) < 0.3;
  auto masked = ids.clone().masked_fill(positions, 4);  // 4 = [MASK]
  const auto labels = ids.masked_select(positions);
  const auto nsp = torch::tensor({0, 1, 1, 0}, torch::kLong);
  auto [decay, no_decay] = attnzoo::engine::weight_decay_groups(*model);
  attnzoo::engine::AdamW opt(decay, no_decay, {0.9, 0.99, 1e-8, 0.0});
  auto loss_now = [&] {
    auto out = model->forward(masked, {}, {}, positions);
    return torch::cross_entropy_loss(out.prediction_logits, labels) +
           torch::cross_entropy_loss(out.seq_relationship_logits, nsp);
  };
  const double first = loss_now().item<double>();
  double last = first;
  for (int i = 0; i < 150; ++i) {
    auto loss = loss_now();
    loss.backward();
    opt.step(3e-3);
    opt.zero_grad();
    last = loss.item<double>();
  }
  EXPECT_LT(last, first / 2) << "first " << first << ", last " << last;
}

TEST(BertConfig, ValidateRejectsBadConfigs) {
  auto bad = [](auto edit) {
    BertConfig cfg = bert_tiny();
    edit(cfg);
    return error_of<std::invalid_argument>([&] { cfg.validate(); });
  };
  EXPECT_CONTAINS(bad([](BertConfig& c) { c.num_attention_heads = 3; }), "divisible by num_attention_heads");
  EXPECT_CONTAINS(bad([](BertConfig& c) { c.vocab_size = 0; }), "vocab_size must be positive");
  EXPECT_CONTAINS(bad([](BertConfig& c) { c.hidden_dropout_prob = 1.0; }), "hidden_dropout_prob");
  EXPECT_CONTAINS(bad([](BertConfig& c) { c.hidden_act = "swish"; }), "hidden_act: unknown activation 'swish'");
  EXPECT_CONTAINS(bad([](BertConfig& c) { c.layer_norm_eps = 0; }), "layer_norm_eps");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { bert_preset("huge"); }), "tiny, small, base or large");
}

TEST(BertConfig, PresetsAndParameterCounts) {
  const auto small = bert_preset("small");
  EXPECT_EQ(small.num_hidden_layers, 4);
  EXPECT_EQ(small.hidden_size, 256);
  EXPECT_EQ(small.num_attention_heads, 4);
  EXPECT_EQ(small.layer_norm_eps, 1e-12);
  EXPECT_EQ(nlohmann::json(small).get<BertConfig>().hidden_size, 256);
  // bert-base-uncased: BertModel 109,482,240 parameters (the published count), + 624,188 of the
  // pretraining heads (transform 590,592 + LayerNorm 1,536 + bias 30,522 + NSP 1,538; decoder tied).
  torch::NoGradGuard no_grad;
  BertForPreTraining base(bert_preset("base"));
  int64_t encoder = 0;
  for (const auto& p : base->bert->parameters()) encoder += p.numel();
  EXPECT_EQ(encoder, 109482240);
  EXPECT_EQ(base->num_parameters(), 110106428);
}

}  // namespace

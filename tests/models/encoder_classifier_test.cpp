// Tests for models/transformer/encoder_classifier: tiny forward (shape, finite, attention rows sum
// to 1), every readout/position/attention variant, local attention staying in its window and
// causal attention never looking ahead, padding read at the last real token, overfitting one
// batch, and bad configs naming the field.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "models/transformer/encoder_classifier.h"
#include "tests/test_util.h"

using namespace attnzoo::models;

TEST(EncoderClassifier, TinyForwardShapesAndFinite) {
  torch::manual_seed(0);
  for (std::string positions : {"learned", "sinusoidal"})
    for (std::string readout : {"last", "first"})
      for (std::string attention : {"global", "causal", "local"}) {
        auto cfg = encoder_classifier_tiny(11, 5);
        cfg.positions = positions, cfg.readout = readout, cfg.attention = attention, cfg.window = 2;
        cfg.num_layers = 2;
        EncoderClassifier model(cfg);
        auto tokens = torch::randint(0, 11, {3, 9}, torch::kLong);
        auto out = model->forward(tokens, torch::Tensor(), true);
        ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 5}));
        EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>());
        ASSERT_EQ(out.attention.size(), 2u);
        ASSERT_EQ(out.attention[0].sizes(), (std::vector<int64_t>{3, 2, 9, 9}));
        EXPECT_TRUE(torch::allclose(out.attention[0].sum(-1), torch::ones({3, 2, 9})));
        auto rows = torch::arange(9).unsqueeze(1), cols = torch::arange(9).unsqueeze(0);
        if (attention == "local") {
          EXPECT_EQ(out.attention[1].masked_select(((rows - cols).abs() > 2).expand({3, 2, 9, 9})).abs().max().item<float>(), 0.f);
        }
        if (attention == "causal") {
          EXPECT_EQ(out.attention[1].masked_select((cols > rows).expand({3, 2, 9, 9})).abs().max().item<float>(), 0.f);
        }
        EXPECT_TRUE(model(tokens).attention.empty());
      }
}

TEST(EncoderClassifier, LastReadoutSkipsPadding) {
  torch::manual_seed(1);
  EncoderClassifier model(encoder_classifier_tiny(11, 4));
  model->eval();
  auto short_seq = torch::tensor({{5, 6, 7}}, torch::kLong);
  auto padded = torch::tensor({{5, 6, 7, 0, 0}}, torch::kLong);
  auto padding = torch::tensor({{false, false, false, true, true}});
  auto a = model(short_seq).logits, b = model(padded, padding).logits;
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
}

TEST(EncoderClassifier, OverfitsOneBatch) {
  torch::manual_seed(2);
  auto cfg = encoder_classifier_tiny(12, 4);
  EncoderClassifier model(cfg);
  auto tokens = torch::randint(0, 12, {16, 10}, torch::kLong);
  auto labels = torch::randint(0, 4, {16}, torch::kLong);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    auto loss = torch::cross_entropy_loss(model(tokens).logits, labels);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.5 * first);
  EXPECT_EQ(model(tokens).logits.argmax(1).eq(labels).sum().item<int64_t>(), 16);
}

TEST(EncoderClassifier, BadConfigsNameTheField) {
  auto bad = [](auto edit) {
    auto cfg = encoder_classifier_tiny(10, 3);
    edit(cfg);
    return attnzoo::testing::error_of<std::invalid_argument>([&] { EncoderClassifier m(cfg); });
  };
  EXPECT_CONTAINS(bad([](EncoderClassifierConfig& c) { c.n_head = 3; }), "n_head");
  EXPECT_CONTAINS(bad([](EncoderClassifierConfig& c) { c.positions = "rotary"; }), "positions");
  EXPECT_CONTAINS(bad([](EncoderClassifierConfig& c) { c.readout = "mean"; }), "readout");
  EXPECT_CONTAINS(bad([](EncoderClassifierConfig& c) { c.attention = "sparse"; }), "attention");
  EncoderClassifier model(encoder_classifier_tiny(10, 3));
  EXPECT_THROW(model(torch::zeros({1, 65}, torch::kLong)), c10::Error);  // beyond max_len 64
}

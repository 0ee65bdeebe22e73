// Tests for models/common/positional: the sinusoidal encoding against its closed form and known
// values, the learned table, and DETR's 2-D sine encoding against hand-derived values and the
// golden file of scripts/reference/detr_position_sine.py.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/positional.h"
#include "tests/test_util.h"

using attnzoo::models::LearnedPositionalEmbedding;
using attnzoo::models::position_embedding_sine;
using attnzoo::models::PositionEmbeddingSineConfig;
using attnzoo::models::sinusoidal_encoding;

namespace {

TEST(PositionalEncoding, SinusoidalKnownValues) {
  const auto pe = sinusoidal_encoding(8, 8);  // 10000^(2i/8): 1, 10, 100, 1000
  ASSERT_EQ(pe.sizes(), (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(pe.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(pe[0], torch::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f}))) << "sin 0, cos 0";
  EXPECT_NEAR(pe[1][0].item<double>(), std::sin(1.0), 1e-7);
  EXPECT_NEAR(pe[1][1].item<double>(), std::cos(1.0), 1e-7);
  EXPECT_NEAR(pe[3][2].item<double>(), std::sin(0.3), 1e-7);   // 3 / 10
  EXPECT_NEAR(pe[3][3].item<double>(), std::cos(0.3), 1e-7);
  EXPECT_NEAR(pe[5][4].item<double>(), std::sin(0.05), 1e-7);  // 5 / 100
  EXPECT_NEAR(pe[7][7].item<double>(), std::cos(0.007), 1e-7); // 7 / 1000
}

TEST(PositionalEncoding, SinusoidalEqualsTheClosedForm) {
  const int64_t T = 300, C = 64;
  const auto pe = sinusoidal_encoding(T, C, 0, 10000.0, torch::kDouble);
  ASSERT_EQ(pe.scalar_type(), torch::kDouble);
  auto a = pe.accessor<double, 2>();
  double worst = 0;
  for (int64_t pos = 0; pos < T; ++pos)
    for (int64_t i = 0; i < C / 2; ++i) {
      const double angle = static_cast<double>(pos) / std::pow(10000.0, 2.0 * static_cast<double>(i) / C);
      worst = std::max({worst, std::abs(a[pos][2 * i] - std::sin(angle)), std::abs(a[pos][2 * i + 1] - std::cos(angle))});
    }
  EXPECT_LT(worst, 1e-12);
  // An offset continues the table (decoding with a cache).
  EXPECT_TRUE(torch::allclose(sinusoidal_encoding(5, C, 40), sinusoidal_encoding(45, C).narrow(0, 40, 5)));
  EXPECT_THROW(sinusoidal_encoding(4, 7), c10::Error);
}

TEST(PositionalEncoding, LearnedTable) {
  LearnedPositionalEmbedding wpe(10, 6);
  ASSERT_EQ(wpe->named_parameters().size(), 1u);
  EXPECT_TRUE(wpe->named_parameters().contains("weight"));
  EXPECT_NEAR(wpe->weight.std().item<double>(), 0.02, 0.01);
  EXPECT_TRUE(torch::equal(wpe(3, 2), wpe->weight.narrow(0, 2, 3)));
  const auto positions = torch::tensor({{0, 9}, {4, 4}});
  const auto rows = wpe->lookup(positions);
  ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{2, 2, 6}));
  EXPECT_TRUE(torch::equal(rows[0][1], wpe->weight[9]));
  EXPECT_CONTAINS(attnzoo::testing::error_of<c10::Error>([&] { wpe(5, 6); }), "outside the learned table");
  // Trained: gradients reach the rows used and only those.
  wpe(2, 1).sum().backward();
  EXPECT_TRUE(torch::equal(wpe->weight.grad().abs().sum(1).ne(0).nonzero().flatten(), torch::tensor({1, 2}, torch::kLong)));
}

TEST(PositionalEncoding, DetrSineHandValuesWithoutNormalisation) {
  // No padding, no normalisation: pixel (i, j) has y = i + 1 and x = j + 1.
  const PositionEmbeddingSineConfig cfg{.num_pos_feats = 4, .temperature = 100.0, .normalize = false};
  const auto pos = position_embedding_sine(torch::zeros({1, 2, 3}, torch::kBool), cfg);
  ASSERT_EQ(pos.sizes(), (std::vector<int64_t>{1, 8, 2, 3}));
  // Channel k uses 100^(2 (k / 2) / 4): 1, 1, 10, 10; y first (channels 0-3), then x (4-7).
  EXPECT_NEAR(pos[0][0][1][2].item<double>(), std::sin(2.0), 1e-6);
  EXPECT_NEAR(pos[0][1][1][2].item<double>(), std::cos(2.0), 1e-6);
  EXPECT_NEAR(pos[0][2][1][2].item<double>(), std::sin(0.2), 1e-6);
  EXPECT_NEAR(pos[0][3][1][2].item<double>(), std::cos(0.2), 1e-6);
  EXPECT_NEAR(pos[0][4][1][2].item<double>(), std::sin(3.0), 1e-6);
  EXPECT_NEAR(pos[0][7][1][2].item<double>(), std::cos(0.3), 1e-6);
  // Normalised (DETR's default): the last unpadded row and column reach 2π.
  const auto norm = position_embedding_sine(torch::zeros({1, 2, 3}, torch::kBool), {.num_pos_feats = 4});
  EXPECT_NEAR(norm[0][0][1][0].item<double>(), std::sin(2 * M_PI * 2 / (2 + 1e-6)), 1e-5);
  EXPECT_NEAR(norm[0][4][0][1].item<double>(), std::sin(2 * M_PI * 2 / (3 + 1e-6)), 1e-5);
  EXPECT_THROW(position_embedding_sine(torch::zeros({1, 2, 3})), c10::Error) << "not a bool mask";
  EXPECT_THROW(position_embedding_sine(torch::zeros({2, 3}, torch::kBool)), c10::Error) << "not (B, H, W)";
}

TEST(PositionalEncoding, DetrSineMatchesTheReferenceScript) {
  std::ifstream in(std::string(ATTNZOO_TEST_DATA) + "/detr_position_sine.json");
  ASSERT_TRUE(in) << "tests/data/detr_position_sine.json: run scripts/reference/detr_position_sine.py";
  const auto golden = nlohmann::json::parse(in);
  ASSERT_EQ(golden["cases"].size(), 2u);
  for (const auto& c : golden["cases"]) {
    const auto cfg = c["config"].get<PositionEmbeddingSineConfig>();
    SCOPED_TRACE(c["config"].dump());
    std::vector<int64_t> flat_mask;
    for (const auto& image : c["mask"])
      for (const auto& row : image)
        for (const auto& v : row) flat_mask.push_back(v.get<bool>());
    const auto shape = c["shape"].get<std::vector<int64_t>>();
    const auto mask = torch::tensor(flat_mask).to(torch::kBool).view({shape[0], shape[2], shape[3]});
    const auto want = torch::tensor(c["pos"].get<std::vector<double>>()).to(torch::kFloat).view(shape);
    const auto got = position_embedding_sine(mask, cfg);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(torch::allclose(got, want, 0, 1e-5)) << "max abs diff " << (got - want).abs().max().item<double>();
  }
}

}  // namespace

// Tests for models/mae: the official key names, masking (exact visible count per sample, the
// restore order), patchify round trip, the 2-D sin-cos table against its formula, the loss on
// masked patches only, the encoder keys a ViT loads, and overfitting one batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "models/mae/mae.h"
#include "tests/test_util.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace attnzoo::models;

namespace {

TEST(MAE, ModuleNamesAreOfficial) {
  MaskedAutoencoder mae(mae_preset("tiny"));
  auto sd = attnzoo::weights::state_dict(*mae);
  for (const char* key : {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                          "blocks.1.mlp.fc2.bias", "norm.weight", "decoder_embed.weight", "mask_token",
                          "decoder_pos_embed", "decoder_blocks.0.norm1.weight", "decoder_blocks.0.attn.proj.weight",
                          "decoder_norm.bias", "decoder_pred.weight"})
    EXPECT_EQ(sd.count(key), 1u) << key;
  EXPECT_FALSE(mae->pos_embed.requires_grad());
  EXPECT_FALSE(mae->decoder_pos_embed.requires_grad());
  // The encoder's tensors load strictly into a ViT with a head of its own.
  auto enc = mae_encoder_tensors(sd);
  EXPECT_EQ(enc.count("mask_token"), 0u);
  VisionTransformer vit(mae_encoder_config(mae->cfg, 3));
  auto report = attnzoo::weights::load_state_dict(*vit, enc, /*strict=*/false);
  EXPECT_TRUE(report.unexpected.empty()) << report.summary();
  auto missing = report.missing;
  std::sort(missing.begin(), missing.end());
  EXPECT_EQ(missing, (std::vector<std::string>{"head.bias", "head.weight"}));
}

TEST(MAE, MaskingKeepsExactlyLPerSampleAndRestoresOrder) {
  const int64_t B = 4, N = 16, C = 3;
  auto x = torch::arange(B * N * C, torch::kFloat).view({B, N, C});
  auto noise = torch::rand({B, N});
  auto m = random_masking(x, 0.75, noise);
  EXPECT_EQ(m.kept.sizes(), (std::vector<int64_t>{B, 4, C}));
  EXPECT_TRUE(torch::equal(m.mask.sum(1), torch::full({B}, 12.0)));
  for (int64_t b = 0; b < B; ++b) {
    // The kept patches are the 4 with the smallest noise, and the mask says so.
    auto order = std::get<1>(noise[b].sort());
    for (int64_t i = 0; i < N; ++i) {
      const int64_t patch = order[i].item<int64_t>();
      EXPECT_EQ(m.mask[b][patch].item<float>(), i < 4 ? 0.0f : 1.0f);
      EXPECT_EQ(m.ids_restore[b][patch].item<int64_t>(), i);
    }
    for (int64_t i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(m.kept[b][i], x[b][order[i]]));
  }
  // Unshuffling [kept, dummies] with ids_restore puts every kept token back at its patch.
  auto full = torch::cat({m.kept, torch::full({B, N - 4, C}, -1.0)}, 1).gather(1, m.ids_restore.unsqueeze(-1).expand({B, N, C}));
  auto keep = (m.mask == 0).unsqueeze(-1).expand({B, N, C});
  EXPECT_TRUE(torch::equal(full.masked_select(keep), x.masked_select(keep)));
  EXPECT_TRUE((full.masked_select(keep.logical_not()) == -1).all().item<bool>());
}

TEST(MAE, PatchifyRoundTripAndSinCosTable) {
  auto img = torch::randn({2, 3, 8, 8});
  auto p = patchify(img, 4);
  EXPECT_EQ(p.sizes(), (std::vector<int64_t>{2, 4, 48}));
  // Patch 1 is rows 0..3, columns 4..7; its element (p=1, q=2, c=0) sits at (1·4 + 2)·3 + 0.
  EXPECT_EQ(p[0][1][(1 * 4 + 2) * 3].item<float>(), img[0][0][1][6].item<float>());
  EXPECT_TRUE(torch::equal(unpatchify(p, 4, 3), img));
  const int64_t D = 8, g = 3;
  auto t = sincos_2d_pos_embed(D, g);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{1 + g * g, D}));
  EXPECT_TRUE(torch::equal(t[0], torch::zeros({D})));
  for (int64_t i = 0; i < g; ++i)
    for (int64_t j = 0; j < g; ++j)
      for (int64_t k = 0; k < D / 4; ++k) {
        const double w = 1.0 / std::pow(10000.0, static_cast<double>(k) / (D / 4));
        const auto row = t[1 + i * g + j];
        EXPECT_NEAR(row[k].item<float>(), std::sin(j * w), 1e-6);
        EXPECT_NEAR(row[D / 4 + k].item<float>(), std::cos(j * w), 1e-6);
        EXPECT_NEAR(row[D / 2 + k].item<float>(), std::sin(i * w), 1e-6);
        EXPECT_NEAR(row[3 * D / 4 + k].item<float>(), std::cos(i * w), 1e-6);
      }
}

TEST(MAE, ForwardShapesAndLossOnMaskedPatchesOnly) {
  torch::manual_seed(3);
  MaskedAutoencoder mae(mae_preset("tiny"));
  auto img = torch::randn({2, 3, 16, 16});
  auto noise = torch::rand({2, 16});
  auto out = mae->forward(img, noise);
  EXPECT_EQ(out.pred.sizes(), (std::vector<int64_t>{2, 16, 48}));
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  // Changing the prediction of a visible patch does not change the loss; of a masked one, does.
  auto pred = out.pred.detach().clone();
  const auto visible = (out.mask[0] == 0).nonzero()[0][0].item<int64_t>();
  const auto masked = (out.mask[0] == 1).nonzero()[0][0].item<int64_t>();
  const double base = mae->forward_loss(img, pred, out.mask).item<double>();
  pred[0][visible] += 10.0;
  EXPECT_DOUBLE_EQ(mae->forward_loss(img, pred, out.mask).item<double>(), base);
  pred[0][masked] += 10.0;
  EXPECT_GT(mae->forward_loss(img, pred, out.mask).item<double>(), base);
  // Same noise, same masking and output.
  EXPECT_TRUE(torch::equal(mae->forward(img, noise).pred, out.pred));
  EXPECT_THROW(mae->forward(torch::randn({1, 3, 8, 8})), c10::Error);
}

// scripts/reference/mae_reference.py: the same tiny MAE in Python, float64; masks from the same noise.
TEST(MAE, ReferenceOutputs) {
  auto file = attnzoo::weights::load_safetensors(std::string(ATTNZOO_TEST_DATA) + "/mae_tiny.safetensors").tensors;
  std::map<std::string, torch::Tensor> weights;
  for (const auto& [k, v] : file)
    if (k.rfind("model.", 0) == 0) weights[k.substr(6)] = v;
  for (bool norm_pix : {false, true}) {
    auto cfg = mae_preset("tiny");
    cfg.norm_pix_loss = norm_pix;
    MaskedAutoencoder mae(cfg);
    attnzoo::weights::load_state_dict(*mae, weights, /*strict=*/true, "mae_tiny.safetensors");
    mae->eval();
    torch::NoGradGuard no_grad;
    auto out = mae->forward(file.at("images"), file.at("noise"));
    EXPECT_TRUE(torch::equal(out.mask, file.at("mask")));
    EXPECT_TRUE(torch::allclose(out.pred, file.at("pred"), 0, 1e-4))
        << "max diff " << (out.pred - file.at("pred")).abs().max().item<double>();
    EXPECT_NEAR(out.loss.item<double>(), file.at(norm_pix ? "loss_norm_pix" : "loss").item<double>(), 1e-5);
  }
}

TEST(MAE, OverfitsOneBatch) {
  torch::manual_seed(4);
  auto cfg = mae_preset("tiny");
  MaskedAutoencoder mae(cfg);
  // Learnable images: a random colour per image and channel plus a horizontal ramp, so that
  // masked patches are predictable from the visible ones.
  auto img = torch::randn({4, 3, 1, 1}) + torch::linspace(-1, 1, 16).view({1, 1, 1, 16});
  img = img.expand({4, 3, 16, 16}).contiguous();
  auto noise = torch::rand({4, 16});
  std::vector<torch::Tensor> params;
  for (auto& p : mae->parameters())
    if (p.requires_grad()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    auto loss = mae->forward(img, noise).loss;
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, first / 2) << "first " << first << ", last " << last;
}

}  // namespace

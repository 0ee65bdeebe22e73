// Tests for models/vit: timm's module names, tiny forward (shape, finite), position embeddings
// resampled for another image size, attention weights and rollout, overfitting one batch; and
// weights/timm_vit: a timm-layout checkpoint written by scripts/reference/vit_reference.py gives
// the reference logits (1e-4), at its own size and at a resampled one.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "models/vit/vit.h"
#include "tests/test_util.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"
#include "weights/timm_vit.h"

using attnzoo::testing::any_error;
using namespace attnzoo::models;
using namespace attnzoo::weights;

namespace {

TEST(ViT, ModuleNamesAreTimms) {
  auto sd = state_dict(*VisionTransformer(vit_test_tiny()));
  for (const char* key : {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                          "blocks.0.norm1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
                          "blocks.0.attn.proj.weight", "blocks.1.norm2.bias", "blocks.1.mlp.fc1.weight",
                          "blocks.1.mlp.fc2.bias", "norm.weight", "head.weight", "head.bias"})
    EXPECT_EQ(sd.count(key), 1u) << key;
  EXPECT_EQ(sd.size(), 4u + 2 * 12 + 4);
  EXPECT_EQ(sd.at("pos_embed").sizes(), (std::vector<int64_t>{1, 17, 32}));
  auto cfg = vit_test_tiny();
  cfg.global_pool = "avg";
  auto avg = state_dict(*VisionTransformer(cfg));
  EXPECT_EQ(avg.count("fc_norm.weight"), 1u);
  EXPECT_EQ(avg.count("norm.weight"), 0u);
}

TEST(ViT, TinyForwardShapesAndResampling) {
  torch::manual_seed(0);
  VisionTransformer vit(vit_test_tiny());
  vit->eval();
  auto logits = vit->forward(torch::randn({3, 3, 16, 16}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 5}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  EXPECT_EQ(vit->forward(torch::randn({2, 3, 24, 32})).sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_CONTAINS(any_error([&] { vit->forward(torch::randn({1, 3, 18, 16})); }), "not a multiple of the patch size 4");
  // The same grid resampled is the identity; up then down is close to it.
  auto pe = torch::randn({1, 1 + 16, 8});
  EXPECT_TRUE(torch::equal(resample_pos_embed(pe, 1, 4, 4, 4, 4), pe));
  EXPECT_EQ(resample_pos_embed(pe, 1, 4, 4, 6, 5).sizes(), (std::vector<int64_t>{1, 31, 8}));
  vit->reset_head(7);
  EXPECT_EQ(vit->forward(torch::randn({1, 3, 16, 16})).sizes(), (std::vector<int64_t>{1, 7}));
  EXPECT_CONTAINS(any_error([] { vit_preset("huge"); }), "unknown ViT preset 'huge'");
  auto bad = vit_test_tiny();
  bad.img_size = 18;
  EXPECT_CONTAINS(any_error([&] { bad.validate(); }), "img_size (18) must be a multiple of patch_size (4)");
}

TEST(ViT, AttentionWeightsAndRollout) {
  torch::manual_seed(1);
  VisionTransformer vit(vit_test_tiny());
  vit->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 16, 16});
  auto plain = vit->forward(x);
  vit->keep_attention(true);
  auto with = vit->forward(x);
  EXPECT_TRUE(torch::allclose(plain, with, 1e-5, 1e-5));
  auto w = vit->attention_weights();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[1].sizes(), (std::vector<int64_t>{2, 2, 17, 17}));
  EXPECT_TRUE(torch::allclose(w[0].sum(-1), torch::ones({2, 2, 17})));
  auto r = attention_rollout(w);
  EXPECT_EQ(r.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_TRUE((r > 0).all().item<bool>());
  // One layer whose [class] token attends only to patch 5: rollout = (0.5·e5 + 0.5·identity row).
  auto one = torch::zeros({1, 1, 17, 17});
  one.select(2, 0).select(2, 6).fill_(1.0);
  for (int i = 1; i < 17; ++i) one[0][0][i][i] = 1.0;
  auto r1 = attention_rollout({one});
  EXPECT_NEAR(r1[0][5].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(r1.sum().item<float>(), 0.5, 1e-6);  // the other half stays on [class] itself
}

TEST(ViT, OverfitsOneBatch) {
  torch::manual_seed(2);
  VisionTransformer vit(vit_test_tiny());
  vit->train();
  auto x = torch::randn({8, 3, 16, 16});
  auto y = torch::randint(0, 5, {8});
  torch::optim::Adam opt(vit->parameters(), torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    auto loss = torch::nn::functional::cross_entropy(vit->forward(x), y);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, first / 2) << "first " << first << ", last " << last;
}

TEST(TimmViT, ReferenceLogits) {
  const std::string data = ATTNZOO_TEST_DATA;
  auto timm = load_timm_vit_dir(data + "/timm_vit_tiny");
  EXPECT_EQ(timm.config.img_size, 16);
  EXPECT_EQ(timm.config.embed_dim, 32);
  EXPECT_EQ(timm.config.num_classes, 5);
  EXPECT_EQ(timm.preprocess.interpolation, "bicubic");
  EXPECT_DOUBLE_EQ(timm.preprocess.crop_pct, 0.875);
  EXPECT_EQ(timm.label_names.size(), 5u);
  VisionTransformer vit(timm.config);
  load_state_dict(*vit, timm.tensors, true, "timm");
  vit->eval();
  torch::NoGradGuard no_grad;
  auto golden = load_safetensors(data + "/timm_vit_tiny_logits.safetensors").tensors;
  for (const char* size : {"16", "24"}) {
    auto logits = vit->forward(golden.at(std::string("images") + size));
    EXPECT_TRUE(torch::allclose(logits, golden.at(std::string("logits") + size), 0, 1e-4))
        << size << ": max diff " << (logits - golden.at(std::string("logits") + size)).abs().max().item<double>();
  }
  // A config for another size resamples the checkpoint's position embeddings on import.
  auto cfg = timm.config;
  cfg.img_size = 24;
  auto file = load_safetensors(data + "/timm_vit_tiny/model.safetensors").tensors;
  EXPECT_EQ(import_timm_vit(file, cfg, "f").at("pos_embed").sizes(), (std::vector<int64_t>{1, 37, 32}));
}

TEST(TimmViT, BadConfigsAndKeys) {
  nlohmann::json j = {{"architecture", "resnet50.a1_in1k"}};
  EXPECT_CONTAINS(any_error([&] { vit_config_from_timm(j, "c.json"); }), "c.json: architecture: 'resnet50.a1_in1k' is not a plain ViT");
  j = {{"architecture", "vit_base_patch16_224.augreg2_in21k_ft_in1k"}, {"model_args", {{"reg_tokens", 4}}}};
  EXPECT_CONTAINS(any_error([&] { vit_config_from_timm(j, "c.json"); }), "reg_tokens: 4 is not supported");
  j = {{"architecture", "vit_small_patch32_384"}, {"num_classes", 10}};
  auto cfg = vit_config_from_timm(j, "c.json");
  EXPECT_EQ(cfg.patch_size, 32);
  EXPECT_EQ(cfg.img_size, 384);
  EXPECT_EQ(cfg.embed_dim, 384);
  EXPECT_EQ(cfg.num_classes, 10);
  auto tiny = vit_test_tiny();
  auto sd = state_dict(*VisionTransformer(tiny));
  sd.erase("blocks.1.mlp.fc2.weight");
  sd["blocks.0.ls1.gamma"] = torch::ones({32});
  auto e = any_error([&] { import_timm_vit(sd, tiny, "m.safetensors"); });
  EXPECT_CONTAINS(e, "m.safetensors: unknown key(s) for a ViT: blocks.0.ls1.gamma; missing key(s): blocks.1.mlp.fc2.weight");
}

}  // namespace

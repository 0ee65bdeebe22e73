// Tests for LoRA (models/gpt/lora.h) and its PEFT adapter files (weights/peft_lora.h): a new
// adapter leaves the model unchanged; training moves only the adapters (the AdamW groups hold only
// them, every base tensor stays bit-identical); PEFT's key names, shapes and adapter_config.json;
// save -> load round trip; merged and unmerged models give the same logits; bad input.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/adamw.h"
#include "losses/language_model.h"
#include "models/gpt/gpt.h"
#include "models/gpt/lora.h"
#include "tests/test_util.h"
#include "weights/hf_gpt2.h"
#include "weights/peft_lora.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using attnzoo::models::add_lora;
using attnzoo::models::GPT;
using attnzoo::models::gpt_tiny;
using attnzoo::models::LoraConfig;
using attnzoo::testing::any_error;
namespace weights = attnzoo::weights;

namespace {

// gpt_tiny: 2 layers, C = 32, vocab 37, block 16.
GPT tiny_model(uint64_t seed = 1) {
  torch::manual_seed(seed);
  GPT m(gpt_tiny());
  m->eval();
  return m;
}

LoraConfig all_targets(int64_t r = 4) {
  LoraConfig c;
  c.rank = r;
  c.alpha = 8;
  c.targets = {"c_attn", "c_proj", "c_fc"};
  return c;
}

torch::Tensor tokens(int64_t B = 2, int64_t T = 12) { return torch::randint(0, 37, {B, T}, torch::kLong); }

// Gives every lora_B random values, as after training.
void randomize_b(GPT& m) {
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters())
    if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0.0, 0.05);
}

}  // namespace

class LoraTest : public attnzoo::testing::TempDirTest {};

TEST_F(LoraTest, NewAdapterLeavesTheModelUnchanged) {
  auto m = tiny_model();
  auto x = tokens();
  auto before = m->forward(x);
  add_lora(m, all_targets());
  EXPECT_TRUE(torch::equal(before, m->forward(x)));
  // A (r, in) Kaiming-uniform with a = √5: bound 1/√in; B (out, r) zeros.
  const auto& attn = m->transformer->h[0]->as<attnzoo::models::Block>()->attn;
  EXPECT_EQ(attn->c_attn_lora.A->weight.sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(attn->c_attn_lora.B->weight.sizes(), (std::vector<int64_t>{96, 4}));
  EXPECT_LE(attn->c_attn_lora.A->weight.abs().max().item<double>(), 1.0 / std::sqrt(32.0));
  EXPECT_GT(attn->c_attn_lora.A->weight.abs().max().item<double>(), 0.5 / std::sqrt(32.0));
  EXPECT_EQ(attn->c_attn_lora.B->weight.abs().max().item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(attn->c_attn_lora.scaling, 2.0);
}

TEST_F(LoraTest, SuffixTargetsAsPeft) {
  const auto cfg = gpt_tiny();
  auto names = attnzoo::models::lora_layer_names(cfg, {"c_proj"});
  EXPECT_EQ(names, (std::vector<std::string>{"transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj",
                                              "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"}));
  names = attnzoo::models::lora_layer_names(cfg, {"attn.c_proj", "transformer.h.1.mlp.c_fc"});
  EXPECT_EQ(names, (std::vector<std::string>{"transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_proj",
                                              "transformer.h.1.mlp.c_fc"}));
  auto m = tiny_model();
  add_lora(m, all_targets());
  EXPECT_EQ(attnzoo::models::lora_state_dict(m).size(), 2u * 4u * 2u);  // layers × linears × (A, B)
}

TEST_F(LoraTest, OnlyAdaptersTrainAndTheBaseStaysBitIdentical) {
  auto m = tiny_model();
  add_lora(m, all_targets());
  auto base = attnzoo::testing::clone_tensors(weights::state_dict(*m));
  for (auto it = base.begin(); it != base.end();)
    it = attnzoo::models::is_lora_key(it->first) ? base.erase(it) : std::next(it);
  const auto adapters_before = attnzoo::testing::clone_tensors(attnzoo::models::lora_state_dict(m));

  // The training loop's optimizer groups (engine/trainer.cpp) hold the adapters only.
  auto [decay, no_decay] = attnzoo::engine::weight_decay_groups(*m);
  std::set<std::string> names;
  for (const auto* g : {&decay, &no_decay})
    for (const auto& p : *g) names.insert(p.name);
  std::set<std::string> expected;
  for (const auto& [k, v] : adapters_before) expected.insert(k);
  EXPECT_EQ(names, expected);
  EXPECT_EQ(attnzoo::models::num_trainable_parameters(*m), 2 * (4 * 32 + 96 * 4 + 4 * 32 + 32 * 4 + 4 * 32 + 128 * 4 +
                                                                4 * 128 + 32 * 4));

  attnzoo::engine::AdamW opt(decay, no_decay, {0.9, 0.99, 1e-8, 0.1});
  m->train();
  for (int step = 0; step < 5; ++step) {
    auto x = tokens(4, 16);
    auto loss = attnzoo::losses::language_model_loss(m->forward(x), torch::roll(x, -1, 1));
    loss.backward();
    opt.step(1e-2);
    opt.zero_grad();
  }
  const auto after = weights::state_dict(*m);
  for (const auto& [k, v] : base) EXPECT_TRUE(torch::equal(v, after.at(k))) << k << " changed";
  for (const auto& [k, v] : adapters_before) EXPECT_FALSE(torch::equal(v, after.at(k))) << k << " did not train";
}

TEST_F(LoraTest, PeftKeyNamesShapesAndConfig) {
  auto m = tiny_model();
  auto cfg = all_targets(4);
  cfg.dropout = 0.05;
  cfg.base_model = "gpt2";
  add_lora(m, cfg);
  weights::save_peft_adapter_dir(path("adapter"), cfg, attnzoo::models::lora_state_dict(m), false);

  const auto st = weights::load_safetensors(path("adapter/adapter_model.safetensors"));
  EXPECT_EQ(st.tensors.size(), 16u);
  const std::map<std::string, std::vector<int64_t>> shapes = {
      {"attn.c_attn.lora_A.weight", {4, 32}}, {"attn.c_attn.lora_B.weight", {96, 4}},
      {"attn.c_proj.lora_A.weight", {4, 32}}, {"attn.c_proj.lora_B.weight", {32, 4}},
      {"mlp.c_fc.lora_A.weight", {4, 32}},    {"mlp.c_fc.lora_B.weight", {128, 4}},
      {"mlp.c_proj.lora_A.weight", {4, 128}}, {"mlp.c_proj.lora_B.weight", {32, 4}}};
  for (int layer = 0; layer < 2; ++layer)
    for (const auto& [suffix, shape] : shapes) {
      const std::string key = "base_model.model.transformer.h." + std::to_string(layer) + "." + suffix;
      ASSERT_EQ(st.tensors.count(key), 1u) << key;
      EXPECT_EQ(st.tensors.at(key).sizes(), shape) << key;
    }
  EXPECT_EQ(st.metadata.at("format"), "pt");

  const auto j = nlohmann::json::parse(attnzoo::testing::read_bytes(path("adapter/adapter_config.json")));
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["r"], 4);
  EXPECT_EQ(j["lora_alpha"], 8.0);
  EXPECT_EQ(j["lora_dropout"], 0.05);
  EXPECT_EQ(j["target_modules"], (nlohmann::json{"c_attn", "c_proj", "c_fc"}));
  EXPECT_EQ(j["fan_in_fan_out"], true);
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["base_model_name_or_path"], "gpt2");
  EXPECT_EQ(j["inference_mode"], true);
}

TEST_F(LoraTest, SaveLoadRoundTrip) {
  auto m = tiny_model(3);
  add_lora(m, all_targets());
  randomize_b(m);
  weights::save_peft_adapter_dir(path("adapter"), all_targets(), attnzoo::models::lora_state_dict(m), false);

  auto other = tiny_model(3);  // the same base
  auto adapter = weights::load_peft_adapter_dir(path("adapter"));
  EXPECT_EQ(adapter.config.rank, 4);
  EXPECT_EQ(adapter.config.targets, (std::vector<std::string>{"c_attn", "c_proj", "c_fc"}));
  weights::apply_peft_adapter(other, adapter, "adapter");
  other->eval();
  attnzoo::testing::expect_same_tensors(attnzoo::models::lora_state_dict(m), attnzoo::models::lora_state_dict(other));
  auto x = tokens();
  EXPECT_TRUE(torch::equal(m->forward(x), other->forward(x)));
}

TEST_F(LoraTest, MergedAndUnmergedGiveTheSameLogits) {
  auto m = tiny_model(4);
  add_lora(m, all_targets(8));
  randomize_b(m);
  auto x = tokens(2, 16);
  auto base_logits = tiny_model(4)->forward(x);
  auto lora_logits = m->forward(x);
  ASSERT_GT((lora_logits - base_logits).abs().max().item<double>(), 1e-3);  // the adapters do something

  auto merged_sd = attnzoo::models::merged_state_dict(m);
  for (const auto& [k, v] : merged_sd) EXPECT_FALSE(attnzoo::models::is_lora_key(k)) << k;
  GPT merged(gpt_tiny());
  weights::load_state_dict(*merged, merged_sd, /*strict=*/true);
  merged->eval();
  EXPECT_LT((merged->forward(x) - lora_logits).abs().max().item<double>(), 1e-5);
  // A plain GPT-2: Hugging Face's export takes it (it refuses adapter keys).
  EXPECT_NO_THROW(weights::export_hf_gpt2(merged_sd, gpt_tiny()));
  EXPECT_NE(any_error([&] { weights::export_hf_gpt2(weights::state_dict(*m), gpt_tiny()); }).find("lora_A"),
            std::string::npos);
}

TEST_F(LoraTest, BadInputIsAClearError) {
  auto m = tiny_model();
  LoraConfig zero = all_targets(0);
  EXPECT_EQ(any_error([&] { add_lora(m, zero); }), "lora rank must be positive, got 0");
  LoraConfig unknown = all_targets();
  unknown.targets = {"c_attn", "q_proj"};
  EXPECT_NE(any_error([&] { add_lora(m, unknown); }).find("'q_proj' names no linear layer"), std::string::npos);
  for (const auto& p : m->parameters()) EXPECT_TRUE(p.requires_grad());  // nothing was changed

  add_lora(m, all_targets());
  EXPECT_NE(any_error([&] { add_lora(m, all_targets()); }).find("already has adapters"), std::string::npos);
  weights::save_peft_adapter_dir(path("adapter"), all_targets(), attnzoo::models::lora_state_dict(m), false);
  auto adapter = weights::load_peft_adapter_dir(path("adapter"));

  // Another base: wider, or deeper.
  auto wide_cfg = gpt_tiny();
  wide_cfg.n_embd = 48;
  GPT wide(wide_cfg);
  auto msg = any_error([&] { weights::apply_peft_adapter(wide, adapter, "adapter_model.safetensors"); });
  EXPECT_NE(msg.find("size mismatch: base_model.model.transformer.h.0.attn.c_attn.lora_A.weight: expected [4, 48], got [4, 32]"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("another base model"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  auto deep_cfg = gpt_tiny();
  deep_cfg.n_layer = 3;
  GPT deep(deep_cfg);
  msg = any_error([&] { weights::apply_peft_adapter(deep, adapter, "adapter_model.safetensors"); });
  EXPECT_NE(msg.find("missing key(s): base_model.model.transformer.h.2."), std::string::npos) << msg;

  // A config whose rank disagrees with the weights.
  auto wrong_rank = adapter;
  wrong_rank.config.rank = 8;
  GPT fresh(gpt_tiny());
  msg = any_error([&] { weights::apply_peft_adapter(fresh, wrong_rank, "a"); });
  EXPECT_NE(msg.find("expected [8, 32], got [4, 32]"), std::string::npos) << msg;

  // adapter_config.json that this implementation cannot apply, or a missing file.
  auto cfg_json = weights::peft_adapter_config(all_targets());
  cfg_json["use_dora"] = true;
  EXPECT_EQ(any_error([&] { weights::lora_config_from_peft(cfg_json, "c.json"); }), "c.json: use_dora: not supported (true)");
  cfg_json = weights::peft_adapter_config(all_targets());
  cfg_json["peft_type"] = "IA3";
  EXPECT_NE(any_error([&] { weights::lora_config_from_peft(cfg_json, "c.json"); }).find("peft_type"), std::string::npos);
  std::filesystem::remove(path("adapter/adapter_config.json"));
  EXPECT_NE(any_error([&] { weights::load_peft_adapter_dir(path("adapter")); }).find("adapter/adapter_config.json: missing"),
            std::string::npos);
}

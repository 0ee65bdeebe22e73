// Tests for weights/hf_gpt2: a GPT-2 written in Hugging Face's layout by
// scripts/reference/hf_gpt2_reference.py (tests/data/hf_gpt2_tiny) gives the reference logits in
// our GPT; export -> import round-trips bit-exactly with exactly HF's keys and shapes; the key-map
// variants of Hub files (prefix, lm_head, mask buffers) load; bad files fail naming file and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <torch/torch.h>

#include "models/gpt/gpt.h"
#include "tests/test_util.h"
#include "weights/hf_gpt2.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using attnzoo::models::GPT;
using attnzoo::models::GPTConfig;
using attnzoo::testing::any_error;
using attnzoo::testing::expect_same_tensors;
using attnzoo::testing::read_bytes;
using attnzoo::testing::write_bytes;
using namespace attnzoo::weights;

namespace {

using HfGpt2Test = attnzoo::testing::TempDirTest;

const std::string kTinyDir = std::string(ATTNZOO_TEST_DATA) + "/hf_gpt2_tiny";
const std::string kTinyModel = kTinyDir + "/model.safetensors";

GPTConfig tiny_config() {
  return gpt2_config_from_hf(nlohmann::json::parse(read_bytes(kTinyDir + "/config.json")), "config.json");
}

GPT model_from(const HfGpt2& hf) {
  GPT model(hf.config);
  load_state_dict(*model, hf.tensors, /*strict=*/true, "test");
  model->eval();
  return model;
}

// Copies the tiny directory into DIR with model.safetensors replaced by TENSORS.
void write_variant(const fs::path& dir, const TensorMap& tensors) {
  fs::create_directories(dir);
  fs::copy_file(kTinyDir + "/config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  save_safetensors((dir / "model.safetensors").string(), tensors);
}

TEST_F(HfGpt2Test, ConfigFromHubFields) {
  const GPTConfig cfg = tiny_config();
  EXPECT_EQ(cfg.n_layer, 2);
  EXPECT_EQ(cfg.n_head, 4);
  EXPECT_EQ(cfg.n_embd, 32);
  EXPECT_EQ(cfg.block_size, 32);
  EXPECT_EQ(cfg.vocab_size, 100);  // not a multiple of 64: kept as is
  EXPECT_EQ(cfg.activation, "gelu_tanh");
  EXPECT_TRUE(cfg.bias);
  EXPECT_EQ(cfg.dropout, 0.0);
  // Our config -> HF -> ours is the identity (dropout 0).
  const auto back = gpt2_config_from_hf(gpt2_config_to_hf(cfg, 99), "x");
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(cfg));
  const auto j = gpt2_config_to_hf(cfg, 99);
  EXPECT_EQ(j["model_type"], "gpt2");
  EXPECT_EQ(j["architectures"], nlohmann::json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(j["n_ctx"], 32);
  EXPECT_EQ(j["eos_token_id"], 99);
  EXPECT_EQ(j["activation_function"], "gelu_new");
}

TEST_F(HfGpt2Test, MatchesReferenceLogits) {
  const HfGpt2 hf = load_hf_gpt2_dir(kTinyDir);
  GPT model = model_from(hf);
  const auto golden = load_safetensors(std::string(ATTNZOO_TEST_DATA) + "/hf_gpt2_tiny_logits.safetensors");
  const auto& idx = golden.tensors.at("idx");
  const auto& expected = golden.tensors.at("logits");
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(idx);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  const double diff = (logits - expected).abs().max().item<double>();
  std::cout << "[ hf_gpt2 ] max |logit - reference| = " << diff << " (logits up to "
            << expected.abs().max().item<double>() << ")" << std::endl;
  EXPECT_LT(diff, 1e-5);
}

TEST_F(HfGpt2Test, ExportHasHuggingFaceKeysAndShapes) {
  const auto file = load_safetensors(kTinyModel).tensors;
  GPT model = model_from(load_hf_gpt2_dir(kTinyDir));
  const TensorMap exported = export_hf_gpt2(state_dict(*model), model->config());
  // What save_pretrained writes: the file's keys less lm_head (tied) and the mask buffers.
  TensorMap expected;
  for (const auto& [k, v] : file)
    if (k != "lm_head.weight" && k.find(".attn.bias") == std::string::npos &&
        k.find(".attn.masked_bias") == std::string::npos)
      expected.emplace(k, v);
  expect_same_tensors(exported, expected);
  EXPECT_EQ(exported.at("transformer.h.0.attn.c_attn.weight").sizes(), torch::IntArrayRef({32, 96}));
  EXPECT_EQ(exported.at("transformer.h.1.mlp.c_proj.weight").sizes(), torch::IntArrayRef({128, 32}));
}

TEST_F(HfGpt2Test, ExportImportRoundTripsBitExactly) {
  // A freshly initialised model of our own, vocabulary not a multiple of 64.
  torch::manual_seed(3);
  GPTConfig cfg = tiny_config();
  cfg.vocab_size = 77;
  GPT model(cfg);
  const TensorMap ours = state_dict(*model);
  expect_same_tensors(import_hf_gpt2(export_hf_gpt2(ours, cfg), cfg, "round trip"), ours);

  // Through the directory: config.json too.
  save_hf_gpt2_dir(path("out"), cfg, ours, 76, /*force=*/false);
  EXPECT_TRUE(fs::exists(path("out/config.json")));
  const HfGpt2 back = load_hf_gpt2_dir(path("out"));
  EXPECT_EQ(nlohmann::json(back.config), nlohmann::json(cfg));
  expect_same_tensors(back.tensors, ours);
  EXPECT_TRUE(fs::is_empty(dir_) || std::distance(fs::directory_iterator(dir_), fs::directory_iterator()) == 1)
      << "no temporary directory left";
}

TEST_F(HfGpt2Test, AcceptsHubVariants) {
  const auto file = load_safetensors(kTinyModel).tensors;
  const TensorMap reference = load_hf_gpt2_dir(kTinyDir).tensors;
  // gpt2's own model.safetensors: no transformer. prefix, no lm_head, mask buffers present.
  TensorMap bare;
  for (const auto& [k, v] : file)
    if (k != "lm_head.weight") bare.emplace(k.rfind("transformer.", 0) == 0 ? k.substr(12) : k, v);
  write_variant(path("bare"), bare);
  expect_same_tensors(load_hf_gpt2_dir(path("bare")).tensors, reference);
  // bf16 weights load (converted by load_state_dict).
  TensorMap half;
  for (const auto& [k, v] : file) half.emplace(k, v.to(torch::kBFloat16));
  write_variant(path("bf16"), half);
  GPT model = model_from(load_hf_gpt2_dir(path("bf16")));
  EXPECT_EQ(model->transformer->wte->weight.scalar_type(), torch::kFloat);
}

TEST_F(HfGpt2Test, BadWeightsNameFileAndKey) {
  const auto file = load_safetensors(kTinyModel).tensors;
  auto variant_error = [&](const std::string& name, const TensorMap& t) {
    write_variant(path(name), t);
    const std::string what = any_error([&] { load_hf_gpt2_dir(path(name)); });
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_CONTAINS(what, path(name) + "/model.safetensors");
    return what;
  };
  TensorMap extra = file;
  extra.emplace("transformer.h.0.attn.rotary.inv_freq", torch::zeros({4}));
  EXPECT_CONTAINS(variant_error("unknown", extra), "unknown key(s): transformer.h.0.attn.rotary.inv_freq");

  TensorMap missing = file;
  missing.erase("transformer.h.1.mlp.c_fc.bias");
  EXPECT_CONTAINS(variant_error("missing", missing), "missing key(s): h.1.mlp.c_fc.bias");

  TensorMap untransposed = file;
  untransposed["transformer.h.0.attn.c_attn.weight"] = file.at("transformer.h.0.attn.c_attn.weight").t().contiguous();
  EXPECT_CONTAINS(variant_error("shape", untransposed),
                  "transformer.h.0.attn.c_attn.weight: expected [32, 96], got [96, 32]");

  TensorMap untied = file;
  untied["lm_head.weight"] = file.at("lm_head.weight") + 1;
  EXPECT_CONTAINS(variant_error("untied", untied), "lm_head.weight");

  TensorMap twice = file;
  twice.emplace("wpe.weight", file.at("transformer.wpe.weight"));
  EXPECT_CONTAINS(variant_error("twice", twice), "wpe.weight");
}

TEST_F(HfGpt2Test, BadFilesNameTheFile) {
  auto dir_error = [&](const std::string& name) {
    const std::string what = any_error([&] { load_hf_gpt2_dir(path(name)); });
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  };
  const std::string config = read_bytes(kTinyDir + "/config.json");
  const std::string weights = read_bytes(kTinyModel);
  auto make = [&](const std::string& name, const std::string& cfg, const std::string& model) {
    fs::create_directories(path(name));
    write_bytes(path(name + "/config.json"), cfg);
    if (!model.empty()) write_bytes(path(name + "/model.safetensors"), model);
  };
  make("truncated", config, weights.substr(0, 5000));
  EXPECT_CONTAINS(dir_error("truncated"), path("truncated/model.safetensors"));
  make("foreign", config, "PK\x03\x04 this is a zip file, not safetensors");
  EXPECT_CONTAINS(dir_error("foreign"), path("foreign/model.safetensors"));
  make("malformed", "{\"n_layer\": 2,", weights);
  EXPECT_CONTAINS(dir_error("malformed"), path("malformed/config.json") + ": malformed JSON");
  make("bert", R"({"model_type": "bert", "n_layer": 2})", weights);
  EXPECT_CONTAINS(dir_error("bert"), "model_type");
  auto j = nlohmann::json::parse(config);
  j["n_embd"] = 48;
  make("wider", j.dump(), weights);
  const std::string wider = dir_error("wider");
  EXPECT_CONTAINS(wider, path("wider/model.safetensors"));
  EXPECT_CONTAINS(wider, "transformer.h.0.attn.c_attn.weight: expected [48, 144], got [32, 96]");
  j = nlohmann::json::parse(config);
  j.erase("n_head");
  make("nohead", j.dump(), weights);
  EXPECT_CONTAINS(dir_error("nohead"), path("nohead/config.json") + ": n_head: missing");
  make("noweights", config, "");
  EXPECT_CONTAINS(dir_error("noweights"), path("noweights/model.safetensors") + ": missing");
  EXPECT_CONTAINS(dir_error("nowhere"), "not a directory");
}

TEST_F(HfGpt2Test, SaveRefusesNonEmptyDirectoryUnlessForced) {
  const HfGpt2 hf = load_hf_gpt2_dir(kTinyDir);
  fs::create_directories(path("taken"));
  write_bytes(path("taken/notes.txt"), "mine");
  const std::string what = any_error([&] { save_hf_gpt2_dir(path("taken"), hf.config, hf.tensors, 99, false); });
  EXPECT_CONTAINS(what, "--force");
  EXPECT_EQ(read_bytes(path("taken/notes.txt")), "mine");
  save_hf_gpt2_dir(path("taken"), hf.config, hf.tensors, 99, /*force=*/true);
  EXPECT_FALSE(fs::exists(path("taken/notes.txt")));
  expect_same_tensors(load_hf_gpt2_dir(path("taken")).tensors, hf.tensors);
  // An empty directory is fine without --force.
  fs::create_directories(path("empty"));
  save_hf_gpt2_dir(path("empty"), hf.config, hf.tensors, 99, false);
  // Extra weights (e.g. LoRA adapters) are not GPT-2's.
  TensorMap lora = hf.tensors;
  lora.emplace("transformer.h.0.attn.c_attn.lora_A", torch::zeros({4, 32}));
  EXPECT_CONTAINS(any_error([&] { export_hf_gpt2(lora, hf.config); }), "lora_A");
}

}  // namespace

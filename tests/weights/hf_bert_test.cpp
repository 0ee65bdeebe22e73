// Tests for weights/hf_bert: a BERT written in Hugging Face's layout (bert-base-uncased's quirks:
// gamma/beta, position_ids, no tied decoder) by scripts/reference/hf_bert_reference.py
// (tests/data/hf_bert_tiny) gives the reference MLM and NSP logits in our BERT; export -> import
// round-trips bit-exactly with HF's keys; the Hub's variants load (no bert. prefix, BertModel
// without heads, a stored tied decoder, a classifier); bad files fail naming file and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>

#include <torch/torch.h>

#include "models/bert/bert.h"
#include "tests/test_util.h"
#include "weights/hf_bert.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using attnzoo::models::BertConfig;
using attnzoo::models::BertForPreTraining;
using attnzoo::models::BertForSequenceClassification;
using attnzoo::testing::any_error;
using attnzoo::testing::expect_same_tensors;
using attnzoo::testing::read_bytes;
using namespace attnzoo::weights;

namespace {

using HfBertTest = attnzoo::testing::TempDirTest;

const std::string kTinyDir = std::string(ATTNZOO_TEST_DATA) + "/hf_bert_tiny";
const std::string kTinyModel = kTinyDir + "/model.safetensors";

BertForPreTraining model_from(const HfBert& hf) {
  BertForPreTraining model(hf.config);
  load_state_dict(*model, hf.weights.tensors, /*strict=*/true, "test");
  model->eval();
  return model;
}

// The tiny directory's config.json with model.safetensors replaced by TENSORS, in DIR.
void write_variant(const fs::path& dir, const TensorMap& tensors) {
  fs::create_directories(dir);
  fs::copy_file(kTinyDir + "/config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  save_safetensors((dir / "model.safetensors").string(), tensors);
}

// The file's keys renamed: gamma/beta -> weight/bias.
TensorMap modern_names(const TensorMap& file) {
  TensorMap out;
  for (const auto& [key, v] : file) {
    std::string k = key;
    if (k.ends_with("LayerNorm.gamma")) k.replace(k.size() - 5, 5, "weight");
    if (k.ends_with("LayerNorm.beta")) k.replace(k.size() - 4, 4, "bias");
    out.emplace(k, v);
  }
  return out;
}

TEST_F(HfBertTest, ConfigFromHubFields) {
  const HfBert hf = load_hf_bert_dir(kTinyDir);
  const BertConfig& cfg = hf.config;
  EXPECT_EQ(cfg.vocab_size, 100);
  EXPECT_EQ(cfg.hidden_size, 32);
  EXPECT_EQ(cfg.num_hidden_layers, 2);
  EXPECT_EQ(cfg.num_attention_heads, 4);
  EXPECT_EQ(cfg.intermediate_size, 48);
  EXPECT_EQ(cfg.max_position_embeddings, 40);
  EXPECT_EQ(cfg.layer_norm_eps, 1e-12);
  EXPECT_EQ(cfg.hidden_act, "gelu");
  EXPECT_TRUE(hf.lowercase);
  EXPECT_TRUE(hf.weights.has_pooler && hf.weights.has_mlm_head && hf.weights.has_nsp_head);
  EXPECT_EQ(hf.weights.num_labels, 0);
  EXPECT_EQ(nlohmann::json(bert_config_from_hf(bert_config_to_hf(cfg), "x")), nlohmann::json(cfg));
  const auto j = bert_config_to_hf(cfg, "BertForSequenceClassification", {"neg", "pos"});
  EXPECT_EQ(j["model_type"], "bert");
  EXPECT_EQ(j["architectures"], nlohmann::json::array({"BertForSequenceClassification"}));
  EXPECT_EQ(j["id2label"]["1"], "pos");
  EXPECT_EQ(j["label2id"]["neg"], 0);
  BertConfig tanh = cfg;
  tanh.hidden_act = "gelu_tanh";
  EXPECT_EQ(bert_config_to_hf(tanh)["hidden_act"], "gelu_new");
}

TEST_F(HfBertTest, MatchesReferenceLogits) {
  BertForPreTraining model = model_from(load_hf_bert_dir(kTinyDir));
  const auto golden = load_safetensors(std::string(ATTNZOO_TEST_DATA) + "/hf_bert_tiny_logits.safetensors").tensors;
  const auto& ids = golden.at("input_ids");
  const auto& types = golden.at("token_type_ids");
  const auto& mask = golden.at("attention_mask");
  torch::NoGradGuard no_grad;
  const auto out = model->forward(ids, types, mask);
  const auto& mlm = golden.at("prediction_logits");
  const auto& nsp = golden.at("seq_relationship_logits");
  ASSERT_EQ(out.prediction_logits.sizes(), mlm.sizes());
  ASSERT_EQ(out.seq_relationship_logits.sizes(), nsp.sizes());
  const double d_mlm = (out.prediction_logits - mlm).abs().max().item<double>();
  const double d_nsp = (out.seq_relationship_logits - nsp).abs().max().item<double>();
  std::cout << "[ hf_bert ] max |MLM logit - reference| = " << d_mlm << ", NSP " << d_nsp << " (logits up to "
            << mlm.abs().max().item<double>() << ")" << std::endl;
  EXPECT_LT(d_mlm, 1e-5);
  EXPECT_LT(d_nsp, 1e-5);
  // The MLM head on the real (unpadded) tokens alone: their rows of the reference.
  const auto real = mask.to(torch::kBool);
  const auto some = model->forward(ids, types, mask, real).prediction_logits;
  EXPECT_LT((some - mlm.index({real})).abs().max().item<double>(), 1e-5);
}

TEST_F(HfBertTest, ExportHasHuggingFaceKeysAndShapes) {
  const auto file = load_safetensors(kTinyModel).tensors;
  BertForPreTraining model = model_from(load_hf_bert_dir(kTinyDir));
  const TensorMap exported = export_hf_bert(state_dict(*model), model->config());
  // What save_pretrained writes today: current LayerNorm names, no position_ids buffer.
  TensorMap expected = modern_names(file);
  expected.erase("bert.embeddings.position_ids");
  expect_same_tensors(exported, expected);
}

TEST_F(HfBertTest, ExportImportRoundTripsBitExactly) {
  torch::manual_seed(5);
  BertConfig cfg = load_hf_bert_dir(kTinyDir).config;
  cfg.vocab_size = 77;
  BertForPreTraining model(cfg);
  const TensorMap ours = state_dict(*model);
  expect_same_tensors(import_hf_bert(export_hf_bert(ours, cfg), cfg, "round trip").tensors, ours);

  save_hf_bert_dir(path("out"), cfg, ours, {}, /*force=*/false);
  const HfBert back = load_hf_bert_dir(path("out"));
  EXPECT_EQ(nlohmann::json(back.config), nlohmann::json(cfg));
  expect_same_tensors(back.weights.tensors, ours);
  EXPECT_EQ(read_bytes(path("out/config.json")).find("BertForPreTraining") != std::string::npos, true);

  // A classifier, with its labels in config.json.
  BertForSequenceClassification clf(cfg, 3);
  const TensorMap clf_ours = state_dict(*clf);
  save_hf_bert_dir(path("clf"), cfg, clf_ours, {"a", "b", "c"}, /*force=*/false);
  const HfBert clf_back = load_hf_bert_dir(path("clf"));
  EXPECT_EQ(clf_back.weights.num_labels, 3);
  EXPECT_EQ(clf_back.labels, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(clf_back.weights.has_mlm_head);
  expect_same_tensors(clf_back.weights.tensors, clf_ours);
  EXPECT_CONTAINS(any_error([&] { save_hf_bert_dir(path("clf2"), cfg, clf_ours, {}, false); }), "needs its labels");
  EXPECT_CONTAINS(any_error([&] { save_hf_bert_dir(path("out"), cfg, ours, {}, false); }), "exists and is not empty");
}

TEST_F(HfBertTest, AcceptsHubVariants) {
  const auto file = load_safetensors(kTinyModel).tensors;
  const TensorMap reference = load_hf_bert_dir(kTinyDir).weights.tensors;
  const auto& wte = file.at("bert.embeddings.word_embeddings.weight");

  // Current names, and the tied decoder stored as well (older pytorch_model.bin conversions).
  TensorMap tied = modern_names(file);
  tied.emplace("cls.predictions.decoder.weight", wte.clone());
  tied.emplace("cls.predictions.decoder.bias", file.at("cls.predictions.bias").clone());
  write_variant(path("tied"), tied);
  expect_same_tensors(load_hf_bert_dir(path("tied")).weights.tensors, reference);

  // Only the decoder's bias, not cls.predictions.bias.
  TensorMap decoder_bias = modern_names(file);
  decoder_bias["cls.predictions.decoder.bias"] = decoder_bias.at("cls.predictions.bias");
  decoder_bias.erase("cls.predictions.bias");
  write_variant(path("decoder_bias"), decoder_bias);
  expect_same_tensors(load_hf_bert_dir(path("decoder_bias")).weights.tensors, reference);

  // A BertModel file (bert-base-uncased as BertModel.save_pretrained writes it): no prefix, no heads.
  TensorMap bare;
  for (const auto& [k, v] : file)
    if (k.starts_with("bert.")) bare.emplace(k.substr(5), v);
  write_variant(path("bare"), bare);
  const HfBert b = load_hf_bert_dir(path("bare"));
  EXPECT_TRUE(b.weights.has_pooler);
  EXPECT_FALSE(b.weights.has_mlm_head);
  EXPECT_FALSE(b.weights.has_nsp_head);
  for (const auto& [k, v] : reference) {
    if (k.starts_with("bert.")) {
      EXPECT_TRUE(torch::equal(b.weights.tensors.at(k), v)) << k;
    }
  }
  EXPECT_EQ(b.weights.tensors.count("cls.predictions.bias"), 0u);

  // A BertForMaskedLM file: no pooler, no NSP head.
  TensorMap mlm_only;
  for (const auto& [k, v] : file)
    if (!k.starts_with("bert.pooler.") && !k.starts_with("cls.seq_relationship.")) mlm_only.emplace(k, v);
  write_variant(path("mlm"), mlm_only);
  const HfBert m = load_hf_bert_dir(path("mlm"));
  EXPECT_FALSE(m.weights.has_pooler);
  EXPECT_TRUE(m.weights.has_mlm_head);
  EXPECT_FALSE(m.weights.has_nsp_head);

  // bf16 weights load (converted by load_state_dict).
  TensorMap half;
  for (const auto& [k, v] : file) half.emplace(k, v.is_floating_point() ? v.to(torch::kBFloat16) : v);
  write_variant(path("bf16"), half);
  EXPECT_EQ(model_from(load_hf_bert_dir(path("bf16")))->bert->embeddings->word_embeddings->weight.scalar_type(),
            torch::kFloat);
}

TEST_F(HfBertTest, BadFilesNameFileAndKey) {
  const auto file = load_safetensors(kTinyModel).tensors;
  auto variant_error = [&](const std::string& name, const TensorMap& t) {
    write_variant(path(name), t);
    const std::string what = any_error([&] { load_hf_bert_dir(path(name)); });
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_CONTAINS(what, path(name) + "/model.safetensors");
    return what;
  };
  TensorMap untied = file;
  untied.emplace("cls.predictions.decoder.weight", torch::zeros({100, 32}));
  EXPECT_CONTAINS(variant_error("untied", untied), "an untied MLM decoder");

  TensorMap partial = file;
  partial.erase("cls.predictions.transform.dense.weight");
  EXPECT_CONTAINS(variant_error("partial", partial), "missing key(s): cls.predictions.transform.dense.weight");

  TensorMap no_encoder = file;
  no_encoder.erase("bert.encoder.layer.1.output.dense.bias");
  EXPECT_CONTAINS(variant_error("no_encoder", no_encoder), "missing key(s): bert.encoder.layer.1.output.dense.bias");

  TensorMap unknown = file;
  unknown.emplace("bert.encoder.layer.0.attention.self.distance_embedding.weight", torch::zeros({4, 8}));
  EXPECT_CONTAINS(variant_error("unknown", unknown),
                  "unknown key(s): bert.encoder.layer.0.attention.self.distance_embedding.weight");

  TensorMap shape = file;
  shape["bert.encoder.layer.0.intermediate.dense.weight"] = torch::zeros({32, 48});
  EXPECT_CONTAINS(variant_error("shape", shape),
                  "bert.encoder.layer.0.intermediate.dense.weight: expected [48, 32], got [32, 48]");

  TensorMap twice = file;
  twice.emplace("bert.embeddings.LayerNorm.weight", file.at("bert.embeddings.LayerNorm.gamma"));
  EXPECT_CONTAINS(variant_error("twice", twice), "given twice");

  fs::create_directories(path("no_model"));
  fs::copy_file(kTinyDir + "/config.json", path("no_model/config.json"));
  EXPECT_CONTAINS(any_error([&] { load_hf_bert_dir(path("no_model")); }), path("no_model") + "/model.safetensors: missing");

  const auto cfg_error = [&](const nlohmann::json& j) { return any_error([&] { bert_config_from_hf(j, "c.json"); }); };
  EXPECT_CONTAINS(cfg_error({{"model_type", "roberta"}}), "c.json: model_type: expected \"bert\"");
  EXPECT_CONTAINS(cfg_error({{"position_embedding_type", "relative_key"}}), "position_embedding_type");
  EXPECT_CONTAINS(cfg_error({{"hidden_size", "768"}}), "hidden_size: expected a positive integer");
  EXPECT_CONTAINS(cfg_error({{"hidden_act", "swish"}}), "hidden_act");
  EXPECT_CONTAINS(cfg_error({{"hidden_size", 100}, {"num_attention_heads", 12}}), "divisible");
}

}  // namespace

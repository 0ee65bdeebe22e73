// What bert-pretrain's subcommands share: the run config (model + training settings + masking or
// labels), reading it from flags, a --config file or a checkpoint, and loading a model with its
// WordPiece tokenizer from a run directory or a Hugging Face download; writing one back out.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/train_config.h"
#include "losses/mlm_masking.h"
#include "models/bert/bert.h"
#include "tokenizers/wordpiece.h"

namespace attnzoo::apps {

struct BertRunConfig {
  std::string task = "pretrain";  // pretrain (MLM + NSP) | classify (fine-tuning)
  models::BertConfig model = models::bert_small();
  engine::TrainConfig train;
  losses::MlmMaskingOptions masking;  // pretrain
  std::string data;                   // pretrain: the prepared directory
  std::vector<std::string> labels;    // classify: the class names, by id
  std::string train_file, dev_file;   // classify: the TSV files
  int64_t max_seq_len = 128;          // classify: longer inputs are truncated
  std::string init_from;              // where the weights came from (hf:DIR or a run), for the record
};

// Pretraining defaults: BERT-small, BERT's optimiser (AdamW, beta2 0.999, weight decay 0.01,
// linear decay to 0 after warmup) at a learning rate for small models and CPU budgets.
BertRunConfig default_pretrain_config();
// Fine-tuning defaults (Devlin et al. §4 / appendix A.3): lr 2e-5, batch 32, warmup 10 %, linear decay.
BertRunConfig default_classify_config();

nlohmann::json to_json(const BertRunConfig& cfg);
// Applies {"task", "model", "train", "masking", "data", "labels", ...} on top of CFG, refusing
// unknown keys. Throws std::invalid_argument "SOURCE: ..." naming the key.
void apply_json(BertRunConfig& cfg, const nlohmann::json& j, const std::string& source);

struct LoadedBert {
  std::filesystem::path source;  // the checkpoint directory or the Hugging Face directory
  BertRunConfig config;
  tokenizers::WordPiece tokenizer{std::vector<std::string>{"[UNK]"}};
  models::BertForPreTraining pretraining = nullptr;             // task pretrain (and Hub files without a classifier)
  models::BertForSequenceClassification classifier = nullptr;  // task classify
  bool has_mlm_head = true;  // false for a Hub BertModel / classifier file: cls.predictions is random
  bool has_nsp_head = true;
};

// A run's checkpoint WHICH (best | latest | step-N), in eval mode on DEVICE.
LoadedBert load_run(const std::filesystem::path& run, const std::string& which, torch::Device device);
// --init-from hf:DIR -> DIR; throws std::invalid_argument for any other form.
std::filesystem::path hf_dir_of(const std::string& init_from);
// A Hugging Face BERT download (config.json, model.safetensors, vocab.txt; weights/hf_bert.h) as a
// pretraining model, or as a classifier when the file has one. Heads the file lacks are left as
// initialised and reported in has_*_head. Throws naming the file at fault (a vocab.txt without
// BERT's special tokens or larger than the model's vocabulary included).
LoadedBert load_hf(const std::filesystem::path& dir, torch::Device device);
// --run RUN or --init-from hf:DIR (exactly one).
LoadedBert load_model(const std::string& run, const std::string& init_from, const std::string& which,
                      torch::Device device);

// Writes MODEL as a Hugging Face directory OUT: config.json, model.safetensors, vocab.txt,
// tokenizer_config.json (BertForPreTraining, or BertForSequenceClassification with id2label).
// Atomic; a non-empty OUT needs FORCE.
void export_hf(const LoadedBert& model, const std::filesystem::path& out, bool force,
               torch::ScalarType dtype = torch::kFloat);

}  // namespace attnzoo::apps

// Hugging Face BERT checkpoints (bert-base-uncased and the like: BertForPreTraining, BertModel,
// BertForMaskedLM, BertForSequenceClassification) in and out of attnzoo's BERT
// (models/bert/bert.h). A Hub directory holds config.json (a BertConfig), model.safetensors and
// vocab.txt (tokenizer_config.json's do_lower_case, when present, says whether it is cased).
// Our module names are HF's, so the key map is short:
//
//   Hugging Face (file)                              attnzoo (state dict)
//   bert.X  or  X (BertModel files have no prefix)   bert.X   for X in embeddings.*, encoder.*, pooler.*
//   *.LayerNorm.gamma / *.LayerNorm.beta             *.LayerNorm.weight / *.LayerNorm.bias  (older files)
//   [bert.]embeddings.position_ids                   (a buffer of 0..max_position_embeddings-1: dropped)
//   cls.predictions.decoder.weight                   (must equal word_embeddings: our decoder is tied; dropped)
//   cls.predictions.decoder.bias                     (must equal cls.predictions.bias; dropped)
//   cls.predictions.*, cls.seq_relationship.*        the same
//   classifier.weight / classifier.bias              the same (BertForSequenceClassification)
//
// Heads a file does not have are reported, not invented: a BertModel file has no cls.*, a
// BertForMaskedLM file no pooler and no cls.seq_relationship. A head that is there only in part is
// an error. Export writes what BertForPreTraining (or BertForSequenceClassification)
// .save_pretrained writes with safetensors: every encoder key under bert., current LayerNorm
// names, no tied decoder, no position_ids.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/bert/bert.h"
#include "weights/safetensors.h"

namespace attnzoo::weights {

// BertConfig JSON -> ours. Missing fields take BertConfig's defaults (as transformers does);
// hidden_act gelu -> gelu, gelu_new / gelu_pytorch_tanh / gelu_fast -> gelu_tanh, relu -> relu.
// Refused, naming the field: model_type other than bert, position_embedding_type other than
// absolute, is_decoder or add_cross_attention true, a field of the wrong type. Dropouts are kept.
// Throws std::runtime_error "SOURCE: FIELD: ...".
models::BertConfig bert_config_from_hf(const nlohmann::json& j, const std::string& source);
// Ours -> the BertConfig that save_pretrained writes, with ARCHITECTURE ("BertForPreTraining" or
// "BertForSequenceClassification") and, for a classifier, id2label / label2id from LABELS.
nlohmann::json bert_config_to_hf(const models::BertConfig& cfg, const std::string& architecture = "BertForPreTraining",
                                 const std::vector<std::string>& labels = {});

struct HfBertWeights {
  TensorMap tensors;          // our keys: bert.*, and cls.* / classifier.* when the file has them
  bool has_pooler = false;    // bert.pooler.dense.*
  bool has_mlm_head = false;  // cls.predictions.* (fill-mask, MLM)
  bool has_nsp_head = false;  // cls.seq_relationship.*
  int64_t num_labels = 0;     // rows of classifier.weight; 0 without a classifier
};

// A Hugging Face BERT state dict -> ours for CFG (see the table). Tensors keep their dtype.
// Throws std::runtime_error "SOURCE: ..." listing unknown keys, missing keys (of the encoder, or
// of a head present in part) and shape mismatches, or a decoder that is not tied.
HfBertWeights import_hf_bert(const TensorMap& hf, const models::BertConfig& cfg, const std::string& source);
// Ours -> Hugging Face's keys. Throws std::runtime_error naming any key that is not a BERT weight
// of CFG or has another shape.
TensorMap export_hf_bert(const TensorMap& ours, const models::BertConfig& cfg);

struct HfBert {
  models::BertConfig config;
  HfBertWeights weights;
  std::vector<std::string> labels;  // id2label of a classifier's config.json, by id; empty otherwise
  bool lowercase = true;            // tokenizer_config.json's do_lower_case (true when absent)
};
// Reads DIR/config.json, DIR/model.safetensors (and DIR/tokenizer_config.json when present).
// Errors name the file (and the key).
HfBert load_hf_bert_dir(const std::filesystem::path& dir);
// Writes DIR/config.json + DIR/model.safetensors (+ what EXTRA writes into the directory it is
// given, e.g. vocab.txt), atomically; a non-empty DIR is replaced only with FORCE. LABELS non-empty
// writes a BertForSequenceClassification (OURS must then hold classifier.*).
void save_hf_bert_dir(const std::filesystem::path& dir, const models::BertConfig& cfg, const TensorMap& ours,
                      const std::vector<std::string>& labels, bool force,
                      const std::function<void(const std::filesystem::path&)>& extra = {});

}  // namespace attnzoo::weights

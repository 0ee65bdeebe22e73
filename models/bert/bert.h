// BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
// Understanding"): token + segment + position embeddings, a post-LN Transformer encoder, a pooler
// (tanh on [CLS]), and the two pretraining heads, masked language modelling (MLM) and next-sentence
// prediction (NSP); plus a sequence classifier on the pooled output for fine-tuning.
//
// Laid out as Hugging Face's BertForPreTraining / BertForSequenceClassification, so module names
// are checkpoint keys:
//   bert.embeddings.{word,position,token_type}_embeddings, bert.embeddings.LayerNorm
//   bert.encoder.layer.N.attention.self.{query,key,value}
//   bert.encoder.layer.N.attention.output.{dense,LayerNorm}
//   bert.encoder.layer.N.intermediate.dense, bert.encoder.layer.N.output.{dense,LayerNorm}
//   bert.pooler.dense
//   cls.predictions.transform.{dense,LayerNorm}, cls.predictions.bias, cls.seq_relationship
//   classifier (BertForSequenceClassification)
// The MLM decoder is tied to the word embeddings: HF's cls.predictions.decoder.weight (and its
// decoder.bias, which is cls.predictions.bias) are not separate tensors here, as GPT's head is not.
// Weight layouts are torch's, as HF's; import/export of Hub files is in weights/hf_bert.h.
//
// Shape letters: B batch, T sequence length, C hidden_size, H heads, D = C / H head size,
// I intermediate_size, V vocabulary, M masked positions scored by the MLM head, L labels.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/layers.h"

namespace attnzoo::models {

// Field names are Hugging Face BertConfig's; defaults are bert-base-uncased.
struct BertConfig {
  int64_t vocab_size = 30522;               // V
  int64_t hidden_size = 768;                // C
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;         // H
  int64_t intermediate_size = 3072;         // I
  std::string hidden_act = "gelu";          // "gelu" (exact, BERT's), "gelu_tanh", "relu"
  double hidden_dropout_prob = 0.1;         // embeddings and every residual branch (and the classifier)
  double attention_probs_dropout_prob = 0.1;  // on the attention weights
  int64_t max_position_embeddings = 512;    // longest sequence T
  int64_t type_vocab_size = 2;              // segments A and B
  double layer_norm_eps = 1e-12;
  double initializer_range = 0.02;          // std of the normal initialisation

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BertConfig, vocab_size, hidden_size, num_hidden_layers,
                                                num_attention_heads, intermediate_size, hidden_act,
                                                hidden_dropout_prob, attention_probs_dropout_prob,
                                                max_position_embeddings, type_vocab_size, layer_norm_eps,
                                                initializer_range)

// Presets. Name lookup: "tiny", "small", "base", "large".
BertConfig bert_tiny();   // 2 layers × 32 hidden, 2 heads, 64 positions, vocab 100: tests
BertConfig bert_small();  // 4 layers × 256 hidden, 4 heads, intermediate 1024 (Turc et al. 2019's BERT-Small)
BertConfig bert_base();   // 12 × 768, 12 heads (110M)
BertConfig bert_large();  // 24 × 1024, 16 heads (340M)
BertConfig bert_preset(const std::string& name);

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertConfig& cfg);
  // input_ids, token_type_ids: (B, T) -> (B, T, C); positions are 0 .. T-1.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);

  torch::nn::Embedding word_embeddings = nullptr;        // (V, C), also the MLM decoder
  torch::nn::Embedding position_embeddings = nullptr;    // (max_position_embeddings, C)
  torch::nn::Embedding token_type_embeddings = nullptr;  // (type_vocab_size, C)
  models::LayerNorm LayerNorm = nullptr;
  torch::nn::Dropout dropout = nullptr;
};
TORCH_MODULE(BertEmbeddings);

// Multi-head self-attention's projections; the attention itself is models/common/attention.h.
class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const BertConfig& cfg);
  // x (B, T, C), key_padding (B, T) bool, true = padding, or undefined -> the heads concatenated (B, T, C).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding);

  torch::nn::Linear query = nullptr;  // C -> C
  torch::nn::Linear key = nullptr;    // C -> C
  torch::nn::Linear value = nullptr;  // C -> C
  int64_t num_heads;
  double dropout;
};
TORCH_MODULE(BertSelfAttention);

// LayerNorm(residual + dropout(dense(x))): HF's BertSelfOutput (in = C) and BertOutput (in = I).
class BertResidualOutputImpl : public torch::nn::Module {
 public:
  BertResidualOutputImpl(const BertConfig& cfg, int64_t in);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Linear dense = nullptr;  // in -> C
  models::LayerNorm LayerNorm = nullptr;
  torch::nn::Dropout dropout = nullptr;
};
TORCH_MODULE(BertResidualOutput);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const BertConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding);

  BertSelfAttention self = nullptr;
  BertResidualOutput output = nullptr;  // C -> C
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const BertConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> act(dense(x)) (B, T, I)

  torch::nn::Linear dense = nullptr;  // C -> I
  std::string act;
};
TORCH_MODULE(BertIntermediate);

// One post-LN encoder layer: x = LN(x + Attn(x)); x = LN(x + FFN(x)).
class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding);

  BertAttention attention = nullptr;
  BertIntermediate intermediate = nullptr;
  BertResidualOutput output = nullptr;  // I -> C
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const BertConfig& cfg);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& key_padding);

  torch::nn::ModuleList layer = nullptr;  // num_hidden_layers BertLayers
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const BertConfig& cfg);
  torch::Tensor forward(const torch::Tensor& sequence_output);  // (B, T, C) -> tanh(dense(x[:, 0])) (B, C)

  torch::nn::Linear dense = nullptr;  // C -> C
};
TORCH_MODULE(BertPooler);

struct BertModelOutput {
  torch::Tensor sequence_output;  // (B, T, C): the last layer's hidden states
  torch::Tensor pooled_output;    // (B, C): the pooler on [CLS]
};

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertConfig& cfg);
  // input_ids (B, T); token_type_ids (B, T) or undefined (all segment A); attention_mask (B, T),
  // 1 (or true) for real tokens, 0 for padding, or undefined (no padding). Padding is never
  // attended to; its own outputs are unspecified.
  BertModelOutput forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                          const torch::Tensor& attention_mask = {});

  BertConfig cfg;
  BertEmbeddings embeddings = nullptr;
  BertEncoder encoder = nullptr;
  BertPooler pooler = nullptr;
};
TORCH_MODULE(BertModel);

class BertPredictionHeadTransformImpl : public torch::nn::Module {
 public:
  explicit BertPredictionHeadTransformImpl(const BertConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // LN(act(dense(x))), (..., C) -> (..., C)

  torch::nn::Linear dense = nullptr;  // C -> C
  models::LayerNorm LayerNorm = nullptr;
  std::string act;
};
TORCH_MODULE(BertPredictionHeadTransform);

// The MLM head: transform, then the decoder tied to the word embeddings, plus a bias of its own.
class BertLMPredictionHeadImpl : public torch::nn::Module {
 public:
  explicit BertLMPredictionHeadImpl(const BertConfig& cfg);
  // x (..., C), word_embeddings (V, C) -> logits (..., V)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& word_embeddings);

  BertPredictionHeadTransform transform = nullptr;
  torch::Tensor bias;  // (V) = 0
};
TORCH_MODULE(BertLMPredictionHead);

class BertPreTrainingHeadsImpl : public torch::nn::Module {
 public:
  explicit BertPreTrainingHeadsImpl(const BertConfig& cfg);

  BertLMPredictionHead predictions = nullptr;
  torch::nn::Linear seq_relationship = nullptr;  // C -> 2
};
TORCH_MODULE(BertPreTrainingHeads);

struct BertPreTrainingOutput {
  torch::Tensor prediction_logits;        // (B, T, V), or (M, V) for the positions in mlm_positions
  torch::Tensor seq_relationship_logits;  // (B, 2): class 0 = B follows A, 1 = B is random (HF's labels)
};

class BertForPreTrainingImpl : public torch::nn::Module {
 public:
  explicit BertForPreTrainingImpl(BertConfig cfg);

  // As BertModel::forward. mlm_positions, a bool (B, T) mask, restricts the MLM head to the M
  // positions where it is true (row-major order), the standard saving of BERT's pretraining code:
  // the transform and the (·, V) decoder run on M rows instead of B·T.
  BertPreTrainingOutput forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                                const torch::Tensor& attention_mask = {}, const torch::Tensor& mlm_positions = {});

  // Every parameter (the tied decoder once).
  int64_t num_parameters() const;
  const BertConfig& config() const { return cfg; }

  BertConfig cfg;
  BertModel bert = nullptr;
  BertPreTrainingHeads cls = nullptr;
};
TORCH_MODULE(BertForPreTraining);

class BertForSequenceClassificationImpl : public torch::nn::Module {
 public:
  BertForSequenceClassificationImpl(BertConfig cfg, int64_t num_labels);
  // As BertModel::forward -> logits (B, L) from dropout(pooled_output).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                        const torch::Tensor& attention_mask = {});

  const BertConfig& config() const { return cfg; }

  BertConfig cfg;
  int64_t num_labels;
  BertModel bert = nullptr;
  torch::nn::Dropout dropout = nullptr;
  torch::nn::Linear classifier = nullptr;  // C -> L
};
TORCH_MODULE(BertForSequenceClassification);

// HF's _init_weights: Linear and Embedding weights N(0, initializer_range), biases 0, LayerNorm 1 and 0.
void init_bert_weights(torch::nn::Module& module, double initializer_range);

}  // namespace attnzoo::models

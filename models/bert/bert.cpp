#include "models/bert/bert.h"

#include <stdexcept>

#include "models/common/attention.h"

namespace attnzoo::models {
namespace {

torch::nn::Linear make_linear(int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out)); }

}  // namespace

void BertConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(intermediate_size, "intermediate_size");
  positive(max_position_embeddings, "max_position_embeddings");
  positive(type_vocab_size, "type_vocab_size");
  if (hidden_size % num_attention_heads != 0)
    throw std::invalid_argument("hidden_size (" + std::to_string(hidden_size) +
                                ") must be divisible by num_attention_heads (" + std::to_string(num_attention_heads) +
                                ")");
  auto probability = [](double p, const char* name) {
    if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument(std::string(name) + " must be in [0, 1), got " + std::to_string(p));
  };
  probability(hidden_dropout_prob, "hidden_dropout_prob");
  probability(attention_probs_dropout_prob, "attention_probs_dropout_prob");
  if (!(layer_norm_eps > 0.0)) throw std::invalid_argument("layer_norm_eps must be positive, got " + std::to_string(layer_norm_eps));
  if (!(initializer_range > 0.0))
    throw std::invalid_argument("initializer_range must be positive, got " + std::to_string(initializer_range));
  try {
    check_activation(hidden_act);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("hidden_act: ") + e.what());
  }
}

BertConfig bert_tiny() {
  return {.vocab_size = 100, .hidden_size = 32, .num_hidden_layers = 2, .num_attention_heads = 2,
          .intermediate_size = 64, .max_position_embeddings = 64};
}

BertConfig bert_small() {
  return {.vocab_size = 30522, .hidden_size = 256, .num_hidden_layers = 4, .num_attention_heads = 4,
          .intermediate_size = 1024};
}

BertConfig bert_base() { return {}; }

BertConfig bert_large() {
  return {.vocab_size = 30522, .hidden_size = 1024, .num_hidden_layers = 24, .num_attention_heads = 16,
          .intermediate_size = 4096};
}

BertConfig bert_preset(const std::string& name) {
  if (name == "tiny") return bert_tiny();
  if (name == "small") return bert_small();
  if (name == "base") return bert_base();
  if (name == "large") return bert_large();
  throw std::invalid_argument("unknown BERT preset '" + name + "' (expected tiny, small, base or large)");
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& cfg) {
  const int64_t C = cfg.hidden_size;
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(cfg.vocab_size, C));
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(cfg.max_position_embeddings, C));
  token_type_embeddings = register_module("token_type_embeddings", torch::nn::Embedding(cfg.type_vocab_size, C));
  LayerNorm = register_module("LayerNorm", models::LayerNorm(C, true, cfg.layer_norm_eps));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.hidden_dropout_prob));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids) {
  const int64_t T = input_ids.size(1);
  TORCH_CHECK(T <= position_embeddings->weight.size(0), "BERT: a sequence of ", T, " tokens is longer than the ",
              position_embeddings->weight.size(0), " positions of the model (max_position_embeddings)");
  // Positions 0..T-1 are a slice of the table: the same values as a lookup, with a cheaper backward.
  auto x = word_embeddings(input_ids) + position_embeddings->weight.narrow(0, 0, T);  // (B, T, C)
  x = token_type_ids.defined() ? x + token_type_embeddings(token_type_ids)
                               : x + token_type_embeddings->weight[0];  // all segment A
  return dropout(LayerNorm(x));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& cfg)
    : num_heads(cfg.num_attention_heads), dropout(cfg.attention_probs_dropout_prob) {
  const int64_t C = cfg.hidden_size;
  query = register_module("query", make_linear(C, C));
  key = register_module("key", make_linear(C, C));
  value = register_module("value", make_linear(C, C));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = num_heads, D = C / H;
  // (B, T, C) -> (B, T, H, D) -> (B, H, T, D), views
  auto heads = [&](const torch::nn::Linear& proj) { return linear(proj, x).view({B, T, H, D}).transpose(1, 2); };
  AttentionOptions opt{.key_padding_mask = key_padding, .dropout = dropout, .training = is_training()};
  auto att = scaled_dot_product_attention(heads(query), heads(key), heads(value), opt);
  return att.out.transpose(1, 2).reshape({B, T, C});  // (B, H, T, D) -> (B, T, C)
}

BertResidualOutputImpl::BertResidualOutputImpl(const BertConfig& cfg, int64_t in) {
  dense = register_module("dense", make_linear(in, cfg.hidden_size));
  LayerNorm = register_module("LayerNorm", models::LayerNorm(cfg.hidden_size, true, cfg.layer_norm_eps));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.hidden_dropout_prob));
}

torch::Tensor BertResidualOutputImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  return LayerNorm(dropout(linear(dense, x)) + residual);
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& cfg) {
  self = register_module("self", BertSelfAttention(cfg));
  output = register_module("output", BertResidualOutput(cfg, cfg.hidden_size));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding) {
  return output(self(x, key_padding), x);
}

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& cfg) : act(cfg.hidden_act) {
  dense = register_module("dense", make_linear(cfg.hidden_size, cfg.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) { return linear_activation(dense, x, act); }

BertLayerImpl::BertLayerImpl(const BertConfig& cfg) {
  attention = register_module("attention", BertAttention(cfg));
  intermediate = register_module("intermediate", BertIntermediate(cfg));
  output = register_module("output", BertResidualOutput(cfg, cfg.intermediate_size));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x_in, const torch::Tensor& key_padding) {
  auto x = attention(x_in, key_padding);
  return output(intermediate(x), x);
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& cfg) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) layer->push_back(BertLayer(cfg));
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor x, const torch::Tensor& key_padding) {
  for (const auto& l : *layer) x = l->as<BertLayer>()->forward(x, key_padding);
  return x;
}

BertPoolerImpl::BertPoolerImpl(const BertConfig& cfg) {
  dense = register_module("dense", make_linear(cfg.hidden_size, cfg.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& sequence_output) {
  return torch::tanh(linear(dense, sequence_output.select(1, 0)));  // [CLS]: (B, C)
}

BertModelImpl::BertModelImpl(const BertConfig& c) : cfg(c) {
  cfg.validate();
  embeddings = register_module("embeddings", BertEmbeddings(cfg));
  encoder = register_module("encoder", BertEncoder(cfg));
  pooler = register_module("pooler", BertPooler(cfg));
}

BertModelOutput BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                       const torch::Tensor& attention_mask) {
  TORCH_CHECK(input_ids.dim() == 2, "BERT expects (B, T) token ids, got shape ", input_ids.sizes());
  TORCH_CHECK(!token_type_ids.defined() || token_type_ids.sizes() == input_ids.sizes(),
              "BERT: token_type_ids ", token_type_ids.sizes(), " must have the shape of input_ids ", input_ids.sizes());
  TORCH_CHECK(!attention_mask.defined() || attention_mask.sizes() == input_ids.sizes(),
              "BERT: attention_mask ", attention_mask.sizes(), " must have the shape of input_ids ", input_ids.sizes());
  // (B, T) bool, true = padding; left undefined when nothing is padded, so attention runs unmasked.
  torch::Tensor key_padding;
  if (attention_mask.defined()) {
    key_padding = attention_mask.to(input_ids.device()) == 0;
    if (!key_padding.any().item<bool>()) key_padding = torch::Tensor();
  }
  auto x = encoder(embeddings(input_ids, token_type_ids), key_padding);  // (B, T, C)
  return {x, pooler(x)};
}

BertPredictionHeadTransformImpl::BertPredictionHeadTransformImpl(const BertConfig& cfg) : act(cfg.hidden_act) {
  dense = register_module("dense", make_linear(cfg.hidden_size, cfg.hidden_size));
  LayerNorm = register_module("LayerNorm", models::LayerNorm(cfg.hidden_size, true, cfg.layer_norm_eps));
}

torch::Tensor BertPredictionHeadTransformImpl::forward(const torch::Tensor& x) {
  return LayerNorm(activation(linear(dense, x), act));
}

BertLMPredictionHeadImpl::BertLMPredictionHeadImpl(const BertConfig& cfg) {
  transform = register_module("transform", BertPredictionHeadTransform(cfg));
  bias = register_parameter("bias", torch::zeros({cfg.vocab_size}));
}

torch::Tensor BertLMPredictionHeadImpl::forward(const torch::Tensor& x, const torch::Tensor& word_embeddings) {
  return linear(transform(x), word_embeddings, bias);
}

BertPreTrainingHeadsImpl::BertPreTrainingHeadsImpl(const BertConfig& cfg) {
  predictions = register_module("predictions", BertLMPredictionHead(cfg));
  seq_relationship = register_module("seq_relationship", make_linear(cfg.hidden_size, 2));
}

BertForPreTrainingImpl::BertForPreTrainingImpl(BertConfig c) : cfg(std::move(c)) {
  cfg.validate();
  bert = register_module("bert", BertModel(cfg));
  cls = register_module("cls", BertPreTrainingHeads(cfg));
  init_bert_weights(*this, cfg.initializer_range);
}

BertPreTrainingOutput BertForPreTrainingImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                                      const torch::Tensor& attention_mask,
                                                      const torch::Tensor& mlm_positions) {
  auto out = bert(input_ids, token_type_ids, attention_mask);
  auto h = out.sequence_output;  // (B, T, C)
  if (mlm_positions.defined()) {
    TORCH_CHECK(mlm_positions.scalar_type() == torch::kBool && mlm_positions.sizes() == input_ids.sizes(),
                "BERT: mlm_positions must be a bool mask of the shape of input_ids ", input_ids.sizes(), ", got ",
                mlm_positions.scalar_type(), " ", mlm_positions.sizes());
    const int64_t C = h.size(2);
    auto rows = mlm_positions.to(h.device()).reshape({-1}).nonzero().squeeze(1);  // (M) indices into B·T
    h = h.reshape({-1, C}).index_select(0, rows);                               // (M, C)
  }
  const auto& wte = bert->embeddings->word_embeddings->weight;
  return {cls->predictions->forward(h, wte), linear(cls->seq_relationship, out.pooled_output)};
}

int64_t BertForPreTrainingImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(BertConfig c, int64_t labels)
    : cfg(std::move(c)), num_labels(labels) {
  cfg.validate();
  if (num_labels < 1) throw std::invalid_argument("num_labels must be positive, got " + std::to_string(num_labels));
  bert = register_module("bert", BertModel(cfg));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.hidden_dropout_prob));
  classifier = register_module("classifier", make_linear(cfg.hidden_size, num_labels));
  init_bert_weights(*this, cfg.initializer_range);
}

torch::Tensor BertForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                         const torch::Tensor& token_type_ids,
                                                         const torch::Tensor& attention_mask) {
  return linear(classifier, dropout(bert(input_ids, token_type_ids, attention_mask).pooled_output));  // (B, L)
}

void init_bert_weights(torch::nn::Module& module, double std) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* l = m->as<torch::nn::Linear>()) {
      l->weight.normal_(0.0, std);
      if (l->bias.defined()) l->bias.zero_();
    } else if (auto* e = m->as<torch::nn::Embedding>()) {
      e->weight.normal_(0.0, std);
    }
    // LayerNorm: ones and zeros from its constructor; cls.predictions.bias: zeros.
  }
}

}  // namespace attnzoo::models

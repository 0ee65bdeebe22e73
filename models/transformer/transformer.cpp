#include "models/transformer/transformer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/common/positional.h"

namespace attnzoo::models {

void TransformerConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(src_vocab_size, "src_vocab_size");
  positive(tgt_vocab_size, "tgt_vocab_size");
  positive(d_model, "d_model");
  positive(n_head, "n_head");
  positive(num_encoder_layers, "num_encoder_layers");
  positive(num_decoder_layers, "num_decoder_layers");
  positive(d_ff, "d_ff");
  if (d_model % n_head != 0)
    throw std::invalid_argument("d_model (" + std::to_string(d_model) + ") must be divisible by n_head (" +
                                std::to_string(n_head) + ")");
  if (d_model % 2 != 0)
    throw std::invalid_argument("d_model must be even for the sinusoidal encoding, got " + std::to_string(d_model));
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(dropout));
  if (share_embeddings && src_vocab_size != tgt_vocab_size)
    throw std::invalid_argument("share_embeddings needs src_vocab_size == tgt_vocab_size, got " +
                                std::to_string(src_vocab_size) + " and " + std::to_string(tgt_vocab_size) +
                                " (hint: set share_embeddings = false)");
  for (auto [id, name] : {std::pair{pad_id, "pad_id"}, {bos_id, "bos_id"}, {eos_id, "eos_id"}})
    if (id < 0 || id >= std::min(src_vocab_size, tgt_vocab_size))
      throw std::invalid_argument(std::string(name) + " must lie in [0, vocabulary size), got " +
                                  std::to_string(id));
  check_activation(activation);
}

TransformerConfig transformer_base(int64_t vocab_size) {
  return {.src_vocab_size = vocab_size, .tgt_vocab_size = vocab_size};
}

TransformerConfig transformer_tiny(int64_t vocab_size) {
  return {.src_vocab_size = vocab_size, .tgt_vocab_size = vocab_size, .d_model = 32, .n_head = 4,
          .num_encoder_layers = 2, .num_decoder_layers = 2, .d_ff = 64, .dropout = 0.0};
}

namespace {

MultiheadAttentionConfig attention_config(const TransformerConfig& cfg) {
  return {.embed_dim = cfg.d_model, .num_heads = cfg.n_head, .dropout = cfg.dropout};
}

}  // namespace

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(const TransformerConfig& cfg)
    : pre_norm(cfg.pre_norm), act(cfg.activation) {
  self_attn = register_module("self_attn", MultiheadAttention(attention_config(cfg)));
  linear1 = register_module("linear1", torch::nn::Linear(cfg.d_model, cfg.d_ff));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.dropout));
  linear2 = register_module("linear2", torch::nn::Linear(cfg.d_ff, cfg.d_model));
  norm1 = register_module("norm1", LayerNorm(cfg.d_model));
  norm2 = register_module("norm2", LayerNorm(cfg.d_model));
  dropout1 = register_module("dropout1", torch::nn::Dropout(cfg.dropout));
  dropout2 = register_module("dropout2", torch::nn::Dropout(cfg.dropout));
}

torch::Tensor TransformerEncoderLayerImpl::forward(const torch::Tensor& x_in, const torch::Tensor& padding) {
  auto attend = [&](const torch::Tensor& x) {
    return dropout1(self_attn->self_attention(x, {.key_padding_mask = padding}).out);
  };
  auto feed_forward = [&](const torch::Tensor& x) {
    return dropout2(linear(linear2, dropout(linear_activation(linear1, x, act))));
  };
  auto x = x_in;
  if (pre_norm) {
    x = x + attend(norm1(x));
    x = x + feed_forward(norm2(x));
  } else {
    x = norm1(x + attend(x));
    x = norm2(x + feed_forward(x));
  }
  return x;
}

TransformerDecoderLayerImpl::TransformerDecoderLayerImpl(const TransformerConfig& cfg)
    : pre_norm(cfg.pre_norm), act(cfg.activation) {
  self_attn = register_module("self_attn", MultiheadAttention(attention_config(cfg)));
  multihead_attn = register_module("multihead_attn", MultiheadAttention(attention_config(cfg)));
  linear1 = register_module("linear1", torch::nn::Linear(cfg.d_model, cfg.d_ff));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.dropout));
  linear2 = register_module("linear2", torch::nn::Linear(cfg.d_ff, cfg.d_model));
  norm1 = register_module("norm1", LayerNorm(cfg.d_model));
  norm2 = register_module("norm2", LayerNorm(cfg.d_model));
  norm3 = register_module("norm3", LayerNorm(cfg.d_model));
  dropout1 = register_module("dropout1", torch::nn::Dropout(cfg.dropout));
  dropout2 = register_module("dropout2", torch::nn::Dropout(cfg.dropout));
  dropout3 = register_module("dropout3", torch::nn::Dropout(cfg.dropout));
}

DecoderLayerOutput TransformerDecoderLayerImpl::forward(const torch::Tensor& x_in, const torch::Tensor& memory,
                                                        const torch::Tensor& memory_padding, bool need_weights,
                                                        DecoderLayerCache* cache) {
  torch::Tensor cross_weights;
  auto attend_self = [&](const torch::Tensor& x) {
    return dropout1(self_attn->self_attention(x, {.causal = true}, cache ? &cache->self_attn : nullptr).out);
  };
  auto attend_memory = [&](const torch::Tensor& x) {
    auto a = multihead_attn->cross_attention(x, memory, {.key_padding_mask = memory_padding,
                                                         .need_weights = need_weights},
                                             cache ? &cache->cross_attn : nullptr);
    cross_weights = a.weights;
    return dropout2(a.out);
  };
  auto feed_forward = [&](const torch::Tensor& x) {
    return dropout3(linear(linear2, dropout(linear_activation(linear1, x, act))));
  };
  auto x = x_in;
  if (pre_norm) {
    x = x + attend_self(norm1(x));
    x = x + attend_memory(norm2(x));
    x = x + feed_forward(norm3(x));
  } else {
    x = norm1(x + attend_self(x));
    x = norm2(x + attend_memory(x));
    x = norm3(x + feed_forward(x));
  }
  return {x, cross_weights};
}

TransformerEncoderImpl::TransformerEncoderImpl(const TransformerConfig& cfg) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_encoder_layers; ++i) layers->push_back(TransformerEncoderLayer(cfg));
  if (cfg.pre_norm) norm = register_module("norm", LayerNorm(cfg.d_model));
}

torch::Tensor TransformerEncoderImpl::forward(const torch::Tensor& x_in, const torch::Tensor& padding) {
  auto x = x_in;
  for (const auto& layer : *layers) x = layer->as<TransformerEncoderLayer>()->forward(x, padding);
  return norm ? norm(x) : x;
}

TransformerDecoderImpl::TransformerDecoderImpl(const TransformerConfig& cfg) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_decoder_layers; ++i) layers->push_back(TransformerDecoderLayer(cfg));
  if (cfg.pre_norm) norm = register_module("norm", LayerNorm(cfg.d_model));
}

TransformerDecoderOutput TransformerDecoderImpl::forward(const torch::Tensor& x_in, const torch::Tensor& memory,
                                                         const torch::Tensor& memory_padding, bool need_weights,
                                                         std::vector<DecoderLayerCache>* caches) {
  TORCH_CHECK(!caches || caches->size() == layers->size(), "expected one decoder cache per layer (",
              layers->size(), "), got ", caches ? caches->size() : 0);
  TransformerDecoderOutput o{x_in, {}};
  for (size_t i = 0; i < layers->size(); ++i) {
    auto y = layers[i]->as<TransformerDecoderLayer>()->forward(o.x, memory, memory_padding, need_weights,
                                                               caches ? &(*caches)[i] : nullptr);
    o.x = y.x;
    if (need_weights) o.cross_weights.push_back(y.cross_weights);
  }
  if (norm) o.x = norm(o.x);
  return o;
}

TransformerImpl::TransformerImpl(TransformerConfig cfg_) : cfg(std::move(cfg_)) {
  cfg.validate();
  // N(0, C^−0.5) so that the √C-scaled embeddings start at unit scale and the tied output
  // projection starts small (as fairseq).
  auto embedding = [this](int64_t vocab) {
    torch::nn::Embedding e(vocab, cfg.d_model);
    torch::NoGradGuard no_grad;
    e->weight.normal_(0.0, std::pow(static_cast<double>(cfg.d_model), -0.5));
    return e;
  };
  src_embed = register_module("src_embed", embedding(cfg.src_vocab_size));
  if (!cfg.share_embeddings) tgt_embed = register_module("tgt_embed", embedding(cfg.tgt_vocab_size));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.dropout));
  encoder = register_module("encoder", TransformerEncoder(cfg));
  decoder = register_module("decoder", TransformerDecoder(cfg));
  if (!cfg.tie_output)
    generator = register_module("generator", torch::nn::Linear(cfg.d_model, cfg.tgt_vocab_size));
}

torch::Tensor TransformerImpl::embed(torch::nn::Embedding table, const torch::Tensor& tokens,
                                     int64_t offset) {
  TORCH_CHECK(tokens.dim() == 2, "the Transformer expects tokens (B, T), got ", tokens.sizes());
  auto x = table(tokens) * std::sqrt(static_cast<double>(cfg.d_model));  // (B, T, C)
  auto pe = sinusoidal_encoding(tokens.size(1), cfg.d_model, offset, 10000.0, x.options());  // (T, C)
  return dropout(x + pe);
}

torch::Tensor TransformerImpl::encode(const torch::Tensor& src) {
  return encoder(embed(src_embed, src, 0), src == cfg.pad_id);  // (B, S, C)
}

TransformerOutput TransformerImpl::decode(const torch::Tensor& tgt_in, const torch::Tensor& memory,
                                          const torch::Tensor& src, bool need_weights,
                                          std::vector<DecoderLayerCache>* caches, int64_t offset) {
  TORCH_CHECK(memory.dim() == 3 && src.dim() == 2 && memory.size(0) == src.size(0) &&
                  memory.size(1) == src.size(1) && tgt_in.dim() == 2 && tgt_in.size(0) == src.size(0),
              "decode expects tgt_in (B, T), memory (B, S, C) and src (B, S) with one B and S, got ",
              tgt_in.sizes(), ", ", memory.sizes(), " and ", src.sizes());
  auto y = decoder(embed(target_embedding(), tgt_in, offset), memory, src == cfg.pad_id, need_weights, caches);
  auto logits = generator ? linear(generator, y.x) : torch::matmul(y.x, target_embedding()->weight.t());
  return {logits, std::move(y.cross_weights)};  // (B, T, V)
}

TransformerOutput TransformerImpl::forward(const torch::Tensor& src, const torch::Tensor& tgt_in,
                                           bool need_weights) {
  return decode(tgt_in, encode(src), src, need_weights);
}

TransformerDecoded TransformerImpl::greedy_decode(const torch::Tensor& src, int64_t max_len) {
  TORCH_CHECK(max_len > 0, "max_len must be positive, got ", max_len);
  torch::NoGradGuard no_grad;
  const int64_t B = src.size(0);
  auto memory = encode(src);
  std::vector<DecoderLayerCache> caches(cfg.num_decoder_layers);
  auto y = torch::full({B, 1}, cfg.bos_id, src.options().dtype(torch::kLong));
  auto done = torch::zeros({B}, src.options().dtype(torch::kBool));
  std::vector<torch::Tensor> tokens, weights;
  for (int64_t t = 0; t < max_len; ++t) {
    auto out = decode(y, memory, src, /*need_weights=*/true, &caches, t);
    auto next = out.logits.select(1, 0).argmax(-1);  // (B)
    next = next.masked_fill(done, cfg.pad_id);
    done = done | (next == cfg.eos_id);
    tokens.push_back(next);
    weights.push_back(out.cross_attention.back());  // (B, H, 1, S)
    y = next.unsqueeze(1);
    if (done.all().item<bool>()) break;
  }
  auto toks = torch::stack(tokens, 1);  // (B, steps)
  auto att = torch::cat(weights, 2);    // (B, H, steps, S)
  const int64_t steps = toks.size(1);
  if (steps < max_len) {
    toks = torch::cat({toks, torch::full({B, max_len - steps}, cfg.pad_id, toks.options())}, 1);
    att = torch::cat({att, torch::zeros({B, att.size(1), max_len - steps, att.size(3)}, att.options())}, 2);
  }
  return {toks, att};
}

double transformer_learning_rate(int64_t step, int64_t d_model, int64_t warmup, double scale) {
  if (d_model <= 0 || warmup <= 0)
    throw std::invalid_argument("transformer_learning_rate needs d_model > 0 and warmup > 0, got " +
                                std::to_string(d_model) + " and " + std::to_string(warmup));
  if (step <= 0) return 0.0;
  const double s = static_cast<double>(step), w = static_cast<double>(warmup);
  return scale * std::pow(static_cast<double>(d_model), -0.5) * std::min(std::pow(s, -0.5), s * std::pow(w, -1.5));
}

}  // namespace attnzoo::models

#include "models/transformer/encoder_classifier.h"

#include <cmath>
#include <stdexcept>

namespace attnzoo::models {

void EncoderClassifierConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("EncoderClassifierConfig: " + what);
  };
  require(vocab_size > 0, "vocab_size must be > 0, got " + std::to_string(vocab_size));
  require(num_classes > 0, "num_classes must be > 0, got " + std::to_string(num_classes));
  require(d_model > 0 && n_head > 0 && d_model % n_head == 0,
          "n_head must divide d_model, got " + std::to_string(n_head) + " and " + std::to_string(d_model));
  require(positions != "sinusoidal" || d_model % 2 == 0, "sinusoidal positions need an even d_model, got " +
                                                             std::to_string(d_model));
  require(num_layers > 0, "num_layers must be > 0, got " + std::to_string(num_layers));
  require(d_ff > 0, "d_ff must be > 0, got " + std::to_string(d_ff));
  require(max_len > 0, "max_len must be > 0, got " + std::to_string(max_len));
  require(dropout >= 0.0 && dropout < 1.0, "dropout must be in [0, 1), got " + std::to_string(dropout));
  require(positions == "learned" || positions == "sinusoidal",
          "positions must be learned or sinusoidal, got '" + positions + "'");
  require(readout == "last" || readout == "first", "readout must be last or first, got '" + readout + "'");
  require(attention == "global" || attention == "causal" || attention == "local",
          "attention must be global, causal or local, got '" + attention + "'");
  require(attention != "local" || window >= 0, "window must be >= 0 for local attention, got " + std::to_string(window));
}

EncoderClassifierConfig encoder_classifier_tiny(int64_t vocab_size, int64_t num_classes) {
  return {.vocab_size = vocab_size, .num_classes = num_classes, .d_model = 16, .n_head = 2, .num_layers = 1,
          .d_ff = 32, .max_len = 64};
}

EncoderBlockImpl::EncoderBlockImpl(const EncoderClassifierConfig& cfg) {
  ln_1 = register_module("ln_1", LayerNorm(cfg.d_model));
  attn = register_module("attn", MultiheadAttention(MultiheadAttentionConfig{
                                     .embed_dim = cfg.d_model, .num_heads = cfg.n_head, .dropout = cfg.dropout}));
  ln_2 = register_module("ln_2", LayerNorm(cfg.d_model));
  c_fc = register_module("c_fc", torch::nn::Linear(cfg.d_model, cfg.d_ff));
  c_proj = register_module("c_proj", torch::nn::Linear(cfg.d_ff, cfg.d_model));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
}

EncoderBlockOutput EncoderBlockImpl::forward(const torch::Tensor& x_in, const AttentionOptions& opt) {
  auto a = attn->self_attention(ln_1(x_in), opt);
  auto x = x_in + drop(a.out);                                               // (B, T, C)
  x = x + drop(linear(c_proj, torch::gelu(linear(c_fc, ln_2(x)))));        // (B, T, C)
  return {x, a.weights};
}

EncoderClassifierImpl::EncoderClassifierImpl(EncoderClassifierConfig c) : cfg(std::move(c)) {
  cfg.validate();
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.d_model));
  if (cfg.positions == "learned") wpe = register_module("wpe", LearnedPositionalEmbedding(cfg.max_len, cfg.d_model));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_layers; ++i) h->push_back(EncoderBlock(cfg));
  ln_f = register_module("ln_f", LayerNorm(cfg.d_model));
  head = register_module("head", torch::nn::Linear(cfg.d_model, cfg.num_classes));
  torch::nn::init::normal_(wte->weight, 0.0, 0.02);
}

EncoderClassifierOutput EncoderClassifierImpl::forward(const torch::Tensor& tokens, const torch::Tensor& padding,
                                                       bool need_weights) {
  TORCH_CHECK(tokens.dim() == 2, "the encoder classifier expects tokens (B, T), got ", tokens.sizes());
  const int64_t B = tokens.size(0), T = tokens.size(1);
  TORCH_CHECK(T > 0, "the encoder classifier needs at least one token per sequence");
  TORCH_CHECK(cfg.positions != "learned" || T <= cfg.max_len, "sequence length ", T, " exceeds max_len ", cfg.max_len,
              " of the learned positions");
  TORCH_CHECK(!padding.defined() || (padding.sizes() == tokens.sizes() && padding.scalar_type() == torch::kBool),
              "expected a bool padding mask ", tokens.sizes(), ", got ", padding.scalar_type(), " ", padding.sizes());
  auto pos = wpe ? wpe(T, 0) : sinusoidal_encoding(T, cfg.d_model, 0, 10000.0, torch::TensorOptions().device(tokens.device()));
  auto x = drop(wte(tokens) + pos);  // (B, T, C)
  AttentionOptions opt{.causal = cfg.attention == "causal",
                       .window = cfg.attention == "local" ? cfg.window : -1,
                       .key_padding_mask = padding,
                       .need_weights = need_weights};
  EncoderClassifierOutput out;
  for (const auto& block : *h) {
    auto y = block->as<EncoderBlock>()->forward(x, opt);
    x = y.x;
    if (need_weights) out.attention.push_back(y.weights);
  }
  x = ln_f(x);
  torch::Tensor read;  // (B, C)
  if (cfg.readout == "first") {
    read = x.select(1, 0);
  } else if (padding.defined()) {
    auto last = (T - 1 - padding.logical_not().flip({1}).to(torch::kLong).argmax(1));  // (B) last unpadded index
    read = x.gather(1, last.view({B, 1, 1}).expand({B, 1, x.size(2)})).squeeze(1);
  } else {
    read = x.select(1, T - 1);
  }
  out.logits = linear(head, read);  // (B, K)
  return out;
}

}  // namespace attnzoo::models

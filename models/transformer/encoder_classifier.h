// A Transformer-encoder sequence classifier: token embedding + positions (learned or the fixed
// sinusoidal of Vaswani et al. 2017, §3.5), a stack of self-attention blocks, and a linear head on
// one position ("last": the final token, e.g. a query at the end; "first": a [CLS] token at the
// start, as BERT reads it). The blocks are pre-LN (Xiong et al. 2020; nanoGPT's
// x = x + attn(ln_1(x)), x = x + mlp(ln_2(x))) and take the masks of models/common/attention.h:
// full (global), causal, or local (a window of ±w positions), so one model shows global against
// local attention and returns the attention weights of every layer for plots.
// Used by apps/seq-lab (recall over distance N, near-vs-far answers, mask pictures).
//
// Shape letters: B batch, T positions, C d_model, H heads, K classes, V vocabulary.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/layers.h"
#include "models/common/multihead_attention.h"
#include "models/common/positional.h"

namespace attnzoo::models {

struct EncoderClassifierConfig {
  int64_t vocab_size = 16;            // V
  int64_t num_classes = 2;            // K
  int64_t d_model = 64;               // C
  int64_t n_head = 4;                 // H, divides C
  int64_t num_layers = 2;
  int64_t d_ff = 128;                 // feed-forward inner width
  int64_t max_len = 512;              // positions of the learned table
  double dropout = 0.0;               // on embeddings, attention weights and residual branches
  std::string positions = "learned";  // "learned" or "sinusoidal"
  std::string readout = "last";       // "last" or "first" position feeds the head
  std::string attention = "global";   // "global", "causal" or "local"
  int64_t window = 4;                 // local: ±window positions

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(EncoderClassifierConfig, vocab_size, num_classes, d_model, n_head,
                                                num_layers, d_ff, max_len, dropout, positions, readout, attention,
                                                window)

EncoderClassifierConfig encoder_classifier_tiny(int64_t vocab_size, int64_t num_classes);  // 1 × 16, 2 heads: tests

struct EncoderBlockOutput {
  torch::Tensor x;        // (B, T, C)
  torch::Tensor weights;  // (B, H, T, T) when need_weights
};

// x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
class EncoderBlockImpl : public torch::nn::Module {
 public:
  explicit EncoderBlockImpl(const EncoderClassifierConfig& cfg);
  // x (B, T, C); opt: masks and need_weights for the self-attention.
  EncoderBlockOutput forward(const torch::Tensor& x, const AttentionOptions& opt = {});

  LayerNorm ln_1 = nullptr;
  MultiheadAttention attn = nullptr;
  LayerNorm ln_2 = nullptr;
  torch::nn::Linear c_fc = nullptr;    // C -> F
  torch::nn::Linear c_proj = nullptr;  // F -> C
  torch::nn::Dropout drop = nullptr;   // residual branches
};
TORCH_MODULE(EncoderBlock);

struct EncoderClassifierOutput {
  torch::Tensor logits;                // (B, K)
  std::vector<torch::Tensor> attention;  // per layer (B, H, T, T) when need_weights
};

class EncoderClassifierImpl : public torch::nn::Module {
 public:
  explicit EncoderClassifierImpl(EncoderClassifierConfig cfg);

  // tokens (B, T) int64, T <= max_len for learned positions; padding (B, T) bool (true = padding)
  // or undefined. With "last" readout and padding, the head reads each row's last unpadded token.
  EncoderClassifierOutput forward(const torch::Tensor& tokens, const torch::Tensor& padding = {},
                                  bool need_weights = false);

  const EncoderClassifierConfig& config() const { return cfg; }

  torch::nn::Embedding wte = nullptr;      // V -> C
  LearnedPositionalEmbedding wpe = nullptr;  // learned positions only
  torch::nn::Dropout drop = nullptr;
  torch::nn::ModuleList h = nullptr;       // of EncoderBlock
  LayerNorm ln_f = nullptr;
  torch::nn::Linear head = nullptr;        // C -> K

 private:
  EncoderClassifierConfig cfg;
};
TORCH_MODULE(EncoderClassifier);

}  // namespace attnzoo::models

// The Transformer of Vaswani et al. 2017, "Attention Is All You Need": an encoder-decoder of
// multi-head attention (§3.2, models/common/multihead_attention.h) and position-wise feed-forward
// layers (§3.3), with sinusoidal positions (§3.5) added to embeddings scaled by √d_model (§3.4),
// dropout on the embedding sums and on every residual branch (§5.4), and residual sub-layers
// normalised after the sum as in the paper, LayerNorm(x + Sublayer(x)) ("post-LN"), or before the
// sub-layer, x + Sublayer(LayerNorm(x)) with a final LayerNorm ("pre-LN", Xiong et al. 2020).
// With shared vocabularies the source and target embeddings are one matrix, and the output
// projection is tied to it (§3.4).
//
// Module names follow PyTorch's nn.Transformer (encoder.layers.N.self_attn, .linear1, .linear2,
// .norm1, .norm2; decoder.layers.N.self_attn, .multihead_attn, .norm3; encoder.norm and
// decoder.norm for pre-LN only: PyTorch always adds them, the post-LN paper model has none).
// Inputs are batch first.
//
// Shape letters: B batch, S source length, T target length, C d_model, H heads, F d_ff,
// V vocabulary.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/layers.h"
#include "models/common/multihead_attention.h"

namespace attnzoo::models {

struct TransformerConfig {
  int64_t src_vocab_size = 16;
  int64_t tgt_vocab_size = 16;       // V
  int64_t d_model = 512;             // C
  int64_t n_head = 8;                // H
  int64_t num_encoder_layers = 6;
  int64_t num_decoder_layers = 6;
  int64_t d_ff = 2048;               // F
  double dropout = 0.1;              // P_drop: embeddings, residual branches, attention weights, FF inner
  bool pre_norm = false;             // false: post-LN as in the paper
  bool share_embeddings = true;      // one embedding for source and target; needs equal vocab sizes
  bool tie_output = true;            // output projection = target embedding matrix (no bias)
  std::string activation = "relu";   // of the feed-forward layer: "relu" (paper), "gelu", "gelu_tanh"
  int64_t pad_id = 0;                // source padding (masked from attention)
  int64_t bos_id = 1;                // first decoder input
  int64_t eos_id = 2;                // greedy decoding stops a sequence after it

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TransformerConfig, src_vocab_size, tgt_vocab_size, d_model,
                                                n_head, num_encoder_layers, num_decoder_layers, d_ff, dropout,
                                                pre_norm, share_embeddings, tie_output, activation, pad_id, bos_id,
                                                eos_id)

TransformerConfig transformer_base(int64_t vocab_size);  // the paper's base model (6 + 6 × 512, 8 heads, 2048)
TransformerConfig transformer_tiny(int64_t vocab_size);  // 2 + 2 × 32, 4 heads, 64: tests and toy tasks

class TransformerEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderLayerImpl(const TransformerConfig& cfg);
  // x (B, S, C); padding (B, S) bool, true = padding, or undefined. -> (B, S, C)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& padding = {});

  MultiheadAttention self_attn = nullptr;
  torch::nn::Linear linear1 = nullptr;  // C -> F
  torch::nn::Dropout dropout = nullptr;  // inside the feed-forward layer
  torch::nn::Linear linear2 = nullptr;  // F -> C
  LayerNorm norm1 = nullptr;            // around self-attention
  LayerNorm norm2 = nullptr;            // around the feed-forward layer
  torch::nn::Dropout dropout1 = nullptr, dropout2 = nullptr;  // residual branches

 private:
  bool pre_norm;
  std::string act;
};
TORCH_MODULE(TransformerEncoderLayer);

// Keys and values of one decoder layer for incremental decoding.
struct DecoderLayerCache {
  AttentionCache self_attn;                   // grows by one position per step
  AttentionCache cross_attn{.static_kv = true};  // the projected encoder output, computed once
};

struct DecoderLayerOutput {
  torch::Tensor x;             // (B, T, C)
  torch::Tensor cross_weights;  // (B, H, T, S) when need_weights
};

class TransformerDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerDecoderLayerImpl(const TransformerConfig& cfg);
  // x (B, T, C), memory (B, S, C), memory_padding (B, S) bool or undefined. Self-attention is
  // causal; with a cache, x holds the T positions after the cached ones.
  DecoderLayerOutput forward(const torch::Tensor& x, const torch::Tensor& memory,
                             const torch::Tensor& memory_padding = {}, bool need_weights = false,
                             DecoderLayerCache* cache = nullptr);

  MultiheadAttention self_attn = nullptr;
  MultiheadAttention multihead_attn = nullptr;  // cross-attention over the encoder output
  torch::nn::Linear linear1 = nullptr;
  torch::nn::Dropout dropout = nullptr;
  torch::nn::Linear linear2 = nullptr;
  LayerNorm norm1 = nullptr, norm2 = nullptr, norm3 = nullptr;
  torch::nn::Dropout dropout1 = nullptr, dropout2 = nullptr, dropout3 = nullptr;

 private:
  bool pre_norm;
  std::string act;
};
TORCH_MODULE(TransformerDecoderLayer);

class TransformerEncoderImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderImpl(const TransformerConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& padding = {});

  torch::nn::ModuleList layers = nullptr;  // of TransformerEncoderLayer
  LayerNorm norm = nullptr;                // pre-LN only
};
TORCH_MODULE(TransformerEncoder);

struct TransformerDecoderOutput {
  torch::Tensor x;                          // (B, T, C)
  std::vector<torch::Tensor> cross_weights;  // per layer (B, H, T, S) when need_weights
};

class TransformerDecoderImpl : public torch::nn::Module {
 public:
  explicit TransformerDecoderImpl(const TransformerConfig& cfg);
  // caches: one per layer, or null.
  TransformerDecoderOutput forward(const torch::Tensor& x, const torch::Tensor& memory,
                                   const torch::Tensor& memory_padding = {}, bool need_weights = false,
                                   std::vector<DecoderLayerCache>* caches = nullptr);

  torch::nn::ModuleList layers = nullptr;  // of TransformerDecoderLayer
  LayerNorm norm = nullptr;                // pre-LN only
};
TORCH_MODULE(TransformerDecoder);

struct TransformerOutput {
  torch::Tensor logits;                      // (B, T, V)
  std::vector<torch::Tensor> cross_attention;  // per decoder layer (B, H, T, S) when need_weights
};

struct TransformerDecoded {
  torch::Tensor tokens;           // (B, max_len) int64, pad_id after a sequence's eos
  torch::Tensor cross_attention;  // (B, H, max_len, S): the last decoder layer's
};

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(TransformerConfig cfg);

  // src (B, S), tgt_in (B, T): the targets shifted right behind bos_id (teacher forcing). Source
  // positions equal to pad_id are masked; target padding needs no mask as long as it sits at the
  // end, behind the causal mask.
  TransformerOutput forward(const torch::Tensor& src, const torch::Tensor& tgt_in, bool need_weights = false);

  // The encoder output (B, S, C) for src (B, S).
  torch::Tensor encode(const torch::Tensor& src);
  // Decoder logits for tgt_in (B, T) against memory = encode(src); with caches (one per decoder
  // layer), tgt_in holds the positions after the `offset` cached ones.
  TransformerOutput decode(const torch::Tensor& tgt_in, const torch::Tensor& memory, const torch::Tensor& src,
                           bool need_weights = false, std::vector<DecoderLayerCache>* caches = nullptr,
                           int64_t offset = 0);

  // Greedy decoding with a KV cache, one token per step, until every sequence has emitted eos_id
  // or max_len tokens.
  TransformerDecoded greedy_decode(const torch::Tensor& src, int64_t max_len);

  const TransformerConfig& config() const { return cfg; }

  torch::nn::Embedding src_embed = nullptr;  // V_src -> C, scaled by √C
  torch::nn::Embedding tgt_embed = nullptr;  // unset when share_embeddings (src_embed serves both)
  torch::nn::Dropout dropout = nullptr;      // on embedding + position
  TransformerEncoder encoder = nullptr;
  TransformerDecoder decoder = nullptr;
  torch::nn::Linear generator = nullptr;     // C -> V; unset when tie_output

 private:
  torch::Tensor embed(torch::nn::Embedding table, const torch::Tensor& tokens, int64_t offset);
  torch::nn::Embedding target_embedding() const { return tgt_embed ? tgt_embed : src_embed; }

  TransformerConfig cfg;
};
TORCH_MODULE(Transformer);

// The learning rate of §5.3: d_model^−0.5 · min(step^−0.5, step · warmup^−1.5), times scale; linear
// warmup for `warmup` steps, then decay with the inverse square root of the step. step is 1-based
// (step 0 gives 0); the peak, d_model^−0.5 · warmup^−0.5 · scale, is at step = warmup.
double transformer_learning_rate(int64_t step, int64_t d_model, int64_t warmup, double scale = 1.0);

}  // namespace attnzoo::models

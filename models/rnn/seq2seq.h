// RNN encoder-decoder with attention (Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by
// Jointly Learning to Align and Translate"): an LSTM reads the source into annotations h_j; an LSTM
// decoder emits one target token per step, each step attending over the annotations with its
// previous state s_{t−1} as the query:
//   c_t = Σ_j α_tj h_j,   s_t = LSTM([emb(y_{t−1}); c_t], s_{t−1}),   logits_t = W_o [s_t; c_t]
// Attention is "soft" (additive, additive_attention.h), "hard" (one position drawn from the same
// scores, hard_attention.h; trained by REINFORCE, Xu et al. 2015) or "none" (c_t = 0: the
// fixed-vector encoder-decoder of Sutskever et al. 2014). The decoder starts from
// s_0 = tanh(W_s h_last), c_0 = 0 (Bahdanau appendix A.2.2 uses the backward state h←_1; this encoder
// is one-directional). Training uses teacher forcing; greedy_decode feeds back its own argmax.
//
// Shape letters: B batch, S source length (T_enc), T target length (T_dec), E embedding size,
// H hidden size, A attention size, V target vocabulary.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/additive_attention.h"
#include "models/common/hard_attention.h"

namespace attnzoo::models {

struct Seq2SeqConfig {
  int64_t src_vocab_size = 16;
  int64_t tgt_vocab_size = 16;  // V
  int64_t embed_dim = 32;       // E, source and target embeddings
  int64_t hidden_size = 64;     // H, encoder and decoder
  int64_t attention_dim = 64;   // A
  std::string attention = "soft";  // "soft", "hard" or "none"
  int64_t bos_id = 1;           // first decoder input in greedy_decode
  double dropout = 0.0;         // on embeddings and before the output layer

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Seq2SeqConfig, src_vocab_size, tgt_vocab_size, embed_dim,
                                                hidden_size, attention_dim, attention, bos_id, dropout)

struct Seq2SeqOutput {
  torch::Tensor logits;     // (B, T, V)
  torch::Tensor attention;  // (B, T, S): α (one-hot for hard attention, zeros for "none"), for plots
  torch::Tensor log_prob;   // (B, T) log p of the attended position, hard attention only
  torch::Tensor entropy;    // (B, T) entropy of the attention distribution, hard attention only
};

struct Seq2SeqDecoded {
  torch::Tensor tokens;     // (B, T) int64, the argmax at every step
  torch::Tensor attention;  // (B, T, S)
};

class Seq2SeqImpl : public torch::nn::Module {
 public:
  explicit Seq2SeqImpl(Seq2SeqConfig cfg);

  // src (B, S) int64; src_lengths (B) int64 or undefined (no padding); tgt_in (B, T): the decoder
  // inputs, the targets shifted right behind bos (teacher forcing). Hard attention samples while
  // training and takes the argmax in eval mode.
  Seq2SeqOutput forward(const torch::Tensor& src, const torch::Tensor& src_lengths, const torch::Tensor& tgt_in);

  // Greedy decoding of max_len tokens, starting from cfg.bos_id.
  Seq2SeqDecoded greedy_decode(const torch::Tensor& src, const torch::Tensor& src_lengths, int64_t max_len);

  const Seq2SeqConfig& config() const { return cfg; }

  torch::nn::Embedding src_embed = nullptr;  // V_src -> E
  torch::nn::LSTM encoder = nullptr;         // E -> H, batch first
  torch::nn::Linear bridge = nullptr;        // W_s: H -> H, the decoder's initial state
  torch::nn::Embedding tgt_embed = nullptr;  // V -> E
  AdditiveAttention attention = nullptr;     // query s (H), keys h_j (H); unset for "none"
  torch::nn::LSTMCell decoder = nullptr;     // E + H -> H
  torch::nn::Dropout drop = nullptr;
  torch::nn::Linear out = nullptr;           // W_o: 2H -> V

 private:
  struct Encoded {
    torch::Tensor annotations;   // (B, S, H)
    torch::Tensor padding;       // (B, S) bool, true = padding; undefined without lengths
    torch::Tensor keys;          // (B, S, A) projected keys, attention only
    std::tuple<torch::Tensor, torch::Tensor> state;  // s_0, c_0: (B, H) each
  };
  struct Step {
    torch::Tensor logits, weights, log_prob, entropy;  // (B, V), (B, S), (B), (B)
  };
  Encoded encode(const torch::Tensor& src, const torch::Tensor& src_lengths);
  Step step(const torch::Tensor& y_prev, Encoded& enc);

  Seq2SeqConfig cfg;
};
TORCH_MODULE(Seq2Seq);

// The training loss: mean cross-entropy over target positions != ignore_index; with hard
// attention, plus reinforce_loss over the same positions with the reward log p(y_t) (detached),
// baselined by *baseline (updated here when given) and an entropy bonus entropy_coef · H.
torch::Tensor seq2seq_loss(const Seq2SeqOutput& out, const torch::Tensor& targets, int64_t ignore_index = -1,
                           MovingAverageBaselineImpl* baseline = nullptr, double entropy_coef = 0.0);

}  // namespace attnzoo::models

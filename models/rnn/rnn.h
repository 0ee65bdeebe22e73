// Recurrent sequence models: the Elman RNN (Elman 1990, h_t = tanh(W_ih x_t + W_hh h_{t−1} + b)) and
// the LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000) as a sequence
// classifier (the last unpadded hidden state -> linear) and as a language model (logits at every
// step). Both train on LibTorch's fused torch::nn::RNN / torch::nn::LSTM. LstmCell writes the LSTM
// step out gate by gate, with torch's parameter names and gate order (i, f, g, o), so that the
// fused layer's weights copy into it and the two give the same numbers (tests/models/rnn_test.cpp).
//
// Shape letters: B batch, T time steps, V vocabulary, E embedding size, I input size, H hidden size,
// L layers, K classes.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace attnzoo::models {

struct RecurrentConfig {
  std::string cell = "lstm";  // "rnn" (Elman, tanh) or "lstm"
  int64_t vocab_size = 16;    // V
  int64_t embed_dim = 32;     // E
  int64_t hidden_size = 64;   // H
  int64_t num_layers = 1;     // L, stacked
  int64_t num_classes = 2;    // K, classifier only
  double dropout = 0.0;       // on embeddings, between stacked layers and before the output layer

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RecurrentConfig, cell, vocab_size, embed_dim, hidden_size,
                                                num_layers, num_classes, dropout)

// Embedding followed by the fused recurrent layer (batch first). Exactly one of rnn and lstm is set.
class RecurrentEncoderImpl : public torch::nn::Module {
 public:
  explicit RecurrentEncoderImpl(const RecurrentConfig& cfg);
  // tokens (B, T) int64 -> hidden states of the top layer (B, T, H).
  torch::Tensor forward(const torch::Tensor& tokens);

  torch::nn::Embedding embed = nullptr;  // V -> E
  torch::nn::Dropout drop = nullptr;
  torch::nn::RNN rnn = nullptr;          // cell == "rnn"
  torch::nn::LSTM lstm = nullptr;        // cell == "lstm"
};
TORCH_MODULE(RecurrentEncoder);

// Sequence classification: logits from the hidden state after the last unpadded token.
class RecurrentClassifierImpl : public torch::nn::Module {
 public:
  explicit RecurrentClassifierImpl(RecurrentConfig cfg);
  // tokens (B, T); lengths (B) int64, undefined when every sequence has length T. Padding sits at
  // the end, so the states before it never see it. -> (B, K)
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& lengths = {});

  RecurrentEncoder encoder = nullptr;
  torch::nn::Dropout drop = nullptr;
  torch::nn::Linear head = nullptr;  // H -> K

  RecurrentConfig cfg;
};
TORCH_MODULE(RecurrentClassifier);

// Language modelling: logits for the next token at every step.
class RecurrentLanguageModelImpl : public torch::nn::Module {
 public:
  explicit RecurrentLanguageModelImpl(RecurrentConfig cfg);
  // tokens (B, T) -> (B, T, V)
  torch::Tensor forward(const torch::Tensor& tokens);

  RecurrentEncoder encoder = nullptr;
  torch::nn::Dropout drop = nullptr;
  torch::nn::Linear head = nullptr;  // H -> V

  RecurrentConfig cfg;
};
TORCH_MODULE(RecurrentLanguageModel);

struct LstmState {
  torch::Tensor h;  // (B, H)
  torch::Tensor c;  // (B, H)
};

// One LSTM step written out:
//   [i, f, g, o] = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh      (four H-row blocks, torch's order)
//   i, f, o = σ(·),  g = tanh(·)
//   c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
class LstmCellImpl : public torch::nn::Module {
 public:
  LstmCellImpl(int64_t input_size, int64_t hidden_size);
  // x (B, I), state (B, H) each; an undefined state is zeros.
  LstmState forward(const torch::Tensor& x, const LstmState& state = {});
  // Runs the cell over x (B, T, I) -> hidden states (B, T, H); the final state is written to *last.
  torch::Tensor unroll(const torch::Tensor& x, LstmState* last = nullptr);

  torch::Tensor weight_ih;  // (4H, I)
  torch::Tensor weight_hh;  // (4H, H)
  torch::Tensor bias_ih;    // (4H)
  torch::Tensor bias_hh;    // (4H)
  int64_t hidden_size;
};
TORCH_MODULE(LstmCell);

}  // namespace attnzoo::models

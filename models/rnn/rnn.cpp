#include "models/rnn/rnn.h"

#include <cmath>
#include <stdexcept>

namespace attnzoo::models {

void RecurrentConfig::validate() const {
  if (cell != "rnn" && cell != "lstm")
    throw std::invalid_argument("cell must be \"rnn\" or \"lstm\", got \"" + cell + "\"");
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(embed_dim, "embed_dim");
  positive(hidden_size, "hidden_size");
  positive(num_layers, "num_layers");
  positive(num_classes, "num_classes");
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(dropout));
}

RecurrentEncoderImpl::RecurrentEncoderImpl(const RecurrentConfig& cfg) {
  cfg.validate();
  embed = register_module("embed", torch::nn::Embedding(cfg.vocab_size, cfg.embed_dim));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
  const double between = cfg.num_layers > 1 ? cfg.dropout : 0.0;
  if (cfg.cell == "rnn") {
    rnn = register_module("rnn", torch::nn::RNN(torch::nn::RNNOptions(cfg.embed_dim, cfg.hidden_size)
                                                     .num_layers(cfg.num_layers)
                                                     .nonlinearity(torch::kTanh)
                                                     .dropout(between)
                                                     .batch_first(true)));
  } else {
    lstm = register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(cfg.embed_dim, cfg.hidden_size)
                                                       .num_layers(cfg.num_layers)
                                                       .dropout(between)
                                                       .batch_first(true)));
  }
}

torch::Tensor RecurrentEncoderImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "recurrent encoder expects tokens (B, T), got ", tokens.sizes());
  auto x = drop(embed(tokens));  // (B, T, E)
  return rnn ? std::get<0>(rnn(x)) : std::get<0>(lstm(x));  // (B, T, H)
}

RecurrentClassifierImpl::RecurrentClassifierImpl(RecurrentConfig cfg_) : cfg(std::move(cfg_)) {
  encoder = register_module("encoder", RecurrentEncoder(cfg));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
  head = register_module("head", torch::nn::Linear(cfg.hidden_size, cfg.num_classes));
}

torch::Tensor RecurrentClassifierImpl::forward(const torch::Tensor& tokens, const torch::Tensor& lengths) {
  auto h = encoder(tokens);  // (B, T, H)
  const int64_t B = h.size(0), T = h.size(1);
  torch::Tensor last;  // (B, H)
  if (lengths.defined()) {
    TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == B, "expected lengths (B = ", B, "), got ",
                lengths.sizes());
    TORCH_CHECK(lengths.min().item<int64_t>() >= 1 && lengths.max().item<int64_t>() <= T,
                "lengths must lie in [1, T = ", T, "], got ", lengths);
    auto index = (lengths.to(torch::kLong) - 1).view({B, 1, 1}).expand({B, 1, h.size(2)});
    last = h.gather(1, index).squeeze(1);
  } else {
    last = h.select(1, T - 1);
  }
  return head(drop(last));
}

RecurrentLanguageModelImpl::RecurrentLanguageModelImpl(RecurrentConfig cfg_) : cfg(std::move(cfg_)) {
  encoder = register_module("encoder", RecurrentEncoder(cfg));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
  head = register_module("head", torch::nn::Linear(cfg.hidden_size, cfg.vocab_size));
}

torch::Tensor RecurrentLanguageModelImpl::forward(const torch::Tensor& tokens) {
  return head(drop(encoder(tokens)));  // (B, T, V)
}

LstmCellImpl::LstmCellImpl(int64_t input_size, int64_t hidden_size_) : hidden_size(hidden_size_) {
  TORCH_CHECK(input_size > 0 && hidden_size > 0, "LSTM cell sizes must be positive, got input ", input_size,
              " hidden ", hidden_size);
  // torch's initialisation: U(−1/√H, 1/√H) for every parameter.
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  auto uniform = [bound](std::vector<int64_t> shape) { return torch::empty(shape).uniform_(-bound, bound); };
  weight_ih = register_parameter("weight_ih", uniform({4 * hidden_size, input_size}));
  weight_hh = register_parameter("weight_hh", uniform({4 * hidden_size, hidden_size}));
  bias_ih = register_parameter("bias_ih", uniform({4 * hidden_size}));
  bias_hh = register_parameter("bias_hh", uniform({4 * hidden_size}));
}

LstmState LstmCellImpl::forward(const torch::Tensor& x, const LstmState& state) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == weight_ih.size(1), "LSTM cell expects x (B, I = ", weight_ih.size(1),
              "), got ", x.sizes());
  const int64_t B = x.size(0);
  auto h = state.h.defined() ? state.h : torch::zeros({B, hidden_size}, x.options());
  auto c = state.c.defined() ? state.c : torch::zeros({B, hidden_size}, x.options());
  auto gates = torch::nn::functional::linear(x, weight_ih, bias_ih) +
               torch::nn::functional::linear(h, weight_hh, bias_hh);  // (B, 4H)
  auto chunks = gates.chunk(4, 1);                                    // 4 × (B, H)
  auto i = torch::sigmoid(chunks[0]);  // input gate
  auto f = torch::sigmoid(chunks[1]);  // forget gate
  auto g = torch::tanh(chunks[2]);     // candidate cell
  auto o = torch::sigmoid(chunks[3]);  // output gate
  auto c_next = f * c + i * g;
  return {o * torch::tanh(c_next), c_next};
}

torch::Tensor LstmCellImpl::unroll(const torch::Tensor& x, LstmState* last) {
  TORCH_CHECK(x.dim() == 3, "LSTM cell unroll expects x (B, T, I), got ", x.sizes());
  LstmState s;
  std::vector<torch::Tensor> hs;
  for (int64_t t = 0; t < x.size(1); ++t) {
    s = forward(x.select(1, t), s);
    hs.push_back(s.h);
  }
  if (last) *last = s;
  return torch::stack(hs, 1);  // T × (B, H) -> (B, T, H)
}

}  // namespace attnzoo::models

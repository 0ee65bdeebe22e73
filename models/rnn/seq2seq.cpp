#include "models/rnn/seq2seq.h"

#include <stdexcept>

namespace attnzoo::models {

void Seq2SeqConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(src_vocab_size, "src_vocab_size");
  positive(tgt_vocab_size, "tgt_vocab_size");
  positive(embed_dim, "embed_dim");
  positive(hidden_size, "hidden_size");
  positive(attention_dim, "attention_dim");
  if (attention != "soft" && attention != "hard" && attention != "none")
    throw std::invalid_argument("attention must be \"soft\", \"hard\" or \"none\", got \"" + attention + "\"");
  if (bos_id < 0 || bos_id >= tgt_vocab_size)
    throw std::invalid_argument("bos_id must lie in [0, tgt_vocab_size = " + std::to_string(tgt_vocab_size) +
                                "), got " + std::to_string(bos_id));
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(dropout));
}

Seq2SeqImpl::Seq2SeqImpl(Seq2SeqConfig cfg_) : cfg(std::move(cfg_)) {
  cfg.validate();
  const int64_t E = cfg.embed_dim, H = cfg.hidden_size;
  src_embed = register_module("src_embed", torch::nn::Embedding(cfg.src_vocab_size, E));
  encoder = register_module("encoder", torch::nn::LSTM(torch::nn::LSTMOptions(E, H).batch_first(true)));
  bridge = register_module("bridge", torch::nn::Linear(H, H));
  tgt_embed = register_module("tgt_embed", torch::nn::Embedding(cfg.tgt_vocab_size, E));
  if (cfg.attention != "none") {
    attention = register_module(
        "attention", AdditiveAttention(AdditiveAttentionConfig{.query_dim = H, .key_dim = H,
                                                               .hidden_dim = cfg.attention_dim}));
  }
  decoder = register_module("decoder", torch::nn::LSTMCell(E + H, H));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
  out = register_module("out", torch::nn::Linear(2 * H, cfg.tgt_vocab_size));
}

Seq2SeqImpl::Encoded Seq2SeqImpl::encode(const torch::Tensor& src, const torch::Tensor& src_lengths) {
  TORCH_CHECK(src.dim() == 2 && src.size(1) > 0, "seq2seq expects source tokens (B, S), got ", src.sizes());
  const int64_t B = src.size(0), S = src.size(1);
  Encoded enc;
  enc.annotations = std::get<0>(encoder(drop(src_embed(src))));  // (B, S, H)
  torch::Tensor last;                                             // (B, H): state after the last real token
  if (src_lengths.defined()) {
    TORCH_CHECK(src_lengths.dim() == 1 && src_lengths.size(0) == B, "expected src_lengths (B = ", B, "), got ",
                src_lengths.sizes());
    TORCH_CHECK(src_lengths.min().item<int64_t>() >= 1 && src_lengths.max().item<int64_t>() <= S,
                "src_lengths must lie in [1, S = ", S, "], got ", src_lengths);
    auto lengths = src_lengths.to(torch::kLong);
    enc.padding = torch::arange(S, lengths.options()).unsqueeze(0) >= lengths.unsqueeze(1);  // (B, S)
    auto index = (lengths - 1).view({B, 1, 1}).expand({B, 1, cfg.hidden_size});
    last = enc.annotations.gather(1, index).squeeze(1);
  } else {
    last = enc.annotations.select(1, S - 1);
  }
  if (attention) enc.keys = attention->project_keys(enc.annotations);
  enc.state = {torch::tanh(bridge(last)), torch::zeros_like(last)};
  return enc;
}

Seq2SeqImpl::Step Seq2SeqImpl::step(const torch::Tensor& y_prev, Encoded& enc) {
  const auto& h = enc.annotations;
  const int64_t B = h.size(0), S = h.size(1);
  const auto& s_prev = std::get<0>(enc.state);  // the query: s_{t−1}
  Step st;
  torch::Tensor context;  // (B, H)
  if (cfg.attention == "soft") {
    auto a = attention(s_prev, h, enc.padding, enc.keys);
    context = a.context;
    st.weights = a.weights;
  } else if (cfg.attention == "hard") {
    auto a = attention(s_prev, h, enc.padding, enc.keys);
    auto sample = hard_attention_sample(a.scores, is_training());
    context = gather_positions(h, sample.index);
    st.weights = sample.weights;
    st.log_prob = sample.log_prob;
    st.entropy = sample.entropy;
  } else {
    context = torch::zeros({B, cfg.hidden_size}, h.options());
    st.weights = torch::zeros({B, S}, h.options());
  }
  auto x = torch::cat({drop(tgt_embed(y_prev)), context}, 1);  // (B, E + H)
  enc.state = decoder(x, enc.state);
  st.logits = out(drop(torch::cat({std::get<0>(enc.state), context}, 1)));  // (B, 2H) -> (B, V)
  return st;
}

Seq2SeqOutput Seq2SeqImpl::forward(const torch::Tensor& src, const torch::Tensor& src_lengths,
                                   const torch::Tensor& tgt_in) {
  TORCH_CHECK(tgt_in.dim() == 2 && tgt_in.size(0) == src.size(0), "seq2seq expects decoder inputs (B = ",
              src.size(0), ", T), got ", tgt_in.sizes());
  auto enc = encode(src, src_lengths);
  std::vector<torch::Tensor> logits, weights, log_prob, entropy;
  for (int64_t t = 0; t < tgt_in.size(1); ++t) {
    auto st = step(tgt_in.select(1, t), enc);
    logits.push_back(st.logits);
    weights.push_back(st.weights);
    if (st.log_prob.defined()) {
      log_prob.push_back(st.log_prob);
      entropy.push_back(st.entropy);
    }
  }
  Seq2SeqOutput o;
  o.logits = torch::stack(logits, 1);  // T × (B, V) -> (B, T, V)
  o.attention = torch::stack(weights, 1);  // T × (B, S) -> (B, T, S)
  if (!log_prob.empty()) {
    o.log_prob = torch::stack(log_prob, 1);  // (B, T)
    o.entropy = torch::stack(entropy, 1);
  }
  return o;
}

Seq2SeqDecoded Seq2SeqImpl::greedy_decode(const torch::Tensor& src, const torch::Tensor& src_lengths,
                                          int64_t max_len) {
  TORCH_CHECK(max_len > 0, "max_len must be positive, got ", max_len);
  torch::NoGradGuard no_grad;
  auto enc = encode(src, src_lengths);
  auto y = torch::full({src.size(0)}, cfg.bos_id, src.options().dtype(torch::kLong));
  std::vector<torch::Tensor> tokens, weights;
  for (int64_t t = 0; t < max_len; ++t) {
    auto st = step(y, enc);
    y = st.logits.argmax(-1);
    tokens.push_back(y);
    weights.push_back(st.weights);
  }
  return {torch::stack(tokens, 1), torch::stack(weights, 1)};
}

torch::Tensor seq2seq_loss(const Seq2SeqOutput& out, const torch::Tensor& targets, int64_t ignore_index,
                           MovingAverageBaselineImpl* baseline, double entropy_coef) {
  const auto& logits = out.logits;
  TORCH_CHECK(targets.dim() == 2 && logits.size(0) == targets.size(0) && logits.size(1) == targets.size(1),
              "seq2seq_loss expects targets (B, T) = (", logits.size(0), ", ", logits.size(1), "), got ",
              targets.sizes());
  auto logp = torch::log_softmax(logits.to(torch::kFloat), -1);  // (B, T, V)
  auto valid = targets != ignore_index;                          // (B, T)
  auto target_logp = logp.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1);  // (B, T)
  auto loss = -target_logp.masked_select(valid).mean();
  if (out.log_prob.defined()) {
    auto reward = target_logp.detach().masked_select(valid);
    torch::Tensor b = baseline ? baseline->value() : torch::Tensor();
    loss = loss + reinforce_loss(out.log_prob.masked_select(valid), reward, b,
                                 entropy_coef > 0 ? out.entropy.masked_select(valid) : torch::Tensor(),
                                 entropy_coef);
    if (baseline) baseline->update(reward);
  }
  return loss;
}

}  // namespace attnzoo::models

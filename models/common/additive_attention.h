// Additive soft attention (Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly
// Learning to Align and Translate", §3.1 and appendix A.1.2), the attention of recurrent
// encoder-decoders:
//   e_j = vᵀ tanh(W s + U h_j),   α = softmax(e) over the unpadded j,   c = Σ_j α_j h_j
// for a decoder state s and encoder annotations h_j (keys and values at once). Deterministic and
// differentiable; the weights sum to 1 (a query whose keys are all padding gets zero weights and a
// zero context). The unnormalised scores are returned too: they are the logits hard attention
// samples from (hard_attention.h).
//
// Shape letters: B batch, Tq decoder steps, Tk encoder positions, Dq decoder state size, Dk
// annotation size, A attention hidden size.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace attnzoo::models {

struct AdditiveAttentionConfig {
  int64_t query_dim = 64;   // Dq, the decoder state s
  int64_t key_dim = 64;     // Dk, the encoder annotations h_j
  int64_t hidden_dim = 64;  // A, rows of W and U
  bool bias = false;        // a bias on U h_j (the paper has none; common implementations add one)

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AdditiveAttentionConfig, query_dim, key_dim, hidden_dim, bias)

struct AdditiveAttentionOutput {
  torch::Tensor context;  // (B, Dk) or (B, Tq, Dk): Σ_j α_j h_j
  torch::Tensor weights;  // (B, Tk) or (B, Tq, Tk): α
  torch::Tensor scores;   // (B, Tk) or (B, Tq, Tk): e, -inf at padded keys
};

class AdditiveAttentionImpl : public torch::nn::Module {
 public:
  explicit AdditiveAttentionImpl(AdditiveAttentionConfig cfg);

  // U h_j for keys (B, Tk, Dk) -> (B, Tk, A). It does not depend on the decoder step: compute it
  // once per source sequence and pass it to forward.
  torch::Tensor project_keys(const torch::Tensor& keys);

  // query: (B, Dq) for one decoder step or (B, Tq, Dq) for several; keys: (B, Tk, Dk);
  // key_padding_mask: optional bool (B, Tk), true = padding; projected_keys: project_keys(keys),
  // computed here when undefined.
  AdditiveAttentionOutput forward(const torch::Tensor& query, const torch::Tensor& keys,
                                  const torch::Tensor& key_padding_mask = {},
                                  const torch::Tensor& projected_keys = {});

  torch::nn::Linear query_proj = nullptr;  // W: Dq -> A, no bias
  torch::nn::Linear key_proj = nullptr;    // U: Dk -> A, bias when cfg.bias
  torch::nn::Linear v = nullptr;           // v: A -> 1, no bias

 private:
  AdditiveAttentionConfig cfg;
};
TORCH_MODULE(AdditiveAttention);

}  // namespace attnzoo::models

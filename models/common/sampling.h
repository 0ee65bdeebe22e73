// Choosing the next token from a distribution of logits: temperature, top-k and nucleus (top-p)
// filtering (Holtzman et al. 2019), then a draw from a seeded generator.
#pragma once

#include <optional>

#include <torch/torch.h>

namespace attnzoo::models {

struct SamplingOptions {
  double temperature = 1.0;         // 0 = greedy (argmax)
  int64_t top_k = 0;                // 0 = off
  double top_p = 1.0;               // 1 = off
  double repetition_penalty = 1.0;  // 1 = off; > 1 discourages tokens already in the sequence
};

// The repetition penalty of CTRL (Keskar et al. 2019), as Hugging Face applies it: the logit of
// every token that occurs in `previous` (B, T) is divided by `penalty` when positive and
// multiplied by it when negative. logits: (B, V); returns a new tensor.
torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& previous, double penalty);

// logits: (B, V) -> next token ids (B, 1).
torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opt,
                          std::optional<torch::Generator> gen = std::nullopt);

}  // namespace attnzoo::models

// Choosing the next token from a distribution of logits: temperature, top-k and nucleus (top-p)
// filtering (Holtzman et al. 2019), then a draw from a seeded generator.
#pragma once

#include <optional>

#include <torch/torch.h>

namespace attnzoo::models {

struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
};

// logits: (B, V) -> next token ids (B, 1).
torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& opt,
                          std::optional<torch::Generator> gen = std::nullopt);

}  // namespace attnzoo::models

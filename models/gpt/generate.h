// Autoregressive generation from a GPT with a preallocated KV cache. Each new token is
// conditioned on at most block_size previous tokens, exactly as nanoGPT's generate(): once the
// context outgrows the block, the cache is refilled from the last block_size tokens.
#pragma once

#include <functional>
#include <optional>

#include <torch/torch.h>

#include "models/common/sampling.h"
#include "models/gpt/gpt.h"

namespace attnzoo::models {

struct GenerateOptions {
  int64_t max_new_tokens = 500;
  SamplingOptions sampling;
  bool use_cache = true;  // false recomputes the whole context per token (for tests and comparison)
  // > 0: only ids below this are drawn (a vocabulary padded to a multiple of 64, as nanoGPT's
  // 50304 for GPT-2's 50257, has logits no tokenizer can decode).
  int64_t vocab_limit = 0;
  // Called with the whole (B, T) sequence after each new token; true ends the generation early
  // (stop sequences, an end-of-text token).
  std::function<bool(const torch::Tensor&)> should_stop;
};

// idx: (B, T0) prompt ids, T0 >= 1 -> (B, T0 + max_new_tokens). on_token (may be empty) receives
// each new (B, 1) column as soon as it is drawn, for streaming. Runs under InferenceMode.
torch::Tensor generate(GPT& model, const torch::Tensor& idx, const GenerateOptions& opt,
                       std::optional<torch::Generator> gen = std::nullopt,
                       const std::function<void(const torch::Tensor&)>& on_token = {});

}  // namespace attnzoo::models

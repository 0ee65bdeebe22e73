// Mean cross-entropy of rows of logits against class ids, in one pass forward and one backward,
// for CPU tensors in fp32 or bf16: the log-sum-exp of each row is kept, and the backward writes
// softmax - one-hot straight into a gradient of the logits' type. LibTorch's cross_entropy on a
// language model's (B·T, V) logits instead upcasts them to fp32, writes the log-softmax, zero-fills
// a (B·T, V) gradient for nll_loss and runs a log-softmax backward over it: ~20 % of a bf16 GPT-2
// step with its 50 257-token head (bench/gpt-bench --profile). Sums are fp32 either way.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace attnzoo::losses {

// logits (N, V) fp32 or bf16 on CPU, targets (N) int64 in [0, V) or ignore_index. The mean over
// the counted rows, fp32 (NaN when none counts, as LibTorch's mean reduction).
// `portable` skips the AVX-512 kernels (tests run both paths).
torch::Tensor fused_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index = -100,
                                  bool portable = false);

// Whether fused_cross_entropy takes these logits (else call LibTorch's cross_entropy).
bool fused_cross_entropy_fits(const torch::Tensor& logits);

}  // namespace attnzoo::losses

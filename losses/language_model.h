// Next-token cross-entropy for language models, summed in fp32: under bf16 autocast a softmax over
// a large vocabulary loses too much precision in bf16. On CPU it is fused_cross_entropy (one pass
// over the bf16 or fp32 logits each way); elsewhere LibTorch's on logits upcast to fp32.
#pragma once

#include <torch/torch.h>

namespace attnzoo::losses {

// logits: (B, T, V), targets: (B, T) with ignore_index marking positions without a target.
// Returns the mean loss over the counted positions.
torch::Tensor language_model_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                  int64_t ignore_index = -1);

}  // namespace attnzoo::losses

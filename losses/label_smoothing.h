// Label-smoothed cross-entropy (Szegedy et al. 2016, "Rethinking the Inception Architecture", §7;
// used with ε = 0.1 by Vaswani et al. 2017, §5.4). The target distribution puts 1 − ε on the true
// class and spreads ε uniformly over all V classes (the true one included), as PyTorch's
// cross_entropy(label_smoothing=ε) does:
//   loss = (1 − ε) · (−log p_y) + ε · (1/V) Σ_j (−log p_j)
// At ε = 0 it is the plain cross-entropy. Logits are upcast to fp32 first.
#pragma once

#include <torch/torch.h>

namespace attnzoo::losses {

// logits (..., V), targets (...) int64 with ignore_index marking positions without a target.
// Returns the mean over the counted positions (0 when there are none).
torch::Tensor label_smoothed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                           double smoothing = 0.1, int64_t ignore_index = -1);

}  // namespace attnzoo::losses

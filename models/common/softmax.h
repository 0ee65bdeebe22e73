// Softmax over the last dimension of attention scores, plain or causal, with autograd. On CPU, fp32
// and bf16 run one AVX-512 pass forward and one backward where the CPU has AVX-512 BF16; the causal
// form skips the masked keys instead of filling them with -inf first: LibTorch 1.13's masked_fill
// forward and backward and its softmax cost ~3 % of a GPT-2 training step (bench/gpt-bench
// --profile). Elsewhere it is torch::softmax, after masked_fill for the causal form.
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

// softmax(x) over the last dimension, in x's type (fp32 sums). With causal, x is (..., Tq, Tk) with
// Tq <= Tk and query i sees keys j <= i + Tk - Tq (the diagonal that ends at the last key, as
// causal_mask); the other weights are exactly 0 and get no gradient.
torch::Tensor attention_softmax(const torch::Tensor& x, bool causal = false);

// Whether attention_softmax would run its own kernel for this tensor (tests).
bool attention_softmax_uses_own_kernel(const torch::Tensor& x);

}  // namespace attnzoo::models

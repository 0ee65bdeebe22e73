// GELU, exact (erf) or with GPT-2's tanh approximation, with autograd. bf16 tensors on CPU run
// oneDNN's eltwise GELU forward and backward when the build has it (ATTNZOO_HAVE_DNNL): LibTorch
// 1.13's bf16 GELU and its backward evaluate erf/tanh scalar by scalar, ~10 % of a bf16 ViT or
// GPT training step (bench/vit-bench --profile). Everything else is at::gelu.
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

torch::Tensor gelu(const torch::Tensor& x, bool tanh_approximation = false);

// Whether gelu() would run on oneDNN for this tensor (tests).
bool gelu_uses_dnnl(const torch::Tensor& x);

}  // namespace attnzoo::models

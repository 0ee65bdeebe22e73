// GELU, exact (erf) or with GPT-2's tanh approximation, with autograd. On CPU, fp32 and bf16 run
// hand-written AVX-512 kernels forward and backward where the CPU has AVX-512 BF16: LibTorch 1.13's
// bf16 GELU evaluates erf/tanh scalar by scalar (~10 % of a bf16 ViT or GPT training step), and
// its fp32 tanh GELU backward costs ~2.4 ns per element on two threads, ~2 % of a GPT-2 step
// (bench/ --profile). bf16 elsewhere runs oneDNN's eltwise GELU when the build has it
// (ATTNZOO_HAVE_DNNL). Everything else is at::gelu.
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

torch::Tensor gelu(const torch::Tensor& x, bool tanh_approximation = false);

// Which implementation gelu() runs for this tensor (tests).
enum class GeluKernel { aten, avx512, dnnl };
GeluKernel gelu_kernel(const torch::Tensor& x);

}  // namespace attnzoo::models

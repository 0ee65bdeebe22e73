// Matrix products for the models, with autograd: `matmul` (batched, any strides) and `linear`.
// On CPU in fp32 and bf16 (outside autocast) they run on oneDNN's matmul primitive when the build
// has it (ATTNZOO_HAVE_DNNL): its kernels are faster than the BLAS GEMM LibTorch 1.13 calls for
// these shapes (bench/). Any strided view is accepted; batches not stored densely (attention's q, k,
// v sliced from one projection) are copied first, which oneDNN's fast kernels repay.
// Under CPU bf16 autocast, linear with fp32 weights runs the bf16 product on oneDNN too and returns
// fp32 weight gradients directly, and matmul of two bf16 tensors runs on oneDNN as well.
// Elsewhere (CUDA, a build without oneDNN) they are at::matmul / at::linear.
#pragma once

#include <optional>
#include <string>

#include <torch/torch.h>

namespace attnzoo::models {

// alpha · a @ b. a: (..., M, K), b: (..., K, N) with equal batch dimensions (no broadcasting).
// With heads_last (4-D only: (B, H, M, K) @ (B, H, K, N)), the result (B, H, M, N) is laid out in
// memory as (B, M, H, N), so that result.transpose(1, 2).reshape({B, M, H * N}) is free.
torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b, double alpha = 1.0, bool heads_last = false);

// x Wᵀ + b for x (..., K), W (N, K), b (N) or undefined.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// activation(x Wᵀ + b) computed by one oneDNN matmul with the activation ("gelu" (erf), "gelu_tanh"
// or "relu") applied to its fp32 result before rounding, when no gradient is needed and the
// tensors take the oneDNN path; nullopt otherwise (the caller runs linear, then the activation).
std::optional<torch::Tensor> fused_linear_activation(const torch::Tensor& x, const torch::Tensor& weight,
                                                     const torch::Tensor& bias, const std::string& act);

// Whether matmul/linear would take the oneDNN path for these tensors (tests, benchmarks).
bool uses_dnnl(const torch::Tensor& t);

}  // namespace attnzoo::models

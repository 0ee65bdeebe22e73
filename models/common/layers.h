// Small building blocks shared by the transformer models: LayerNorm with optional bias, a linear
// call that runs as one addmm, and activation by name.
#pragma once

#include <string>

#include <torch/torch.h>

#include "models/common/gemm.h"

namespace attnzoo::models {

// LayerNorm as nanoGPT's (bias optional). CPU bf16 autocast in LibTorch 1.13 does not cover
// layer_norm, so a bf16 input is normalised in the parameters' dtype; with bf16 parameters on CPU
// the normalisation runs in fp32 and the output is rounded to bf16.
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, bool bias = true, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // (C) = 1
  torch::Tensor bias;    // (C) = 0, undefined without bias
  int64_t dim;
  double eps;
};
TORCH_MODULE(LayerNorm);

// y = x Wᵀ + b through models::linear (gemm.h): one GEMM with the bias fused, where the 1.13 C++
// frontend's Linear::forward does a matmul and a separate add.
inline torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return linear(x, layer->weight, layer->bias);
}

// "gelu" (exact, erf), "gelu_tanh" (GPT-2's tanh approximation), "relu".
torch::Tensor activation(const torch::Tensor& x, const std::string& name);
// activation(linear(layer, x), name); without autograd on oneDNN, one matmul that applies the
// activation to its fp32 result before rounding (a transformer MLP's first layer at inference).
torch::Tensor linear_activation(const torch::nn::Linear& layer, const torch::Tensor& x, const std::string& name);
// Throws std::invalid_argument for a name activation() does not know.
void check_activation(const std::string& name);

}  // namespace attnzoo::models

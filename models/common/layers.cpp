#include "models/common/layers.h"

#include <stdexcept>

#include "models/common/gelu.h"

namespace attnzoo::models {

LayerNormImpl::LayerNormImpl(int64_t dim, bool with_bias, double eps) : dim(dim), eps(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  // LibTorch 1.13's CPU LayerNorm in bf16 is ~10× slower than in fp32 (12 % of ViT-B/16's bf16
  // inference): with bf16 parameters it runs in fp32 and rounds the output once.
  if (x.device().is_cpu() && weight.scalar_type() == torch::kBFloat16) {
    const auto f = torch::kFloat;
    return at::layer_norm(x.to(f), {dim}, weight.to(f), bias.defined() ? bias.to(f) : bias, eps).to(torch::kBFloat16);
  }
  const auto in = x.scalar_type() == weight.scalar_type() ? x : x.to(weight.scalar_type());
  return at::layer_norm(in, {dim}, weight, bias, eps);
}

void check_activation(const std::string& name) {
  if (name != "gelu" && name != "gelu_tanh" && name != "relu")
    throw std::invalid_argument("unknown activation '" + name + "' (expected gelu, gelu_tanh or relu)");
}

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "gelu") return models::gelu(x);
  if (name == "gelu_tanh") return models::gelu(x, /*tanh_approximation=*/true);
  if (name == "relu") return torch::relu(x);
  check_activation(name);
  return x;
}

torch::Tensor linear_activation(const torch::nn::Linear& layer, const torch::Tensor& x, const std::string& name) {
  if (auto y = fused_linear_activation(x, layer->weight, layer->bias, name)) return *y;
  return activation(linear(layer, x), name);
}

}  // namespace attnzoo::models

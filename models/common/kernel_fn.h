// The autograd function around a pair of hand-written CPU kernels for one fp32 or bf16 tensor
// (models/common/gelu.cpp, softmax.cpp): the forward writes y from x, the backward writes the
// gradient of x from the saved tensor (x, or y when Kernel::kSavesOutput) and the incoming
// gradient, each in the tensor's own type. Kernel provides:
//   static constexpr const char* kName, kBackwardName;  // profiler names
//   static constexpr bool kSavesOutput;
//   template <typename T> static void forward(const torch::Tensor& x, torch::Tensor& y, bool flag);
//   template <typename T> static void backward(const torch::Tensor& saved, const torch::Tensor& g,
//                                               torch::Tensor& gx, bool flag);
// with every tensor contiguous; `flag` is the one option of the operation (tanh, causal).
#pragma once

#include <torch/torch.h>

namespace attnzoo::models {

template <class Kernel>
struct KernelFn : torch::autograd::Function<KernelFn<Kernel>> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in, bool flag) {
    RECORD_FUNCTION(Kernel::kName, std::vector<c10::IValue>());
    const auto x = x_in.contiguous();
    auto y = torch::empty_like(x);
    if (x.scalar_type() == torch::kBFloat16) Kernel::template forward<c10::BFloat16>(x, y, flag);
    else Kernel::template forward<float>(x, y, flag);
    ctx->save_for_backward({Kernel::kSavesOutput ? y : x});
    ctx->saved_data["flag"] = flag;
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    RECORD_FUNCTION(Kernel::kBackwardName, std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables()[0];
    const auto g = grads[0].to(saved.scalar_type()).contiguous();
    auto gx = torch::empty_like(saved);
    const bool flag = ctx->saved_data["flag"].toBool();
    if (saved.scalar_type() == torch::kBFloat16) Kernel::template backward<c10::BFloat16>(saved, g, gx, flag);
    else Kernel::template backward<float>(saved, g, gx, flag);
    return {gx, torch::Tensor()};
  }
};

}  // namespace attnzoo::models

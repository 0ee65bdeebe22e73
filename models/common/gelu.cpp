#include "models/common/gelu.h"

#ifdef ATTNZOO_HAVE_DNNL
#include <mutex>
#include <unordered_map>

#include "models/common/dnnl_runtime.h"
#endif

namespace attnzoo::models {

#ifdef ATTNZOO_HAVE_DNNL
namespace {

using dnnl::memory;

// The element-wise primitives for one length and kind, forward and backward, created once: making
// a primitive costs far more than running it.
struct GeluPrimitives {
  dnnl::eltwise_forward forward;
  dnnl::eltwise_backward backward;
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<int64_t, GeluPrimitives> erf, tanh;

  GeluPrimitives get(int64_t n, bool tanh_approximation) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& map = tanh_approximation ? tanh : erf;
    auto it = map.find(n);
    if (it != map.end()) return it->second;
    const auto algo = tanh_approximation ? dnnl::algorithm::eltwise_gelu_tanh : dnnl::algorithm::eltwise_gelu_erf;
    const memory::desc md({n}, memory::data_type::bf16, memory::format_tag::a);
    const dnnl::eltwise_forward::primitive_desc fwd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, algo, md, 0.0f, 0.0f), dnnl_cpu_engine());
    const dnnl::eltwise_backward::primitive_desc bwd(dnnl::eltwise_backward::desc(algo, md, md, 0.0f, 0.0f),
                                                     dnnl_cpu_engine(), fwd);
    if (map.size() > 256) map.clear();  // bounded: lengths change with the sequence length
    return map.emplace(n, GeluPrimitives{dnnl::eltwise_forward(fwd), dnnl::eltwise_backward(bwd)}).first->second;
  }
};

Cache& cache() {
  static Cache c;
  return c;
}

memory wrap(const torch::Tensor& t) {
  return memory(memory::desc({t.numel()}, memory::data_type::bf16, memory::format_tag::a), dnnl_cpu_engine(),
                t.data_ptr());
}

struct GeluFn : torch::autograd::Function<GeluFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in, bool tanh_approximation) {
    RECORD_FUNCTION("dnnl_gelu", std::vector<c10::IValue>());
    const auto x = x_in.contiguous();
    auto y = torch::empty_like(x);
    dnnl_run(cache().get(x.numel(), tanh_approximation).forward, {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DST, wrap(y)}});
    ctx->save_for_backward({x});
    ctx->saved_data["tanh"] = tanh_approximation;
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    RECORD_FUNCTION("dnnl_gelu_backward", std::vector<c10::IValue>());
    const auto x = ctx->get_saved_variables()[0];
    const auto g = grads[0].to(torch::kBFloat16).contiguous();
    auto gx = torch::empty_like(x);
    const auto prims = cache().get(x.numel(), ctx->saved_data["tanh"].toBool());
    dnnl_run(prims.backward, {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DIFF_DST, wrap(g)}, {DNNL_ARG_DIFF_SRC, wrap(gx)}});
    return {gx, torch::Tensor()};
  }
};

}  // namespace
#endif

bool gelu_uses_dnnl(const torch::Tensor& x) {
#ifdef ATTNZOO_HAVE_DNNL
  return x.device().is_cpu() && x.scalar_type() == torch::kBFloat16 && x.numel() > 0;
#else
  (void)x;
  return false;
#endif
}

torch::Tensor gelu(const torch::Tensor& x, bool tanh_approximation) {
#ifdef ATTNZOO_HAVE_DNNL
  if (gelu_uses_dnnl(x)) return GeluFn::apply(x, tanh_approximation);
#endif
  return tanh_approximation ? at::gelu(x, "tanh") : at::gelu(x);
}

}  // namespace attnzoo::models

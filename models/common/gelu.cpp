#include "models/common/gelu.h"

#include <ATen/Parallel.h>

#include "models/common/avx512_math.h"
#include "models/common/kernel_fn.h"

#ifdef ATTNZOO_HAVE_DNNL
#include <mutex>
#include <unordered_map>

#include "models/common/dnnl_runtime.h"
#endif

namespace attnzoo::models {

// The AVX-512 kernels below (fp32 or bf16 on a CPU that has AVX-512 BF16), oneDNN's eltwise
// primitives (bf16 elsewhere, in builds with oneDNN), or ATen.
GeluKernel gelu_kernel(const torch::Tensor& x) {
  if (!x.device().is_cpu() || x.numel() == 0) return GeluKernel::aten;
  const auto type = x.scalar_type();
  if (type != torch::kFloat && type != torch::kBFloat16) return GeluKernel::aten;
#ifdef ATTNZOO_HAVE_AVX512_KERNELS
  if (simd::has_avx512_bf16()) return GeluKernel::avx512;
#endif
#ifdef ATTNZOO_HAVE_DNNL
  if (type == torch::kBFloat16) return GeluKernel::dnnl;
#endif
  return GeluKernel::aten;
}

namespace {

#ifdef ATTNZOO_HAVE_AVX512_KERNELS
using namespace simd;

ATTNZOO_AVX512_WARNINGS_OFF

// GELU (kDerivative false) or GELU' (true) of 16 floats.
// Exact GELU: x Φ(x) and Φ(x) + x φ(x), with erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7,
// the approximation ATen's vectorized fp32 erf uses too), whose e^(-x²/2) is also φ's; Φ for x < 0
// is taken from the small side, so the negative tail keeps its relative accuracy.
// Tanh GELU: with u = √(2/π)(x + 0.044715 x³) and e = e^(-2|u|), 1 + tanh u and 1 - tanh² u are
// written in e so that neither cancels.
template <bool kTanh, bool kDerivative>
ATTNZOO_AVX512 inline __m512 gelu16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  if constexpr (!kTanh) {
    const __m512 e = exp16(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f)));
    const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));  // |x| / √2
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), one));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    const __m512 small = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(p, t), e), half);  // Φ(-|x|) = (1 - erf(z)) / 2
    const __m512 cdf = _mm512_mask_blend_ps(negative, _mm512_sub_ps(one, small), small);
    if constexpr (!kDerivative) return _mm512_mul_ps(x, cdf);
    return _mm512_fmadd_ps(_mm512_mul_ps(x, e), _mm512_set1_ps(0.39894228040143268f), cdf);  // + x e / √(2π)
  } else {
    const __m512 c = _mm512_set1_ps(0.79788456080286536f), k = _mm512_set1_ps(0.044715f);
    const __m512 x2 = _mm512_mul_ps(x, x);
    const __m512 u = _mm512_mul_ps(_mm512_mul_ps(c, x), _mm512_fmadd_ps(k, x2, one));
    const __m512 e = exp16(_mm512_mul_ps(_mm512_abs_ps(u), _mm512_set1_ps(-2.0f)));
    const __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e));  // 1 / (1 + e)
    // (1 + tanh u) / 2: 1/(1+e) for u >= 0, e/(1+e) for u < 0 (u has x's sign).
    const __m512 half_one_plus_tanh = _mm512_mask_mul_ps(r, negative, r, e);
    if constexpr (!kDerivative) return _mm512_mul_ps(x, half_one_plus_tanh);
    const __m512 half_sech2 = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(r, r), r), e);  // (1 - tanh² u) / 2 = 2e / (1+e)²
    const __m512 du = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_set1_ps(3.0f * 0.044715f), x2, one));
    return _mm512_fmadd_ps(_mm512_mul_ps(x, half_sech2), du, half_one_plus_tanh);
  }
}

template <bool kTanh, typename T>
ATTNZOO_AVX512 void gelu_forward_avx512(const T* x, T* y, int64_t begin, int64_t end) {
  for (int64_t j = begin; j < end; j += 16) {
    const auto m = first_lanes(end - j);
    store16(y + j, gelu16<kTanh, false>(load16(x + j, m)), m);
  }
}

template <bool kTanh, typename T>
ATTNZOO_AVX512 void gelu_backward_avx512(const T* x, const T* g, T* out, int64_t begin, int64_t end) {
  for (int64_t j = begin; j < end; j += 16) {
    const auto m = first_lanes(end - j);
    store16(out + j, _mm512_mul_ps(load16(g + j, m), gelu16<kTanh, true>(load16(x + j, m))), m);
  }
}
ATTNZOO_AVX512_WARNINGS_ON

constexpr int64_t kGrain = 1 << 14;

// y = GELU(x), and gx = g · GELU'(x) from the saved x (flag: the tanh approximation).
struct GeluKernels {
  static constexpr const char* kName = "gelu";
  static constexpr const char* kBackwardName = "gelu_backward";
  static constexpr bool kSavesOutput = false;

  template <typename T>
  static void forward(const torch::Tensor& x, torch::Tensor& y, bool tanh_approximation) {
    const T* xp = x.data_ptr<T>();
    T* yp = y.data_ptr<T>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
      if (tanh_approximation) gelu_forward_avx512<true>(xp, yp, b, e);
      else gelu_forward_avx512<false>(xp, yp, b, e);
    });
  }

  template <typename T>
  static void backward(const torch::Tensor& x, const torch::Tensor& g, torch::Tensor& gx, bool tanh_approximation) {
    const T* xp = x.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    T* op = gx.data_ptr<T>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
      if (tanh_approximation) gelu_backward_avx512<true>(xp, gp, op, b, e);
      else gelu_backward_avx512<false>(xp, gp, op, b, e);
    });
  }
};
#endif

#ifdef ATTNZOO_HAVE_DNNL
using dnnl::memory;

// oneDNN's element-wise primitives for one length and kind, forward and backward, created once:
// making a primitive costs far more than running it.
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

// bf16 on CPUs without AVX-512 BF16 (LibTorch 1.13's bf16 GELU evaluates erf/tanh scalar by scalar).
struct GeluDnnlKernels {
  static constexpr const char* kName = "dnnl_gelu";
  static constexpr const char* kBackwardName = "dnnl_gelu_backward";
  static constexpr bool kSavesOutput = false;

  template <typename T>
  static void forward(const torch::Tensor& x, torch::Tensor& y, bool tanh_approximation) {
    TORCH_CHECK(x.scalar_type() == torch::kBFloat16, "oneDNN GELU runs bf16 only");
    dnnl_run(cache().get(x.numel(), tanh_approximation).forward, {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DST, wrap(y)}});
  }

  template <typename T>
  static void backward(const torch::Tensor& x, const torch::Tensor& g, torch::Tensor& gx, bool tanh_approximation) {
    TORCH_CHECK(x.scalar_type() == torch::kBFloat16, "oneDNN GELU runs bf16 only");
    dnnl_run(cache().get(x.numel(), tanh_approximation).backward,
             {{DNNL_ARG_SRC, wrap(x)}, {DNNL_ARG_DIFF_DST, wrap(g)}, {DNNL_ARG_DIFF_SRC, wrap(gx)}});
  }
};
#endif

}  // namespace

torch::Tensor gelu(const torch::Tensor& x, bool tanh_approximation) {
  switch (gelu_kernel(x)) {
#ifdef ATTNZOO_HAVE_AVX512_KERNELS
    case GeluKernel::avx512: return KernelFn<GeluKernels>::apply(x, tanh_approximation);
#endif
#ifdef ATTNZOO_HAVE_DNNL
    case GeluKernel::dnnl: return KernelFn<GeluDnnlKernels>::apply(x, tanh_approximation);
#endif
    default: break;
  }
  return tanh_approximation ? at::gelu(x, "tanh") : at::gelu(x);
}

}  // namespace attnzoo::models

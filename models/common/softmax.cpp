#include "models/common/softmax.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>

#include "models/common/attention.h"
#include "models/common/avx512_math.h"
#include "models/common/kernel_fn.h"

namespace attnzoo::models {
namespace {

#ifdef ATTNZOO_HAVE_AVX512_KERNELS
using namespace simd;

ATTNZOO_AVX512_WARNINGS_OFF

// One row of Tk scores, of which the first n are seen: y = softmax over those n, 0 after them.
// buf holds the n exponentials in fp32, so that bf16 output is rounded once.
template <typename T>
ATTNZOO_AVX512 void softmax_row(const T* x, T* y, float* buf, int64_t n, int64_t Tk) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = first_lanes(n - j);
    mx = _mm512_mask_max_ps(mx, m, mx, load16(x + j, m));
  }
  const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 s = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = first_lanes(n - j);
    const __m512 e = exp16(_mm512_sub_ps(load16(x + j, m), vmax));
    _mm512_mask_storeu_ps(buf + j, m, e);
    s = _mm512_mask_add_ps(s, m, s, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = first_lanes(n - j);
    store16(y + j, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, buf + j), inv), m);
  }
  std::fill(y + n, y + Tk, T(0.0f));
}

// gx = y (g - Σ g y) over the first n entries, 0 after them (where y is 0).
template <typename T>
ATTNZOO_AVX512 void softmax_backward_row(const T* y, const T* g, T* gx, int64_t n, int64_t Tk) {
  __m512 d = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = first_lanes(n - j);
    d = _mm512_fmadd_ps(load16(g + j, m), load16(y + j, m), d);  // masked lanes load 0
  }
  const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(d));
  for (int64_t j = 0; j < n; j += 16) {
    const auto m = first_lanes(n - j);
    store16(gx + j, _mm512_mul_ps(load16(y + j, m), _mm512_sub_ps(load16(g + j, m), dot)), m);
  }
  std::fill(gx + n, gx + Tk, T(0.0f));
}
ATTNZOO_AVX512_WARNINGS_ON

// Keys seen by row r of the (rows, Tk) view: all, or under the causal mask of a (Tq, Tk) matrix.
int64_t seen(int64_t r, int64_t Tq, int64_t Tk, bool causal) {
  return causal ? std::min(Tk, r % Tq + 1 + Tk - Tq) : Tk;
}

// Rows per task: enough work per task to be worth a thread.
int64_t grain(int64_t Tk) { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(Tk, 1)); }

// y = softmax(x), and gx from the saved y (flag: causal).
struct SoftmaxKernels {
  static constexpr const char* kName = "attention_softmax";
  static constexpr const char* kBackwardName = "attention_softmax_backward";
  static constexpr bool kSavesOutput = true;

  template <typename T>
  static void forward(const torch::Tensor& x, torch::Tensor& y, bool causal) {
    const int64_t Tk = x.size(-1), Tq = x.size(-2), rows = x.numel() / Tk;
    const T* xp = x.data_ptr<T>();
    T* yp = y.data_ptr<T>();
    at::parallel_for(0, rows, grain(Tk), [&](int64_t r0, int64_t r1) {
      std::vector<float> buf(static_cast<size_t>(Tk));
      for (int64_t r = r0; r < r1; ++r) softmax_row(xp + r * Tk, yp + r * Tk, buf.data(), seen(r, Tq, Tk, causal), Tk);
    });
  }

  template <typename T>
  static void backward(const torch::Tensor& y, const torch::Tensor& g, torch::Tensor& gx, bool causal) {
    const int64_t Tk = y.size(-1), Tq = y.size(-2), rows = y.numel() / Tk;
    const T* yp = y.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    T* op = gx.data_ptr<T>();
    at::parallel_for(0, rows, grain(Tk), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        softmax_backward_row(yp + r * Tk, gp + r * Tk, op + r * Tk, seen(r, Tq, Tk, causal), Tk);
    });
  }
};
#endif

}  // namespace

bool attention_softmax_uses_own_kernel(const torch::Tensor& x) {
#ifdef ATTNZOO_HAVE_AVX512_KERNELS
  const auto type = x.scalar_type();
  return x.device().is_cpu() && (type == torch::kFloat || type == torch::kBFloat16) && x.dim() >= 2 &&
         x.numel() > 0 && simd::has_avx512_bf16();
#else
  (void)x;
  return false;
#endif
}

torch::Tensor attention_softmax(const torch::Tensor& x, bool causal) {
  TORCH_CHECK(x.dim() >= 2, "attention_softmax: expected (..., Tq, Tk) scores, got ", x.dim(), "-D");
  TORCH_CHECK(!causal || x.size(-2) <= x.size(-1), "causal attention needs Tq <= Tk, got ", x.size(-2), " > ",
              x.size(-1));
#ifdef ATTNZOO_HAVE_AVX512_KERNELS
  if (attention_softmax_uses_own_kernel(x)) return KernelFn<SoftmaxKernels>::apply(x, causal);
#endif
  if (!causal) return torch::softmax(x, -1);
  const auto allowed = causal_mask(x.size(-2), x.size(-1), x.device());
  return torch::softmax(x.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity()), -1);
}

}  // namespace attnzoo::models

#include "losses/fused_cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/Parallel.h>

#include "models/common/avx512_math.h"

namespace attnzoo::losses {
namespace {

float to_float(float x) { return x; }
float to_float(c10::BFloat16 x) { return static_cast<float>(x); }

// Portable rows: log-sum-exp of row r, and the gradient row exp(x - lse) · g with g subtracted at t.
template <typename T>
float row_lse(const T* x, int64_t V) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < V; ++j) m = std::max(m, to_float(x[j]));
  double s = 0.0;  // one running sum (the vector path keeps 16)
  for (int64_t j = 0; j < V; ++j) s += std::exp(to_float(x[j]) - m);
  return m + static_cast<float>(std::log(s));
}

template <typename T>
void row_grad(const T* x, T* out, int64_t V, float lse, float g) {
  for (int64_t j = 0; j < V; ++j) out[j] = static_cast<T>(std::exp(to_float(x[j]) - lse) * g);
}

#ifdef ATTNZOO_HAVE_AVX512_KERNELS
using namespace models::simd;

ATTNZOO_AVX512_WARNINGS_OFF

template <typename T>
ATTNZOO_AVX512 float row_lse_avx512(const T* x, int64_t V) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < V; j += 16) {
    const auto m = first_lanes(V - j);
    mx = _mm512_mask_max_ps(mx, m, mx, load16(x + j, m));
  }
  const float row_max = _mm512_reduce_max_ps(mx);
  const __m512 vmax = _mm512_set1_ps(row_max);
  __m512 s = _mm512_setzero_ps();
  for (int64_t j = 0; j < V; j += 16) {
    const auto m = first_lanes(V - j);
    s = _mm512_mask_add_ps(s, m, s, exp16(_mm512_sub_ps(load16(x + j, m), vmax)));
  }
  return row_max + std::log(_mm512_reduce_add_ps(s));
}

template <typename T>
ATTNZOO_AVX512 void row_grad_avx512(const T* x, T* out, int64_t V, float lse, float g) {
  const __m512 vlse = _mm512_set1_ps(lse), vg = _mm512_set1_ps(g);
  for (int64_t j = 0; j < V; j += 16) {
    const auto m = first_lanes(V - j);
    store16(out + j, _mm512_mul_ps(exp16(_mm512_sub_ps(load16(x + j, m), vlse)), vg), m);
  }
}
ATTNZOO_AVX512_WARNINGS_ON

bool has_avx512() { return models::simd::has_avx512_bf16(); }
#else
bool has_avx512() { return false; }
template <typename T>
float row_lse_avx512(const T* x, int64_t V) { return row_lse(x, V); }
template <typename T>
void row_grad_avx512(const T* x, T* out, int64_t V, float lse, float g) { row_grad(x, out, V, lse, g); }
#endif

template <typename T>
void forward_rows(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index, bool fast,
                  float* lse, double* row_loss) {
  const int64_t N = logits.size(0), V = logits.size(1);
  const T* x = logits.data_ptr<T>();
  const int64_t* t = targets.data_ptr<int64_t>();
  at::parallel_for(0, N, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (t[r] == ignore_index) {
        lse[r] = 0.0f, row_loss[r] = 0.0;
        continue;
      }
      const T* row = x + r * V;
      lse[r] = fast ? row_lse_avx512(row, V) : row_lse(row, V);
      row_loss[r] = static_cast<double>(lse[r]) - static_cast<double>(to_float(row[t[r]]));
    }
  });
}

template <typename T>
void backward_rows(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index, bool fast,
                   const float* lse, float g, torch::Tensor& grad) {
  const int64_t N = logits.size(0), V = logits.size(1);
  const T* x = logits.data_ptr<T>();
  T* out = grad.data_ptr<T>();
  const int64_t* t = targets.data_ptr<int64_t>();
  at::parallel_for(0, N, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* o = out + r * V;
      if (t[r] == ignore_index) {
        std::fill(o, o + V, T(0.0f));
        continue;
      }
      const T* row = x + r * V;
      if (fast) row_grad_avx512(row, o, V, lse[r], g);
      else row_grad(row, o, V, lse[r], g);
      // The target's entry (p - 1) · g, from fp32 rather than from its rounded p · g.
      o[t[r]] = static_cast<T>((std::exp(to_float(row[t[r]]) - lse[r]) - 1.0f) * g);
    }
  });
}

struct FusedCrossEntropyFn : torch::autograd::Function<FusedCrossEntropyFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits_in,
                               const torch::Tensor& targets_in, int64_t ignore_index, bool portable) {
    RECORD_FUNCTION("fused_cross_entropy", std::vector<c10::IValue>());
    const auto logits = logits_in.contiguous();
    const auto targets = targets_in.to(torch::kLong).contiguous();
    const int64_t N = logits.size(0), V = logits.size(1);
    const auto bad = targets.ne(ignore_index).logical_and(targets.lt(0).logical_or(targets.ge(V)));
    TORCH_CHECK(!bad.any().item<bool>(), "cross-entropy: a target outside [0, ", V, ") (and not ignore_index ",
                ignore_index, ")");
    auto lse = torch::empty({N}, logits.options().dtype(torch::kFloat));
    auto row_loss = torch::empty({N}, logits.options().dtype(torch::kDouble));
    const bool fast = !portable && has_avx512();
    if (logits.scalar_type() == torch::kBFloat16)
      forward_rows<c10::BFloat16>(logits, targets, ignore_index, fast, lse.data_ptr<float>(), row_loss.data_ptr<double>());
    else
      forward_rows<float>(logits, targets, ignore_index, fast, lse.data_ptr<float>(), row_loss.data_ptr<double>());
    const int64_t count = targets.ne(ignore_index).sum().item<int64_t>();
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["count"] = count;
    ctx->saved_data["fast"] = fast;
    const double total = row_loss.sum().item<double>();
    return torch::full({}, count > 0 ? total / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN(),
                       logits.options().dtype(torch::kFloat));
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    RECORD_FUNCTION("fused_cross_entropy_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const auto& logits = saved[0];
    const auto& targets = saved[1];
    const auto& lse = saved[2];
    const int64_t count = ctx->saved_data["count"].toInt();
    const float g = count > 0 ? grads[0].item<float>() / static_cast<float>(count) : 0.0f;
    auto grad = torch::empty_like(logits);
    const int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const bool fast = ctx->saved_data["fast"].toBool();
    if (logits.scalar_type() == torch::kBFloat16)
      backward_rows<c10::BFloat16>(logits, targets, ignore_index, fast, lse.data_ptr<float>(), g, grad);
    else
      backward_rows<float>(logits, targets, ignore_index, fast, lse.data_ptr<float>(), g, grad);
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool fused_cross_entropy_fits(const torch::Tensor& logits) {
  return logits.device().is_cpu() && logits.dim() == 2 && logits.size(1) > 0 &&
         (logits.scalar_type() == torch::kFloat || logits.scalar_type() == torch::kBFloat16);
}

torch::Tensor fused_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index,
                                  bool portable) {
  TORCH_CHECK(fused_cross_entropy_fits(logits), "fused_cross_entropy: expects CPU logits (N, V) in fp32 or bf16, got ",
              logits.scalar_type(), " ", logits.sizes(), " on ", logits.device());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0), "fused_cross_entropy: targets (",
              logits.size(0), ") expected, got ", targets.sizes());
  return FusedCrossEntropyFn::apply(logits, targets, ignore_index, portable);
}

}  // namespace attnzoo::losses

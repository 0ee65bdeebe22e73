// AVX-512 building blocks shared by the hand-written element-wise kernels (models/common/gelu.cpp,
// losses/fused_cross_entropy.cpp): e^x for 16 floats, and masked loads and stores of 16 fp32 or
// bf16 values as fp32 lanes. Functions carry their own target attribute, so the files including
// this compile for any x86-64 and call them only after has_avx512_bf16() said yes.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#define ATTNZOO_HAVE_AVX512_KERNELS 1
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>

#include <c10/util/BFloat16.h>

#define ATTNZOO_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Around a file's kernels: GCC 12 warns about the _mm*_undefined_*() that its own intrinsics start
// from once they are inlined.
#define ATTNZOO_AVX512_WARNINGS_OFF                                   \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define ATTNZOO_AVX512_WARNINGS_ON _Pragma("GCC diagnostic pop")

namespace attnzoo::models::simd {

// Whether this CPU runs the kernels built from these helpers (AVX-512 F/BW/VL and BF16), unless the
// environment sets ATTNZOO_NO_AVX512 (tests of the fallback paths; a comparison run).
inline bool has_avx512_bf16() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16") &&
                          std::getenv("ATTNZOO_NO_AVX512") == nullptr;
  return yes;
}

ATTNZOO_AVX512_WARNINGS_OFF

// The mask of the first n (<= 16) lanes.
inline __mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1); }

// e^x for 16 floats: 2^(x·log2 e) split into 2^n · 2^f with |f| <= 1/2, 2^f by its Taylor series to
// degree 7 (relative error < 1e-7), 2^n applied by scalef (which also underflows to 0 cleanly).
ATTNZOO_AVX512 inline __m512 exp16(__m512 x) {
  const __m512 t = _mm512_max_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(-160.0f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.693147180559945309f));  // (t - n) ln 2
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

ATTNZOO_AVX512 inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
ATTNZOO_AVX512 inline __m512 load16(const c10::BFloat16* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
ATTNZOO_AVX512 inline void store16(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
ATTNZOO_AVX512 inline void store16(c10::BFloat16* p, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, (__m256i)_mm512_cvtneps_pbh(v));  // round to nearest even
}

ATTNZOO_AVX512_WARNINGS_ON

}  // namespace attnzoo::models::simd
#endif

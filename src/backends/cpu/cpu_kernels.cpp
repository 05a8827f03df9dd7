#include "backends/cpu/cpu_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace sluice::cpu {
namespace {

// Lanes [0, n) of an 8-float vector, for the tail of a row: every row is processed by the same
// vector code, so a value's result does not depend on where in a row it sits.
inline __m256i TailMask(size_t n) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane);
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float HorizontalMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x): x = n*ln2 + r with |r| <= ln2/2, exp(r) by its degree-7 Taylor polynomial (truncation
// below 1e-8 relative), 2^n built in the exponent bits. Inputs are clamped to the range where
// 2^n stays a normal float.
inline __m256 Exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 split so that n * kLn2Hi is exact in float.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), odd symmetry restored
// from the sign bit.
inline __m256 Erf8(__m256 x) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign_mask, x);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, one));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = Exp8(_mm256_mul_ps(_mm256_xor_ps(ax, sign_mask), ax));
  const __m256 y = _mm256_fnmadd_ps(p, e, one);
  return _mm256_or_ps(y, _mm256_and_ps(x, sign_mask));
}

inline __m256 Tanh8(__m256 x) {
  // 1 - 2 / (exp(2x) + 1): saturates cleanly to +-1 at the clamp of Exp8.
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = Exp8(_mm256_add_ps(x, x));
  return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}

inline __m256 Activate8(__m256 x, Activation act) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  switch (act) {
    case Activation::kGelu: {
      const __m256 e = Erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
      return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, e));
    }
    case Activation::kGeluTanh: {
      const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
      const __m256 inner = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286536f),
                                         _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
      return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, Tanh8(inner)));
    }
    case Activation::kRelu:
      return _mm256_max_ps(x, _mm256_setzero_ps());
    case Activation::kSilu: {
      const __m256 e = Exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
      return _mm256_div_ps(x, _mm256_add_ps(one, e));
    }
  }
  return x;
}

}  // namespace

void AddBias(float* x, size_t rows, size_t cols, size_t ld, const float* bias) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    for (size_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

void AddBiasActivation(float* x, size_t rows, size_t cols, size_t ld, const float* bias,
                       Activation act) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    size_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      const __m256 v = _mm256_add_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(bias + c));
      _mm256_storeu_ps(row + c, Activate8(v, act));
    }
    if (c < cols) {
      const __m256i m = TailMask(cols - c);
      const __m256 v =
          _mm256_add_ps(_mm256_maskload_ps(row + c, m), _mm256_maskload_ps(bias + c, m));
      _mm256_maskstore_ps(row + c, m, Activate8(v, act));
    }
  }
}

void AddBiasResidualLayerNorm(const float* x, const float* bias, const float* residual,
                              const float* gamma, const float* beta, float eps, size_t rows,
                              size_t cols, float* out) {
  const __m256i all = _mm256_set1_epi32(-1);
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* rr = residual ? residual + r * cols : nullptr;
    float* o = out + r * cols;
    // Pass 1: the summed input, kept in `out`, and its mean.
    __m256 sum = _mm256_setzero_ps();
    for (size_t c = 0; c < cols; c += 8) {
      const __m256i m = c + 8 <= cols ? all : TailMask(cols - c);
      __m256 v = _mm256_maskload_ps(xr + c, m);
      if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + c, m));
      if (rr) v = _mm256_add_ps(v, _mm256_maskload_ps(rr + c, m));
      _mm256_maskstore_ps(o + c, m, v);
      sum = _mm256_add_ps(sum, v);
    }
    const float mean = HorizontalSum(sum) / static_cast<float>(cols);
    // Pass 2: the variance around the mean (two passes: no cancellation for large means).
    const __m256 vmean = _mm256_set1_ps(mean);
    __m256 sq = _mm256_setzero_ps();
    for (size_t c = 0; c < cols; c += 8) {
      const __m256i m = c + 8 <= cols ? all : TailMask(cols - c);
      const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(o + c, m), vmean);
      const __m256 dm = _mm256_and_ps(d, _mm256_castsi256_ps(m));
      sq = _mm256_fmadd_ps(dm, dm, sq);
    }
    const float var = HorizontalSum(sq) / static_cast<float>(cols);
    const __m256 rstd = _mm256_set1_ps(1.0f / std::sqrt(var + eps));
    for (size_t c = 0; c < cols; c += 8) {
      const __m256i m = c + 8 <= cols ? all : TailMask(cols - c);
      const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(o + c, m), vmean), rstd);
      const __m256 y =
          _mm256_fmadd_ps(d, _mm256_maskload_ps(gamma + c, m), _mm256_maskload_ps(beta + c, m));
      _mm256_maskstore_ps(o + c, m, y);
    }
  }
}

void SoftmaxRow(float* x, size_t n) {
  const __m256i all = _mm256_set1_epi32(-1);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 vmax = neg_inf;
  for (size_t c = 0; c < n; c += 8) {
    const __m256i m = c + 8 <= n ? all : TailMask(n - c);
    const __m256 v =
        _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + c, m), _mm256_castsi256_ps(m));
    vmax = _mm256_max_ps(vmax, v);
  }
  const __m256 mx = _mm256_set1_ps(HorizontalMax(vmax));
  __m256 sum = _mm256_setzero_ps();
  for (size_t c = 0; c < n; c += 8) {
    const __m256i m = c + 8 <= n ? all : TailMask(n - c);
    const __m256 e = _mm256_and_ps(Exp8(_mm256_sub_ps(_mm256_maskload_ps(x + c, m), mx)),
                                   _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + c, m, e);
    sum = _mm256_add_ps(sum, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / HorizontalSum(sum));
  for (size_t c = 0; c < n; c += 8) {
    const __m256i m = c + 8 <= n ? all : TailMask(n - c);
    _mm256_maskstore_ps(x + c, m, _mm256_mul_ps(_mm256_maskload_ps(x + c, m), inv));
  }
}

void L2Normalize(float* x, size_t n) {
  // Accumulated in double: the norm of a pooled vector is computed once per sequence.
  double sq = 0.0;
  for (size_t i = 0; i < n; ++i) sq += static_cast<double>(x[i]) * x[i];
  // torch.nn.functional.normalize divides by max(norm, 1e-12).
  const double norm = std::max(std::sqrt(sq), 1e-12);
  const float inv = static_cast<float>(1.0 / norm);
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

void ExpVector(const float* x, size_t n, float* y) {
  const __m256i all = _mm256_set1_epi32(-1);
  for (size_t c = 0; c < n; c += 8) {
    const __m256i m = c + 8 <= n ? all : TailMask(n - c);
    _mm256_maskstore_ps(y + c, m, Exp8(_mm256_maskload_ps(x + c, m)));
  }
}

void ActivationVector(const float* x, size_t n, Activation act, float* y) {
  const __m256i all = _mm256_set1_epi32(-1);
  for (size_t c = 0; c < n; c += 8) {
    const __m256i m = c + 8 <= n ? all : TailMask(n - c);
    _mm256_maskstore_ps(y + c, m, Activate8(_mm256_maskload_ps(x + c, m), act));
  }
}

}  // namespace sluice::cpu

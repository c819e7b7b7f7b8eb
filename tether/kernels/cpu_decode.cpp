// Paged decode attention on CPU: one query token per sequence, read straight from the paged KV cache.
//
//   q            [S, Hq, D]          float32 or bfloat16
//   k_cache      [NB, BS, Hkv, D]    the same dtype as q
//   v_cache      [NB, BS, Hkv, D]
//   block_table  [S, maxB] int32     page b of sequence s holds its tokens b*BS .. b*BS + BS - 1
//   kv_lens      [S] int32           tokens cached for sequence s (the new one included)
//   -> out       [S, Hq, D]          q's dtype; query head h reads kv head h / (Hq / Hkv)
//
// One task per sequence: every K and V row is read once, in place (no gathered copy), converted to float32
// once for all the query heads that share it. Softmax is exact (the scores of the whole sequence are kept, then
// normalised), not online. Tasks run on torch's intra-op threads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

inline float to_float(float x) { return x; }
inline float to_float(at::BFloat16 x) {
  uint32_t bits = static_cast<uint32_t>(x.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}
inline void store(float* dst, float x) { *dst = x; }
inline void store(at::BFloat16* dst, float x) { *dst = at::BFloat16(x); }  // round to nearest even

template <typename T>
void decode(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
            const at::Tensor& block_table, const at::Tensor& kv_lens, double scale, at::Tensor& out) {
  const int64_t S = q.size(0), Hq = q.size(1), D = q.size(2);
  const int64_t BS = k_cache.size(1), Hkv = k_cache.size(2);
  const int64_t G = Hq / Hkv;
  const int64_t maxB = block_table.size(1);
  const T* qp = q.data_ptr<T>();
  const T* kp = k_cache.data_ptr<T>();
  const T* vp = v_cache.data_ptr<T>();
  const int32_t* bt = block_table.data_ptr<int32_t>();
  const int32_t* lens = kv_lens.data_ptr<int32_t>();
  T* op = out.data_ptr<T>();
  const int64_t page_stride = BS * Hkv * D, row_stride = Hkv * D;
  const float fscale = static_cast<float>(scale);

  // One task per sequence: every token's K row (all kv heads, Hkv * D contiguous values) is read once, in order,
  // for all Hq query heads; then every V row once. Sequential rows keep the hardware prefetcher busy on a cold
  // cache (the case in a real step, where the weights evict the previous layer's KV).
  at::parallel_for(0, S, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(Hq * D), acc(Hq * D), row(Hkv * D), scores;
    for (int64_t s = begin; s < end; ++s) {
      const int64_t L = lens[s];
      if (L <= 0) {
        for (int64_t i = 0; i < Hq * D; ++i) store(op + s * Hq * D + i, 0.0f);
        continue;
      }
      for (int64_t i = 0; i < Hq * D; ++i) qf[i] = to_float(qp[s * Hq * D + i]) * fscale;
      scores.resize(Hq * L);  // [Hq, L]
      for (int64_t t = 0; t < L; ++t) {
        const T* krow = kp + bt[s * maxB + t / BS] * page_stride + (t % BS) * row_stride;
#pragma omp simd
        for (int64_t i = 0; i < Hkv * D; ++i) row[i] = to_float(krow[i]);
        for (int64_t hq = 0; hq < Hq; ++hq) {
          const float* qh = qf.data() + hq * D;
          const float* kh = row.data() + (hq / G) * D;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += qh[d] * kh[d];
          scores[hq * L + t] = dot;
        }
      }
      for (int64_t hq = 0; hq < Hq; ++hq) {
        float* sh = scores.data() + hq * L;
        float mx = sh[0];  // not -inf: the kernel is compiled with -ffast-math (finite math only)
#pragma omp simd reduction(max : mx)
        for (int64_t t = 1; t < L; ++t) mx = sh[t] > mx ? sh[t] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t t = 0; t < L; ++t) {
          sh[t] = std::exp(sh[t] - mx);
          sum += sh[t];
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t t = 0; t < L; ++t) sh[t] *= inv;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t t = 0; t < L; ++t) {
        const T* vrow = vp + bt[s * maxB + t / BS] * page_stride + (t % BS) * row_stride;
#pragma omp simd
        for (int64_t i = 0; i < Hkv * D; ++i) row[i] = to_float(vrow[i]);
        for (int64_t hq = 0; hq < Hq; ++hq) {
          const float p = scores[hq * L + t];
          const float* vh = row.data() + (hq / G) * D;
          float* ah = acc.data() + hq * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) ah[d] += p * vh[d];
        }
      }
      for (int64_t i = 0; i < Hq * D; ++i) store(op + s * Hq * D + i, acc[i]);
    }
  });
}

at::Tensor paged_decode(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                        const at::Tensor& block_table, const at::Tensor& kv_lens, double scale) {
  TORCH_CHECK(q.dim() == 3 && k_cache.dim() == 4 && v_cache.sizes() == k_cache.sizes(), "paged_decode: shapes");
  TORCH_CHECK(q.device().is_cpu() && k_cache.device().is_cpu(), "paged_decode: CPU tensors only");
  TORCH_CHECK(q.scalar_type() == k_cache.scalar_type() && v_cache.scalar_type() == k_cache.scalar_type(),
              "paged_decode: q and the caches must share a dtype");
  TORCH_CHECK(q.size(2) == k_cache.size(3) && q.size(1) % k_cache.size(2) == 0, "paged_decode: heads");
  TORCH_CHECK(block_table.scalar_type() == at::kInt && kv_lens.scalar_type() == at::kInt,
              "paged_decode: block_table and kv_lens must be int32");
  TORCH_CHECK(block_table.size(0) == q.size(0) && kv_lens.size(0) == q.size(0), "paged_decode: batch");
  auto qc = q.contiguous();
  auto kc = k_cache.contiguous();
  auto vc = v_cache.contiguous();
  auto btc = block_table.contiguous();
  auto lc = kv_lens.contiguous();
  auto out = at::empty_like(qc);
  if (q.scalar_type() == at::kFloat) {
    decode<float>(qc, kc, vc, btc, lc, scale, out);
  } else if (q.scalar_type() == at::kBFloat16) {
    decode<at::BFloat16>(qc, kc, vc, btc, lc, scale, out);
  } else {
    TORCH_CHECK(false, "paged_decode: float32 or bfloat16 only, got ", q.scalar_type());
  }
  return out;
}

}  // namespace

TORCH_LIBRARY(tether_cpu, m) {
  m.def("paged_decode(Tensor q, Tensor k_cache, Tensor v_cache, Tensor block_table, Tensor kv_lens, float scale) -> Tensor");
  m.impl("paged_decode", c10::DispatchKey::CPU, TORCH_FN(paged_decode));
}

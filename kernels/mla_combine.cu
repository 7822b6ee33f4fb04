// Merges the partial outputs of split requests (each normalized by its own sum, in the output's dtype) by their fp32
// LSE, in fp32; requests that were not split were written by the decode kernel directly and are skipped.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "mla_launch.h"
#include "mla_params.h"
#include "mla_pipeline.cuh"
#include "mla_schedule.cuh"

namespace mla {

// The two-value type of Element (bf16 or fp16).
template <typename Element>
using PairOf = std::conditional_t<std::is_same_v<Element, __half>, __half2, __nv_bfloat162>;

// Four floats as Element, stored as 8 bytes.
template <typename Element>
__device__ __forceinline__ void store4(Element* dst, float4 v) {
  PairOf<Element> lo, hi;
  if constexpr (std::is_same_v<Element, __half>) {
    lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
  } else {
    lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  }
  *reinterpret_cast<uint2*>(dst) = make_uint2(*reinterpret_cast<uint32_t*>(&lo), *reinterpret_cast<uint32_t*>(&hi));
}

// Loads through the non-coherent path (the decode grid that wrote the data has completed), volatile so that the
// compiler keeps each load where a batch issues it: it otherwise sinks loads to their first use, behind the LSE loop,
// which costs one more memory round trip.
__device__ __forceinline__ uint2 load_8_bytes(const void* src) {
  uint2 v;
  asm volatile("ld.global.nc.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(src));
  return v;
}
__device__ __forceinline__ float load_float(const float* src) {
  float v;
  asm volatile("ld.global.nc.f32 %0, [%1];" : "=f"(v) : "l"(src));
  return v;
}

// Four consecutive partial values (loaded as 8 bytes) as floats. Rows stay packed until their weight is applied:
// a batch in flight then takes two registers a vector, not four.
template <typename Element>
__device__ __forceinline__ float4 unpack4(uint2 packed) {
  const auto& pairs = *reinterpret_cast<const PairOf<Element>(*)[2]>(&packed);
  float2 lo, hi;
  if constexpr (std::is_same_v<Element, __half>) {
    lo = __half22float2(pairs[0]), hi = __half22float2(pairs[1]);
  } else {
    lo = __bfloat1622float2(pairs[0]), hi = __bfloat1622float2(pairs[1]);
  }
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}

// Two shapes of CTA, picked on the host from how many splits a request can have:
// - kSplitWarps = 8 (few requests, each possibly split over ~#SM parts): a CTA merges one row's 128-column slice
//   (blockIdx.z; kVectors = 1) or, with rows enough to fill the GPU (kWholeRowMinRows), the whole row (kVectors =
//   4: a quarter of the CTAs, each doing its launch, plan read and LSE pass once for 512 columns), its eight warps
//   taking every eighth split, so ~#SM loads are in flight at once instead of one chain per row; the warps' sums
//   meet in shared memory.
// - kSplitWarps = 1 (many requests, few splits each): a CTA covers eight rows, a warp per row and all
//   512 columns (four 4-value vectors per lane per split).
constexpr int kCombineThreads = 256;
constexpr int kCombineWarps = kCombineThreads / 32;
constexpr int kColumnSlice = 128;   // columns a warp covers per 4-value vector: 32 lanes x 4

// Running log2-sum-exp2 (max, sum of 2^(x - max)) of a stream of values; -inf values add nothing.
__device__ __forceinline__ void merge_log_sum_exp(float& max, float& sum, float other_max, float other_sum) {
  const float new_max = fmaxf(max, other_max);
  if (new_max == -INFINITY) return;
  sum = sum * exp2f(max - new_max) + other_sum * exp2f(other_max - new_max);
  max = new_max;
}
__device__ __forceinline__ void add_to_log_sum_exp(float& max, float& sum, float x) {
  merge_log_sum_exp(max, sum, x, 1.f);
}

// This warp's partial rows base, base + kSplitWarps, ... (kBatch of them, indices clamped rather than predicated so
// that every load is in flight at once; the extra ones get weight 0).
template <int kBatch, int kSplitWarps, int kVectors, typename Element>
__device__ __forceinline__ void load_rows(const Element* partials, int base, int num_splits, int64_t split_stride,
                                          uint2 (&x)[kBatch][kVectors]) {
#pragma unroll
  for (int i = 0; i < kBatch; ++i) {
    const int s = min(base + kSplitWarps * i, num_splits - 1);
#pragma unroll
    for (int v = 0; v < kVectors; ++v) x[i][v] = load_8_bytes(partials + s * split_stride + v * kColumnSlice);
  }
}

// The LSEs of splits base + kStride i (the same clamping).
template <int kBatch, int kStride>
__device__ __forceinline__ void load_lses(const float* lse, int base, int num_splits, int rows, float (&l)[kBatch]) {
#pragma unroll
  for (int i = 0; i < kBatch; ++i) l[i] = load_float(lse + int64_t(min(base + kStride * i, num_splits - 1)) * rows);
}

// Folds the LSEs of splits base + kStride i, as load_lses loaded them (the clamped extras dropped), into a running
// log-sum-exp.
template <int kStride, int kBatch>
__device__ __forceinline__ void fold_lses(const float (&l)[kBatch], int base, int num_splits, float& max, float& sum) {
#pragma unroll
  for (int i = 0; i < kBatch; ++i) add_to_log_sum_exp(max, sum, base + kStride * i < num_splits ? l[i] : -INFINITY);
}

// acc += each loaded partial row weighted by 2^(its LSE - the row's total LSE).
template <typename Element, int kBatch, int kSplitWarps, int kVectors>
__device__ __forceinline__ void accumulate_batch(int base, int num_splits, float total_lse, const float (&lse)[kBatch],
                                                 const uint2 (&x)[kBatch][kVectors], float4 (&acc)[kVectors]) {
#pragma unroll
  for (int i = 0; i < kBatch; ++i) {
    const float w = base + kSplitWarps * i < num_splits ? exp2f(lse[i] - total_lse) : 0.f;
#pragma unroll
    for (int v = 0; v < kVectors; ++v) {
      const float4 y = unpack4<Element>(x[i][v]);
      acc[v].x += w * y.x;
      acc[v].y += w * y.y;
      acc[v].z += w * y.z;
      acc[v].w += w * y.w;
    }
  }
}

// Min-blocks 1: with the default, ptxas capped registers for occupancy and interleaved each load with its use,
// one memory round trip per split; with room it issues a whole batch of loads first.
template <typename Element, int kSplitWarps, int kVectors>   // kVectors: 4-value vectors a lane a split
__global__ void __launch_bounds__(kCombineThreads, 1) mla_combine_kernel(const __grid_constant__ DecodeParams p) {
  static_assert(kVectors == kHeadDimV / kColumnSlice || (kVectors == 1 && kSplitWarps > 1));
  constexpr int kBatch = kSplitWarps == 1 ? 4 : 8;                              // partial rows in flight per lane
  constexpr int kLseBatch = 5;   // LSEs in flight per lane: 32 x 5 covers every split of a 132-SM Hopper
  constexpr int kRowsPerCta = kCombineWarps / kSplitWarps;
  // The plan is read before the wait: the kernel that wrote it finished before the decode kernel passed its own
  // wait, and the decode kernel lets this one launch only after that.
  const int req = blockIdx.x;
  const int split_base = p.num_splits[req];
  const int num_splits = p.num_splits[req + 1] - split_base;
  if (num_splits <= 1) return;   // written by the decode kernel directly
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = blockIdx.y * kRowsPerCta + warp / kSplitWarps;
  if (row >= p.rows) return;     // with kSplitWarps = 8 the whole CTA shares one row
  const int split_warp = warp % kSplitWarps;
  const int column = (kVectors == 1 ? blockIdx.z * kColumnSlice : 0) + lane * 4;
  wait_for_previous_grid();      // the decode kernel's partials
  const float* lse = p.lse_accum + int64_t(split_base) * p.rows + row;
  const Element* partials =
      static_cast<const Element*>(p.out_accum) + (int64_t(split_base) * p.rows + row) * kHeadDimV + column;

  // Every warp computes the row's log-sum-exp itself (online), so no cross-warp traffic comes before the merge. With
  // at most 32 x kLseBatch splits (always, with one part per SM) every split's LSE and this warp's first batch of
  // partial rows are loaded at once, so the merge costs one memory round trip after the decode kernel ends (the
  // LSEs only weight the rows). Indices are clamped rather than predicated (extra values dropped after), so that
  // every load is in flight at once.
  const int64_t split_stride = int64_t(p.rows) * kHeadDimV;
  float weight[kBatch];
  uint2 x[kBatch][kVectors];
  float max_lse = -INFINITY, sum = 0.f;
  // A row split at most kBatch ways (one warp a row): every lane gets every split's LSE from the weight shuffles
  // and folds them itself, no exchange.
  const bool fold_in_each_lane = kSplitWarps == 1 && num_splits <= kBatch;
  if (num_splits <= 32 * kLseBatch) {
    float l[kLseBatch];
    load_lses<kLseBatch, 32>(lse, lane, num_splits, p.rows, l);
    load_rows<kBatch, kSplitWarps>(partials, split_warp, num_splits, split_stride, x);
    // The first batch's LSEs from the lanes that loaded them: split split_warp + kSplitWarps i is held by lane
    // (split_warp + kSplitWarps i) % 32 in l[kSplitWarps i / 32] (kSplitWarps divides 32).
    static_assert(32 % kSplitWarps == 0 && kSplitWarps * kBatch <= 32 * kLseBatch);
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      weight[i] = __shfl_sync(0xffffffff, l[kSplitWarps * i / 32], (split_warp + kSplitWarps * i) % 32);
    }
    if (!fold_in_each_lane) fold_lses<32>(l, lane, num_splits, max_lse, sum);
  } else {
    for (int base = lane; base < num_splits; base += 32 * kLseBatch) {
      float l[kLseBatch];
      load_lses<kLseBatch, 32>(lse, base, num_splits, p.rows, l);
      fold_lses<32>(l, base, num_splits, max_lse, sum);
    }
    load_rows<kBatch, kSplitWarps>(partials, split_warp, num_splits, split_stride, x);
    load_lses<kBatch, kSplitWarps>(lse, split_warp, num_splits, p.rows, weight);
  }
  if (fold_in_each_lane) {
    fold_lses<1>(weight, 0, num_splits, max_lse, sum);   // one warp a row: weight[i] is split i's
  } else {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      const float other_max = __shfl_xor_sync(0xffffffff, max_lse, offset);
      const float other_sum = __shfl_xor_sync(0xffffffff, sum, offset);
      merge_log_sum_exp(max_lse, sum, other_max, other_sum);
    }
  }
  const bool empty = max_lse == -INFINITY;
  const float total_lse = empty ? 0.f : max_lse + __log2f(sum);

  float4 acc[kVectors];
#pragma unroll
  for (int v = 0; v < kVectors; ++v) acc[v] = make_float4(0.f, 0.f, 0.f, 0.f);
  if (!empty) {
    accumulate_batch<Element, kBatch, kSplitWarps>(split_warp, num_splits, total_lse, weight, x, acc);
    for (int base = split_warp + kSplitWarps * kBatch; base < num_splits; base += kSplitWarps * kBatch) {
      load_rows<kBatch, kSplitWarps>(partials, base, num_splits, split_stride, x);
      load_lses<kBatch, kSplitWarps>(lse, base, num_splits, p.rows, weight);
      accumulate_batch<Element, kBatch, kSplitWarps>(base, num_splits, total_lse, weight, x, acc);
    }
  }
  if constexpr (kSplitWarps > 1) {
    static_assert(kRowsPerCta == 1);
    __shared__ float4 partial[kCombineWarps][kVectors][32];
#pragma unroll
    for (int v = 0; v < kVectors; ++v) partial[warp][v][lane] = acc[v];
    __syncthreads();
    if (warp != 0) return;
#pragma unroll
    for (int w = 1; w < kCombineWarps; ++w) {
#pragma unroll
      for (int v = 0; v < kVectors; ++v) {
        const float4 x = partial[w][v][lane];
        acc[v].x += x.x;
        acc[v].y += x.y;
        acc[v].z += x.z;
        acc[v].w += x.w;
      }
    }
  }
  Element* dst = static_cast<Element*>(p.out) + (int64_t(req) * p.rows + row) * kHeadDimV + column;
#pragma unroll
  for (int v = 0; v < kVectors; ++v) store4(dst + v * kColumnSlice, acc[v]);
  if (blockIdx.z == 0 && split_warp == 0 && lane == 0) store_final_lse(p, req, row, empty, total_lse);
}

// A request is split over at most num_parts parts. With fewer than kWideSplitRequests requests per part
// a request may have many splits: spread each row's splits over eight warps.
constexpr int kWideSplitRequests = 16;
// From this many rows (b x rows; two CTAs an SM of a 132-SM Hopper) the eight-warp CTAs merge whole rows: measured
// on the H200 (twenty-ninth session, v83a), whole rows took 16% off at 512 rows (b8/s1024/h64, 16 splits) and 9% at
// 256 (b4/s4096/h64), while at 16-128 rows with 64-132 splits the four times more CTAs of column slices were 1-2%
// faster. From half as many when the requests have few splits (fewer than 2 x kWideSplitRequests each; fifty-first
// session, v160b): b8/s8192/h16 (128 rows, 16 splits) 1.5% faster, b6/s8192/h32 (192 rows, 22) 3.7%.
constexpr int kWholeRowMinRows = 256;

bool merges_whole_rows(const DecodeParams& p) {
  const int64_t rows = int64_t(p.b) * p.rows;
  const bool few_splits = p.num_parts < 2 * kWideSplitRequests * int64_t(p.b);
  return rows >= kWholeRowMinRows || (few_splits && 2 * rows >= kWholeRowMinRows);
}

template <typename Element>
cudaError_t launch_combine(const DecodeParams& p, cudaStream_t stream) {
  constexpr int kAllVectors = kHeadDimV / kColumnSlice;
  if (int64_t(p.b) * kWideSplitRequests <= p.num_parts) {
    if (merges_whole_rows(p)) {
      return launch_with_pdl(mla_combine_kernel<Element, kCombineWarps, kAllVectors>, dim3(p.b, p.rows, 1),
                             dim3(kCombineThreads), 0, stream, p);
    }
    return launch_with_pdl(mla_combine_kernel<Element, kCombineWarps, 1>, dim3(p.b, p.rows, kAllVectors),
                           dim3(kCombineThreads), 0, stream, p);
  }
  const dim3 grid(p.b, (p.rows + kCombineWarps - 1) / kCombineWarps, 1);
  return launch_with_pdl(mla_combine_kernel<Element, 1, kAllVectors>, grid, dim3(kCombineThreads), 0, stream, p);
}

template cudaError_t launch_combine<__nv_bfloat16>(const DecodeParams&, cudaStream_t);
template cudaError_t launch_combine<__half>(const DecodeParams&, cudaStream_t);

}  // namespace mla

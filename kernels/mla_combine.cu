// Merges the fp32 partial outputs of split requests by their LSE; requests that were not split were
// written by the decode kernel directly and are skipped.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "mla_params.h"

namespace mla {

template <typename Element>
__device__ __forceinline__ void store4(Element* dst, float4 v);

template <>
__device__ __forceinline__ void store4<__nv_bfloat16>(__nv_bfloat16* dst, float4 v) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 packed = make_uint2(*reinterpret_cast<uint32_t*>(&lo), *reinterpret_cast<uint32_t*>(&hi));
  *reinterpret_cast<uint2*>(dst) = packed;
}

template <>
__device__ __forceinline__ void store4<__half>(__half* dst, float4 v) {
  __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
  uint2 packed = make_uint2(*reinterpret_cast<uint32_t*>(&lo), *reinterpret_cast<uint32_t*>(&hi));
  *reinterpret_cast<uint2*>(dst) = packed;
}

// A row's merge is done by kWarpsPerRow warps. With one warp per row (many rows: large h_q or s_q) a CTA
// covers eight rows; with eight (few rows, where a request may have ~#SM splits) two halves of the CTA
// take alternate splits, so enough loads are in flight either way.
constexpr int kCombineThreads = 256;

template <typename Element, int kWarpsPerRow>
__global__ void __launch_bounds__(kCombineThreads) mla_combine_kernel(const __grid_constant__ DecodeParams p) {
  constexpr int kRowThreads = 32 * kWarpsPerRow;
  constexpr int kColumnThreads = kRowThreads < 128 ? kRowThreads : 128;   // threads covering 128 float4
  constexpr int kVectors = 128 / kColumnThreads;                          // float4 per thread
  constexpr int kSplitLanes = kRowThreads / kColumnThreads;               // threads sharing one column
  const int req = blockIdx.x;
  const int split_base = p.num_splits[req];
  const int num_splits = p.num_splits[req + 1] - split_base;
  if (num_splits <= 1) return;
  const int row = blockIdx.y * (kCombineThreads / kRowThreads) + threadIdx.x / kRowThreads;
  if (row >= p.rows) return;
  const int lane = threadIdx.x % 32;
  const int in_row = threadIdx.x % kRowThreads;
  const int split_lane = in_row / kColumnThreads;
  const int column = (in_row % kColumnThreads) * 4;

  // Every warp computes the row's statistics itself: no cross-warp traffic before the main loop.
  const float* lse = p.lse_accum + int64_t(split_base) * p.rows + row;
  float max_lse = -INFINITY;
  for (int s = lane; s < num_splits; s += 32) max_lse = fmaxf(max_lse, lse[int64_t(s) * p.rows]);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) max_lse = fmaxf(max_lse, __shfl_xor_sync(0xffffffff, max_lse, offset));
  const bool empty = max_lse == -INFINITY;
  float sum = 0.f;
  if (!empty) {
    for (int s = lane; s < num_splits; s += 32) sum += exp2f(lse[int64_t(s) * p.rows] - max_lse);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
  const float total_lse = empty ? 0.f : max_lse + __log2f(sum);

  float4 acc[kVectors];
#pragma unroll
  for (int v = 0; v < kVectors; ++v) acc[v] = make_float4(0.f, 0.f, 0.f, 0.f);
  if (!empty) {
    const float* src = p.out_accum + (int64_t(split_base) * p.rows + row) * kHeadDimV + column;
    const int64_t split_stride = int64_t(p.rows) * kHeadDimV;
#pragma unroll 4
    for (int s = split_lane; s < num_splits; s += kSplitLanes) {
      const float w = exp2f(lse[int64_t(s) * p.rows] - total_lse);
#pragma unroll
      for (int v = 0; v < kVectors; ++v) {
        const float4 x = *reinterpret_cast<const float4*>(src + s * split_stride + v * kColumnThreads * 4);
        acc[v].x += w * x.x;
        acc[v].y += w * x.y;
        acc[v].z += w * x.z;
        acc[v].w += w * x.w;
      }
    }
  }
  if constexpr (kSplitLanes > 1) {
    static_assert(kSplitLanes == 2 && kVectors == 1 && kRowThreads == kCombineThreads);
    __shared__ float4 s_partial[kColumnThreads];
    if (split_lane == 1) s_partial[in_row % kColumnThreads] = acc[0];
    __syncthreads();
    if (split_lane == 1) return;
    const float4 other = s_partial[in_row];
    acc[0].x += other.x;
    acc[0].y += other.y;
    acc[0].z += other.z;
    acc[0].w += other.w;
  }
  Element* dst = static_cast<Element*>(p.out) + (int64_t(req) * p.rows + row) * kHeadDimV + column;
#pragma unroll
  for (int v = 0; v < kVectors; ++v) store4(dst + v * kColumnThreads * 4, acc[v]);
  if (in_row == 0) {
    const int s_idx = row / p.h_q, head = row % p.h_q;
    p.lse[(int64_t(req) * p.h_q + head) * p.s_q + s_idx] = empty ? INFINITY : total_lse * 0.69314718055994530942f;
  }
}

template <typename Element>
void launch_combine(const DecodeParams& p, cudaStream_t stream) {
  if (p.rows <= 32) {
    mla_combine_kernel<Element, 8><<<dim3(p.b, p.rows), kCombineThreads, 0, stream>>>(p);
  } else {
    mla_combine_kernel<Element, 1><<<dim3(p.b, (p.rows + 7) / 8), kCombineThreads, 0, stream>>>(p);
  }
}

template void launch_combine<__nv_bfloat16>(const DecodeParams&, cudaStream_t);
template void launch_combine<__half>(const DecodeParams&, cudaStream_t);

}  // namespace mla

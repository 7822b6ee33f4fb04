// Merges the fp32 partial outputs of split requests by their LSE. One warp per query row; requests
// that were not split were written by the decode kernel directly and are skipped.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "mla_params.h"

namespace mla {

constexpr int kCombineWarps = 8;

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

template <typename Element>
__global__ void __launch_bounds__(kCombineWarps * 32) mla_combine_kernel(const __grid_constant__ DecodeParams p) {
  const int req = blockIdx.x;
  const int split_base = p.num_splits[req];
  const int num_splits = p.num_splits[req + 1] - split_base;
  if (num_splits <= 1) return;
  const int row = blockIdx.y * kCombineWarps + threadIdx.x / 32;
  if (row >= p.rows) return;
  const int lane = threadIdx.x % 32;

  auto split_lse = [&](int s) { return p.lse_accum[int64_t(split_base + s) * p.rows + row]; };
  float max_lse = -INFINITY;
  for (int s = lane; s < num_splits; s += 32) max_lse = fmaxf(max_lse, split_lse(s));
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) max_lse = fmaxf(max_lse, __shfl_xor_sync(0xffffffff, max_lse, offset));
  float sum = 0.f;
  if (max_lse != -INFINITY) {
    for (int s = lane; s < num_splits; s += 32) sum += exp2f(split_lse(s) - max_lse);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
  const bool empty = max_lse == -INFINITY;
  const float total_lse = empty ? 0.f : max_lse + __log2f(sum);

  float4 acc[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) acc[c] = make_float4(0.f, 0.f, 0.f, 0.f);
  if (!empty) {
    for (int s = 0; s < num_splits; ++s) {
      const float w = exp2f(split_lse(s) - total_lse);
      const float* src = p.out_accum + (int64_t(split_base + s) * p.rows + row) * kHeadDimV;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float4 v = *reinterpret_cast<const float4*>(src + c * 128 + lane * 4);
        acc[c].x += w * v.x;
        acc[c].y += w * v.y;
        acc[c].z += w * v.z;
        acc[c].w += w * v.w;
      }
    }
  }
  Element* dst = static_cast<Element*>(p.out) + (int64_t(req) * p.rows + row) * kHeadDimV;
#pragma unroll
  for (int c = 0; c < 4; ++c) store4(dst + c * 128 + lane * 4, acc[c]);
  if (lane == 0) {
    const int s_idx = row / p.h_q, head = row % p.h_q;
    p.lse[(int64_t(req) * p.h_q + head) * p.s_q + s_idx] = empty ? INFINITY : total_lse * 0.69314718055994530942f;
  }
}

template <typename Element>
void launch_combine(const DecodeParams& p, cudaStream_t stream) {
  const dim3 grid(p.b, (p.rows + kCombineWarps - 1) / kCombineWarps);
  mla_combine_kernel<Element><<<grid, kCombineWarps * 32, 0, stream>>>(p);
}

template void launch_combine<__nv_bfloat16>(const DecodeParams&, cudaStream_t);
template void launch_combine<__half>(const DecodeParams&, cudaStream_t);

}  // namespace mla

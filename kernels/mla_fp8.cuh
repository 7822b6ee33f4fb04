// FP8 (e4m3) KV cache support: loads that stage an fp8 page in registers and the exact e4m3 -> 16-bit
// conversion. An e4m3 value has 4 significant bits and exponents 2^-9..2^8, so fp16 and bf16 both hold
// every one of them exactly; the per-tensor descale is applied to the scores and the output instead
// (S = descale * Q.K8^T, O = descale * P.V8), never to the converted cache.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cstdint>
#include <type_traits>

namespace mla {

using Fp8E4M3 = __nv_fp8_e4m3;

template <typename KvElement>
constexpr bool kIsFp8Kv = std::is_same_v<KvElement, Fp8E4M3>;

// 16 bytes from global memory through the non-coherent path, not kept in L1 (every byte is read once), with
// a 256-byte L2 prefetch around it (a warp reads 8 token rows of a page in one sweep over its sub-tiles).
__device__ __forceinline__ uint4 load_global_stream_16(const void* src) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(src)
               : "memory");
  return v;
}

__device__ __forceinline__ void store_shared_16(uint32_t dst, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

// Two e4m3 values (the low byte first) as the packed 16-bit pair of Element, low half first.
template <typename Element>
__device__ __forceinline__ uint32_t e4m3x2_to(uint16_t pair);

template <>
__device__ __forceinline__ uint32_t e4m3x2_to<__half>(uint16_t pair) {
  uint32_t h2;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(pair));
  return h2;
}

// sm_90 has no e4m3 -> bf16 conversion: through fp16 and fp32, each step exact.
template <>
__device__ __forceinline__ uint32_t e4m3x2_to<__nv_bfloat16>(uint16_t pair) {
  const uint32_t h2 = e4m3x2_to<__half>(pair);
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h2));
  const __nv_bfloat162 b2 = __float22bfloat162_rn(f);
  return *reinterpret_cast<const uint32_t*>(&b2);
}

// Four e4m3 values (a 32-bit word, the lowest byte first) as two packed 16-bit pairs.
template <typename Element>
__device__ __forceinline__ uint2 e4m3x4_to(uint32_t word) {
  return make_uint2(e4m3x2_to<Element>(static_cast<uint16_t>(word)),
                    e4m3x2_to<Element>(static_cast<uint16_t>(word >> 16)));
}

// 16 e4m3 values as 16 Element values: the first eight in `first`, the last eight in `second`.
template <typename Element>
__device__ __forceinline__ void e4m3x16_to(uint4 fp8, uint4& first, uint4& second) {
  const uint2 a = e4m3x4_to<Element>(fp8.x), b = e4m3x4_to<Element>(fp8.y);
  const uint2 c = e4m3x4_to<Element>(fp8.z), d = e4m3x4_to<Element>(fp8.w);
  first = make_uint4(a.x, a.y, b.x, b.y);
  second = make_uint4(c.x, c.y, d.x, d.y);
}

}  // namespace mla

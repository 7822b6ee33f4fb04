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

// Four e4m3 values (a 32-bit word, the lowest byte first) as two packed 16-bit pairs.
template <typename Element>
__device__ __forceinline__ uint2 e4m3x4_to(uint32_t word);

template <>
__device__ __forceinline__ uint2 e4m3x4_to<__half>(uint32_t word) {
  return make_uint2(e4m3x2_to<__half>(static_cast<uint16_t>(word)), e4m3x2_to<__half>(static_cast<uint16_t>(word >> 16)));
}

// sm_90 converts e4m3 only to f16, on the conversion pipe (16 values a clock per SM, a quarter of the integer
// rate); bf16 through f16 and f32 took four such instructions a pair and bounded the kernel at the bf16 cache's
// speed. Integer instead: an e4m3 byte at the top of a 16-bit lane with sign kept and exponent + mantissa
// shifted right by 4 is a bf16 whose exponent lacks the bias difference 127 - 7 = 120 (subnormals included:
// both formats scale them by the same 2^-bias); one bf16x2 multiply by 2^120 makes it exact.
__device__ __forceinline__ uint32_t e4m3_high_bytes_to_bf16x2(uint32_t high_bytes) {
  const uint32_t shifted = (high_bytes & 0x80008000u) | ((high_bytes & 0x7F007F00u) >> 4);
  constexpr uint32_t kTwoPow120x2 = 0x7B807B80u;   // bf16 2^120 in both halves
  uint32_t exact;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(exact) : "r"(shifted), "r"(kTwoPow120x2));
  return exact;
}

template <>
__device__ __forceinline__ uint2 e4m3x4_to<__nv_bfloat16>(uint32_t word) {
  return make_uint2(e4m3_high_bytes_to_bf16x2(__byte_perm(word, 0, 0x1404)),    // bytes 1, 0 on top of each lane
                    e4m3_high_bytes_to_bf16x2(__byte_perm(word, 0, 0x3424)));   // bytes 3, 2
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

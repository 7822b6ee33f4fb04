// Thin wrappers over the CuTe sm90 GMMA atoms (cute/arch/mma_sm90_gmma.hpp): shared-memory matrix
// descriptors for 128-byte-swizzled tiles and fixed-shape wgmma calls on register arrays.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cute/arch/mma_sm90_gmma.hpp>
#include <type_traits>
#include <utility>

namespace mla {

namespace gmma = cute::SM90::GMMA;

// A tile of 64 rows x 64 elements (16-bit) with 128-byte rows, swizzled in 8-row x 128-byte atoms:
// the 16-byte chunk c of row r lives at chunk c ^ (r % 8). Wider tiles are such sub-tiles side by side.
constexpr int kSubTileBytes = 64 * 128;
constexpr int kSubTiles = 576 / 64;                     // a 576-wide KV or Q row spans 9 sub-tiles
constexpr int kTileBytes = kSubTiles * kSubTileBytes;   // one 64-token KV block
constexpr int kWarpgroupThreads = 128;

// threadIdx.x / group_threads for groups of whole warps, read from lane 0: ptxas then knows that every lane of a warp
// has the same value, so branches on it are warp-uniform and what is computed from it (wgmma descriptors, mbarrier
// addresses) lives in uniform registers instead of being copied into them before every use (PERF_NOTES.md, v170).
__device__ __forceinline__ int warp_uniform_group(int group_threads) {
  return __shfl_sync(0xffffffff, int(threadIdx.x) / group_threads, 0);
}

// Byte offset of element (row, col) in a swizzled tile whose 64-column sub-tiles hold kTileRows rows.
template <int kTileRows = 64>
__device__ __forceinline__ int swizzled_offset(int row, int col) {
  return (col / 64) * (kTileRows * 128) + row * 128 + ((((col % 64) / 8) ^ (row % 8)) * 16) + (col % 8) * 2;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// K-major operand (rows = M or N, contiguous dimension = K): 8-row groups group_bytes apart (1024 when the
// rows are consecutive).
__device__ __forceinline__ uint64_t desc_k_major(uint32_t addr, uint32_t group_bytes = 1024) {
  uint64_t d = 0;
  d |= uint64_t((addr & 0x3FFFF) >> 4);
  d |= uint64_t(1) << 16;               // leading byte offset: unused for swizzled K-major
  d |= uint64_t(group_bytes >> 4) << 32;   // stride byte offset: next 8 rows
  d |= uint64_t(1) << 62;               // 128-byte swizzle
  return d;
}

// The descriptor of the operand byte_offset bytes after desc's: the address field is the low 14 bits of byte address
// / 16 and no shared address reaches 2^18 bytes, so only the low word changes and the add never carries. Built this
// way the high word stays a constant the compiler can keep, and a k-step's descriptor costs one add (v140).
__device__ __forceinline__ uint64_t desc_plus(uint64_t desc, uint32_t byte_offset) {
  return (desc & 0xFFFFFFFF00000000ull) | uint32_t(uint32_t(desc) + (byte_offset >> 4));
}

// MN-major operand (contiguous dimension = M or N, rows = K): 64-wide MN chunks chunk_bytes apart, 8-row K
// groups group_bytes apart. Used to read V (= K cache rows) as the V operand of P*V.
__device__ __forceinline__ uint64_t desc_mn_major(uint32_t addr, uint32_t chunk_bytes = kSubTileBytes,
                                                  uint32_t group_bytes = 1024) {
  uint64_t d = 0;
  d |= uint64_t((addr & 0x3FFFF) >> 4);
  d |= uint64_t(chunk_bytes >> 4) << 16;   // leading byte offset: next 64 MN columns
  d |= uint64_t(group_bytes >> 4) << 32;   // stride byte offset: next 8 K rows
  d |= uint64_t(1) << 62;
  return d;
}

template <typename Element> struct GmmaOps;

template <> struct GmmaOps<__nv_bfloat16> {
  using QK = gmma::MMA_64x64x16_F32BF16BF16_SS<gmma::Major::K, gmma::Major::K>;
  using PV_RS = gmma::MMA_64x256x16_F32BF16BF16_RS<gmma::Major::K, gmma::Major::MN>;
  using PV_SS = gmma::MMA_64x256x16_F32BF16BF16_SS<gmma::Major::K, gmma::Major::MN>;
  __device__ static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

template <> struct GmmaOps<__half> {
  using QK = gmma::MMA_64x64x16_F32F16F16_SS<gmma::Major::K, gmma::Major::K>;
  using PV_RS = gmma::MMA_64x256x16_F32F16F16_RS<gmma::Major::K, gmma::Major::MN>;
  using PV_SS = gmma::MMA_64x256x16_F32F16F16_SS<gmma::Major::K, gmma::Major::MN>;
  __device__ static uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

// Two e4m3 values (low byte first) as an Element pair, exactly: every e4m3 value is an fp16 and a bf16 value (bf16
// through fp32); NaN stays NaN.
template <typename Element>
__device__ __forceinline__ uint32_t e4m3x2_to(uint16_t two) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(two, __NV_E4M3);
  if constexpr (std::is_same_v<Element, __half>) {
    return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);   // one conversion
  } else {
    const float2 v = __half22float2(__half2(h));
    return GmmaOps<Element>::pack(v.x, v.y);
  }
}

// Swap-AB atoms for few query rows (N = 16 or 32 of them; the 64 KV tokens are M):
//   KQ: S^T = K Q^T, both operands K-major (rows of 576 contiguous elements);
//   VP: O^T += V^T P^T, A = V^T read MN-major from the KV tile, B = P^T stored K-major (tokens contiguous).
template <typename Element, int N> struct NarrowGmma;
template <> struct NarrowGmma<__nv_bfloat16, 16> {
  using KQ = gmma::MMA_64x16x16_F32BF16BF16_SS<gmma::Major::K, gmma::Major::K>;
  using VP = gmma::MMA_64x16x16_F32BF16BF16_SS<gmma::Major::MN, gmma::Major::K>;
};
template <> struct NarrowGmma<__nv_bfloat16, 32> {
  using KQ = gmma::MMA_64x32x16_F32BF16BF16_SS<gmma::Major::K, gmma::Major::K>;
  using VP = gmma::MMA_64x32x16_F32BF16BF16_SS<gmma::Major::MN, gmma::Major::K>;
};
template <> struct NarrowGmma<__half, 16> {
  using KQ = gmma::MMA_64x16x16_F32F16F16_SS<gmma::Major::K, gmma::Major::K>;
  using VP = gmma::MMA_64x16x16_F32F16F16_SS<gmma::Major::MN, gmma::Major::K>;
};
template <> struct NarrowGmma<__half, 32> {
  using KQ = gmma::MMA_64x32x16_F32F16F16_SS<gmma::Major::K, gmma::Major::K>;
  using VP = gmma::MMA_64x32x16_F32F16F16_SS<gmma::Major::MN, gmma::Major::K>;
};

template <typename Op, size_t... I>
__device__ __forceinline__ void wgmma_ss(uint64_t a, uint64_t b, float (&d)[sizeof...(I)], bool accumulate,
                                         std::index_sequence<I...>) {
  Op::fma(a, b, d[I]..., accumulate ? gmma::ScaleOut::One : gmma::ScaleOut::Zero);
}

template <typename Op, size_t... I>
__device__ __forceinline__ void wgmma_rs(const uint32_t (&a)[4], uint64_t b, float (&d)[sizeof...(I)],
                                         std::index_sequence<I...>) {
  Op::fma(a[0], a[1], a[2], a[3], b, d[I]..., gmma::ScaleOut::One);
}

// Accumulators (float) or A fragments (uint32_t) that a wgmma reads or writes.
template <typename T, int N>
__device__ __forceinline__ void fence_operands(T (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) cute::warpgroup_fence_operand(d[i]);
}

}  // namespace mla

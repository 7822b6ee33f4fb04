// Swap-AB decode on an fp8 (e4m3) KV cache for up to 16 query rows: Q.K^T in fp8, P.V in fp16.
//
// The 16-bit swap-AB kernel (mla_decode_narrow.cuh) spends most of a block's consumer time in its 36
// m64n16k16 Q.K^T wgmmas (~35 cycles each, shared-memory bound: 2 KB of K per instruction), which sets
// its floor (~1.8 us a block at h16) no matter how few bytes the cache has. Here:
//   S^T [64 x 16] = K8 [64 x 576] . Q8^T            18 wgmma m64n16k32 e4m3: K straight from the cp.async
//                                                    stage (576 bytes a token), Q quantized per row on load
//   O^T [512 x 16] += V16^T [512 x 64] . P^T        32 wgmma m64n16k16 f16, as the 16-bit kernel
// V is the cache's first 512 columns converted to fp16 in shared memory by the producer thread that copied
// them (cvt.rn.f16x2.e4m3x2: one instruction a pair, exact: fp16 holds every e4m3 value), so the consumer
// reads the same V layout as the 16-bit kernel. P is fp16 whatever the query's dtype (probabilities in
// [0, 1] keep 10 mantissa bits); the output is written in the query's dtype.
// Scales: S = softmax_scale * descale_k * (K8 . Q8) / q_scale[row] and O = descale_k * P.V16, where q_scale
// = 448 / max|q_row| maps each query row onto e4m3's range.
//
// Stages: two raw fp8 stages (40 KB, 128-byte rows of 128 columns, the fifth sub-tile half used) and two fp16
// V stages (64 KB). Producer thread i copies 16-byte chunk i % 8 of every 128-byte sub-tile row of tokens
// i / 8 + 16k (as the 16-bit producer), commits one cp.async group a block, and once the group of block n
// has landed (the next block's copies still in flight) converts the V chunks it copied itself into V stage
// n % 2: no other thread's bytes, so no barrier between copying and converting.
// Barriers per stage: raw_full (128 cp.async arrivals), raw_empty (4 consumer warps, after Q.K^T), v_full
// (128 producer threads, after converting), v_empty (4 consumer warps, after P.V).
#pragma once

#include "mla_decode_narrow.cuh"

namespace mla {
namespace narrow_fp8 {

using narrow::ColumnStats;
using narrow::Fragment;
using narrow::kConsumerWarps;
using narrow::kDTiles;
using narrow::kProducerThreads;
using narrow::kStages;
using narrow::kThreads;
using narrow::kTokenSteps;

constexpr int kCols = 16;
constexpr int kRawSubTileColumns = 128;                                          // e4m3 values a 128-byte row
constexpr int kRawSubTiles = (kHeadDim + kRawSubTileColumns - 1) / kRawSubTileColumns;   // 5 (the last: 64)
constexpr int kRawKSteps = kHeadDim / 32;                                        // 18 k32 steps of Q.K^T
constexpr int kVChunks = kHeadDimV / 16;                                         // 32 fp8 chunks of V a token
constexpr float kE4M3Max = 448.f;
constexpr float kQAmaxMin = 1e-30f, kQAmaxMax = 1e30f;                            // reference.Q_AMAX_RANGE

// Raw fp8 stage: token 8g + r, sub-tile t (columns 128t..128t+127) is the 128-byte row g * kGroupBytes +
// t * 1024 + r * 128; its 16-byte chunk c at chunk c ^ r (the 128-byte swizzle, as the wgmma descriptors).
struct RawLayout {
  static constexpr int kGroupBytes = kRawSubTiles * 1024;
  static constexpr int kStageBytes = (kBlockSize / 8) * kGroupBytes;
  __device__ static uint32_t row(uint32_t stage, int sub_tile, int token) {
    return stage + (token / 8) * kGroupBytes + sub_tile * 1024 + (token % 8) * 128;
  }
};

// fp16 V stage: the 16-bit kernel's BlockLayout without the RoPE sub-tile (8 sub-tiles of 64 columns).
struct VLayout {
  static constexpr int kGroupBytes = kDTiles * 1024;
  static constexpr int kStageBytes = (kBlockSize / 8) * kGroupBytes;
  __device__ static uint32_t row(uint32_t stage, int sub_tile, int token) {
    return stage + (token / 8) * kGroupBytes + sub_tile * 1024 + (token % 8) * 128;
  }
};

struct SharedStorage {
  alignas(1024) char raw[kStages][RawLayout::kStageBytes];
  alignas(1024) char v[kStages][VLayout::kStageBytes];
  alignas(1024) char q[kRawSubTiles][kCols * 128];       // Q8: kCols rows x 576 e4m3, 128-column sub-tiles
  alignas(1024) char p[kCols * 128];                     // P^T (fp16), K-major: a row of 64 tokens per column
  float block_max[2][kConsumerWarps][kCols];
  float column_sum[kConsumerWarps][kCols];
  float q_inv_scale[kCols];                              // 1 / q_scale of each query row
  uint64_t raw_full[kStages], raw_empty[kStages], v_full[kStages], v_empty[kStages];
};

using KQ = gmma::MMA_64x16x32_F32E4M3E4M3_SS_TN<>;
using VP = NarrowGmma<__half, kCols>::VP;

// ---------------------------------------------------------------------------------------------------
// Producer warpgroup.

struct CopyLane {
  int chunk, token;            // 16-byte chunk of a 128-byte row; first token (then + 16k)
  const char* cache;           // this lane's first byte in page 0
  uint32_t raw_offset;         // its first chunk's offset in a raw stage
  __device__ explicit CopyLane(const DecodeParams& p) {
    const int tid = threadIdx.x - kWarpgroupThreads;
    chunk = tid % 8;
    token = tid / 8;
    cache = static_cast<const char*>(p.k_cache) + token * p.k_stride_token + chunk * 16;
    raw_offset = RawLayout::row(0, 0, token) + ((chunk ^ (token % 8)) * 16);
  }
};

// Copies block `page` into raw stage `stage` (a page outside the cache arrives as zeros, reading nothing).
__device__ __forceinline__ void copy_block(const DecodeParams& p, const CopyLane& lane, int page, uint32_t stage) {
  const bool in_cache = static_cast<unsigned>(page) < static_cast<unsigned>(p.num_blocks);
  const char* const src = lane.cache + (in_cache ? int64_t(page) * p.k_stride_block : 0);
  const uint32_t src_bytes = in_cache ? 16 : 0;
  const uint32_t dst = stage + lane.raw_offset;
#pragma unroll
  for (int k = 0; k < kBlockSize / 16; ++k) {
#pragma unroll
    for (int t = 0; t < kRawSubTiles; ++t) {
      // The fifth sub-tile holds the 64 RoPE columns: chunks 0-3 of its row.
      if (t < kRawSubTiles - 1 || lane.chunk < (kHeadDim % kRawSubTileColumns) / 16) {
        cp_async_16_zfill(dst + k * 2 * RawLayout::kGroupBytes + t * 1024,
                          src + k * 16 * p.k_stride_token + t * 128, src_bytes);
      }
    }
  }
}

// Converts the V chunks this lane copied from raw stage `raw` into V stage `v`: raw chunk c of sub-tile t
// (columns 128t + 16c..+15) becomes fp16 chunks 2c % 8 and 2c % 8 + 1 of V sub-tile 2t + c / 4.
// All 16 loads are issued before the first conversion: the loads and stores are volatile asm, which the
// compiler keeps in order, so a load-convert-store loop waited out a shared-memory round trip per chunk
// (a third of v36's time at b128/s4096/h16: PERF_NOTES v38).
__device__ __forceinline__ void convert_v(const CopyLane& lane, uint32_t raw, uint32_t v) {
  constexpr int kRawVSubTiles = kHeadDimV / kRawSubTileColumns;   // 4
  const int v_sub_tile = lane.chunk / 4, first = (2 * lane.chunk) % 8;
  const int r = lane.token % 8;
  const uint32_t v_offset = VLayout::row(0, v_sub_tile, lane.token);
  const uint32_t dst_first = v_offset + ((first ^ r) * 16), dst_second = v_offset + (((first + 1) ^ r) * 16);
  uint4 fp8[kBlockSize / 16][kRawVSubTiles];
#pragma unroll
  for (int k = 0; k < kBlockSize / 16; ++k) {
#pragma unroll
    for (int t = 0; t < kRawVSubTiles; ++t) {
      asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(fp8[k][t].x), "=r"(fp8[k][t].y), "=r"(fp8[k][t].z), "=r"(fp8[k][t].w)
                   : "r"(raw + lane.raw_offset + k * 2 * RawLayout::kGroupBytes + t * 1024));
    }
  }
#pragma unroll
  for (int k = 0; k < kBlockSize / 16; ++k) {
#pragma unroll
    for (int t = 0; t < kRawVSubTiles; ++t) {
      uint4 lo, hi;
      e4m3x16_to<__half>(fp8[k][t], lo, hi);
      const uint32_t at = v + k * 2 * VLayout::kGroupBytes + t * 2 * 1024;
      store_shared_16(at + dst_first, lo);
      store_shared_16(at + dst_second, hi);
    }
  }
}

inline __device__ void produce_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage& smem) {
  const CopyLane lane(p);
  BlockCursor cursor{entry.begin_req, entry.begin_block};
  cursor.settle(p, entry);
  int page = cursor.valid(entry) ? cursor.page(p) : 0;
  int n = 0;
  for (;; ++n) {
    const bool more = cursor.valid(entry);
    if (more) {   // block n's copies
      const int stage = n % kStages;
      if (n >= kStages) mbar_wait(smem_addr(&smem.raw_empty[stage]), (n / kStages - 1) & 1);
      copy_block(p, lane, page, smem_addr(smem.raw[stage]));
      cp_async_commit_group();
      cp_async_mbar_arrive_noinc(smem_addr(&smem.raw_full[stage]));
      ++cursor.block;
      cursor.settle(p, entry);
      if (cursor.valid(entry)) page = cursor.page(p);   // read while the copies are in flight
    }
    if (n >= 1) {   // block n - 1's V, converted while block n's copies land
      const int prev = n - 1, stage = prev % kStages;
      if (more) {
        cp_async_wait_group<1>();
      } else {
        cp_async_wait_group<0>();
      }
      if (prev >= kStages) mbar_wait(smem_addr(&smem.v_empty[stage]), (prev / kStages - 1) & 1);
      convert_v(lane, smem_addr(smem.raw[stage]), smem_addr(smem.v[stage]));
      mbar_arrive(smem_addr(&smem.v_full[stage]));   // the consumers fence after their wait
    }
    if (!more) break;
  }
  // Exit only after this thread's cp.async arrivals are done: wait for the last blocks' raw_full phases (none
  // can complete again: no further arrivals come).
  for (int m = max(n - kStages, 0); m < n; ++m) {
    mbar_wait(smem_addr(&smem.raw_full[m % kStages]), (m / kStages) & 1);
  }
}

// ---------------------------------------------------------------------------------------------------
// Consumer warpgroup.

// The two values of a packed 16-bit pair (low half first) as floats.
template <typename Element>
__device__ __forceinline__ float2 unpack_pair(uint32_t pair);
template <>
__device__ __forceinline__ float2 unpack_pair<__nv_bfloat16>(uint32_t pair) {
  return make_float2(__uint_as_float(pair << 16), __uint_as_float(pair & 0xffff0000u));
}
template <>
__device__ __forceinline__ float2 unpack_pair<__half>(uint32_t pair) {
  return __half22float2(*reinterpret_cast<const __half2*>(&pair));
}

__device__ __forceinline__ uint32_t e4m3x2(float lo, float hi) {
  return __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
}

// Query rows [0, p.rows) of request req, quantized row by row into Q8 (rows past p.rows stay zero with
// scale 1). Eight threads per row, each reading 9 of its 72 16-byte chunks from global memory.
template <typename Element>
__device__ __forceinline__ void load_q(const DecodeParams& p, int req, SharedStorage& smem) {
  constexpr int kLanesPerRow = kWarpgroupThreads / kCols;               // 8
  constexpr int kChunksPerLane = kQChunksPerRow / kLanesPerRow;         // 9
  const int row = threadIdx.x / kLanesPerRow, part = threadIdx.x % kLanesPerRow;
  const bool real = row < p.rows;
  uint32_t raw[kChunksPerLane][4];   // 16-bit pairs
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < kChunksPerLane; ++i) {
    const uint4 chunk = real ? *reinterpret_cast<const uint4*>(q_chunk(p, req, row, part + kLanesPerRow * i))
                             : make_uint4(0, 0, 0, 0);
    raw[i][0] = chunk.x, raw[i][1] = chunk.y, raw[i][2] = chunk.z, raw[i][3] = chunk.w;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float2 v = unpack_pair<Element>(raw[i][w]);
      amax = fmaxf(amax, fmaxf(fabsf(v.x), fabsf(v.y)));
    }
  }
#pragma unroll
  for (int lanes = 1; lanes < kLanesPerRow; lanes *= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffff, amax, lanes));
  // A zero row keeps scale 1; amax is clamped so that neither the scale nor its inverse leaves fp32's normal range
  // (448 / amax overflows below ~1e-36, and --use_fast_math's reciprocal flushes to 0 above 2^126).
  const float scale = amax > 0.f ? kE4M3Max / fminf(fmaxf(amax, kQAmaxMin), kQAmaxMax) : 1.f;
  const uint32_t q_base = smem_addr(smem.q);
#pragma unroll
  for (int i = 0; i < kChunksPerLane; ++i) {
    const int chunk = part + kLanesPerRow * i;                          // columns 8 * chunk ..
    uint32_t packed[2];
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      const float2 a = unpack_pair<Element>(raw[i][2 * w]), b = unpack_pair<Element>(raw[i][2 * w + 1]);
      packed[w] = e4m3x2(a.x * scale, a.y * scale) | (e4m3x2(b.x * scale, b.y * scale) << 16);
    }
    const int sub_tile = chunk / 16, column_byte = (chunk % 16) * 8;
    const uint32_t at = q_base + sub_tile * kCols * 128 + row * 128 + (((column_byte / 16) ^ (row % 8)) * 16) +
                        column_byte % 16;
    asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(at), "r"(packed[0]), "r"(packed[1]) : "memory");
  }
  if (part == 0) smem.q_inv_scale[row] = 1.f / scale;
  fence_async_proxy();
  named_barrier_sync<kWarpgroupThreads>(narrow::kQReady);
}

// S^T = K8 Q8^T for the raw stage at shared address raw (unscaled).
__device__ __forceinline__ void compute_scores(uint32_t raw, const SharedStorage& smem, float (&s)[kCols / 2]) {
  const uint32_t q_base = smem_addr(smem.q);
  cute::warpgroup_arrive();
#pragma unroll
  for (int k = 0; k < kRawKSteps; ++k) {
    const int sub_tile = k / 4, column_bytes = (k % 4) * 32;
    wgmma_ss<KQ>(desc_k_major(RawLayout::row(raw, sub_tile, 0) + column_bytes, RawLayout::kGroupBytes),
                 desc_k_major(q_base + sub_tile * kCols * 128 + column_bytes), s, k > 0,
                 std::make_index_sequence<kCols / 2>{});
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(s);
}

// Zeroes V rows [valid_tokens, 64) of the fp16 V stage: 0 * NaN would poison P.V.
__device__ __forceinline__ void zero_v_tail(uint32_t v, int valid_tokens) {
  const int chunks = (kBlockSize - valid_tokens) * kDTiles * 8;
  for (int i = threadIdx.x; i < chunks; i += kWarpgroupThreads) {
    const int token = valid_tokens + i / (kDTiles * 8), sub_tile = (i / 8) % kDTiles, chunk = i % 8;
    store_zero_16(VLayout::row(v, sub_tile, token) + chunk * 16);
  }
}

// O^T += V16^T P^T for the fp16 V stage at shared address v.
__device__ __forceinline__ void accumulate_output(uint32_t v, const SharedStorage& smem, float (&o)[kDTiles][kCols / 2]) {
  const uint32_t p_base = smem_addr(smem.p);
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) fence_operands(o[d]);
  cute::warpgroup_arrive();
#pragma unroll
  for (int t = 0; t < kTokenSteps; ++t) {
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
      wgmma_ss<VP>(desc_mn_major(VLayout::row(v, d, t * 16), kSubTileBytes, VLayout::kGroupBytes),
                   desc_k_major(p_base + t * 32), o[d], true, std::make_index_sequence<kCols / 2>{});
    }
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) fence_operands(o[d]);
}

template <typename Element>
__device__ void consume_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage& smem) {
  const Fragment f;
  const float descale = __ldg(p.descale_k);
  int consumed = 0;
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    ColumnStats<kCols> stats;
    float column_scale[kCols / 4];   // descale_k / q_scale of each of this thread's columns
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) {
      stats.max[c] = -INFINITY;
      stats.sum[c] = 0.f;
      stats.key_limit[c] = key_limit(p, piece.seqlen, f.column(c));
    }
    float o[kDTiles][kCols / 2];
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
      for (int i = 0; i < kCols / 2; ++i) o[d][i] = 0.f;
    }
    if (piece.num_blocks() > 0) load_q<Element>(p, req, smem);
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) column_scale[c] = descale * smem.q_inv_scale[f.column(c)];

    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      const int stage = consumed % kStages, parity = (consumed / kStages) & 1;
      const uint32_t raw = smem_addr(smem.raw[stage]), v = smem_addr(smem.v[stage]);
      mbar_wait(smem_addr(&smem.raw_full[stage]), parity);
      fence_async_proxy();   // cp.async (generic proxy) wrote the stage; wgmma reads it (async proxy)
      float s[kCols / 2];
      compute_scores(raw, smem, s);
      if (f.lane == 0) mbar_arrive(smem_addr(&smem.raw_empty[stage]));
#pragma unroll
      for (int i = 0; i < kCols / 2; ++i) s[i] *= column_scale[(i / 4) * 2 + i % 2];
      const bool needs_mask = (block + 1) * kBlockSize > min_key_limit(p, piece.seqlen);
      float rescale[kCols / 4];
      narrow::online_softmax<kCols>(p, 1.f, f, block, consumed & 1, needs_mask, s, stats, smem, rescale);

      mbar_wait(smem_addr(&smem.v_full[stage]), parity);
      const int valid_tokens = min(piece.seqlen - block * kBlockSize, kBlockSize);
      if (valid_tokens < kBlockSize) zero_v_tail(v, valid_tokens);
      narrow::store_probs<__half, kCols>(f, s, smem);
      fence_async_proxy();   // the producers' converted V, the zeroed tail and P are read by wgmma
      named_barrier_sync<kWarpgroupThreads>(narrow::kProbsReady);

      narrow::rescale_output<kCols>(o, rescale);
      accumulate_output(v, smem, o);
      if (f.lane == 0) mbar_arrive(smem_addr(&smem.v_empty[stage]));
    }
    if (req == entry.end_req) allow_next_grid_launch();
    narrow::write_output<Element, kCols>(p, f, req, slot, stats, o, descale, smem);
    named_barrier_sync<kWarpgroupThreads>(narrow::kRequestDone);   // the next request reuses Q and its scales
  }
}

template <typename Element>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_narrow_fp8_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage*>(smem_bytes);
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(smem_addr(&smem.raw_full[s]), kProducerThreads);
      mbar_init(smem_addr(&smem.raw_empty[s]), kConsumerWarps);
      mbar_init(smem_addr(&smem.v_full[s]), kProducerThreads);
      mbar_init(smem_addr(&smem.v_empty[s]), kConsumerWarps);
    }
    mbar_fence_init();
  }
  __syncthreads();

  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const SchedEntry entry = SchedEntry::load(p.sched, blockIdx.y);
  if (threadIdx.x >= kWarpgroupThreads) {
    produce_kv_blocks(p, entry, smem);
    return;
  }
  consume_kv_blocks<Element>(p, entry, smem);
}

}  // namespace narrow_fp8

template <typename Element>
cudaError_t launch_decode_narrow_fp8(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(narrow_fp8::SharedStorage) <= 227 * 1024, "shared memory over the sm_90 limit");
  return launch_with_pdl(narrow_fp8::mla_decode_narrow_fp8_kernel<Element>, dim3(1, p.num_parts),
                         dim3(narrow_fp8::kThreads), sizeof(narrow_fp8::SharedStorage), stream, p);
}

}  // namespace mla

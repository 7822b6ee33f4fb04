// Split-KV MLA decode for few query rows (s_q * h_q <= kNarrowMaxRows = 16) on Hopper (sm_90a): swap-AB.
//
// A 64-row wgmma tile would be 75% padding here, so the 64 tokens of a KV block are the MMA's M and
// the kCols (16; 32 builds too but 17-32 rows run faster on the 64-row kernel) query rows its N:
//   S^T [64 x kCols]   = K [64 x 576] . Q^T              (36 wgmma m64nNk16)
//   online softmax down each column (one column per query row)
//   O^T [512 x kCols] += V^T [512 x 64] . P^T [64 x kCols] (8 d-tiles x 4 wgmma m64nNk16)
// O^T takes 4 * kCols registers per thread, so one consumer warpgroup does all of it while one producer
// warpgroup streams the part's KV blocks into two stages with cp.async (as FlashInfer's Hopper MLA kernel
// and FA3's non-TMA paged-KV path load narrow-row decode): each of its 128 threads copies 36 of the page's
// 4608 16-byte chunks, eight consecutive threads reading one 128-byte piece of a token row, into the
// layout a 128B-swizzled TMA box would give (BlockLayout: each 64-column sub-tile's 8-row atoms 9 KB
// apart, which wgmma reads through the descriptors' 8-row stride), and arrives on the stage's full
// mbarrier through cp.async.mbarrier.arrive.noinc. A KV block costs ~4x fewer MMA cycles than with 64
// query rows and stays well under its HBM time.
// Pages past seqlen may hold NaN: masked scores become -inf and V rows past seqlen are zeroed in
// shared memory before P.V. A split request writes partials (out's dtype) + LSE for the combine kernel.
#pragma once

#include "mla_launch.h"
#include "mla_params.h"
#include "mla_pipeline.cuh"
#include "mla_query.cuh"
#include "mla_schedule.cuh"
#include "mla_softmax.cuh"
#include "mla_wgmma.cuh"

namespace mla {
namespace narrow {

constexpr int kStages = 2;
constexpr int kConsumerWarps = 4;                              // one warpgroup
constexpr int kProducerThreads = kWarpgroupThreads;            // one producer warpgroup (cp.async)
constexpr int kThreads = kWarpgroupThreads + kProducerThreads;  // consumers 0-127, producers 128-255
constexpr int kDTiles = kHeadDimV / 64;                        // O^T is 8 tiles of 64 output dims
constexpr int kKSteps = kHeadDim / 16;                         // k-steps of S^T = K Q^T
constexpr int kTokenSteps = kBlockSize / 16;                   // k-steps of O^T += V^T P^T

// Named barriers of a consumer warpgroup (0 is __syncthreads); a second consumer warpgroup (the fp8 kernel's rows
// 16-31) uses the same ones shifted by kBarriersPerGroup (Fragment::barrier).
enum Barrier : int { kQReady = 1, kBlockMaxReady = 2, kProbsReady = 3, kColumnSumsReady = 4, kRequestDone = 5 };
constexpr int kBarriersPerGroup = 5;

// A KV block in shared memory (where the producer's copies land it): token 8g + r, sub-tile t
// (columns 64t..64t+63) is the 128-byte row g * 9216 + t * 1024 + r * 128, its 16-byte chunk c stored at
// chunk c ^ r (the 128-byte swizzle within the 1024-byte atom, as swizzled_offset and the descriptors).
struct BlockLayout {
  static constexpr int kGroupBytes = kSubTiles * 1024;   // 8 tokens x 576 columns
  __device__ static uint32_t row(uint32_t block, int sub_tile, int token) {
    return block + (token / 8) * kGroupBytes + sub_tile * 1024 + (token % 8) * 128;
  }
};

template <int kCols>
struct SharedStorage {
  alignas(1024) char kv[kStages][kTileBytes];           // KV blocks (BlockLayout)
  alignas(1024) char q[kSubTiles][kCols * 128];          // Q: kCols rows x 576, swizzled 64-column sub-tiles
  alignas(1024) char p[kCols * 128];                     // P^T stored K-major: a row of 64 tokens per column
  float block_max[2][kConsumerWarps][kCols];             // per-warp column maxima; double-buffered by block
  float column_sum[kConsumerWarps][kCols];
  uint64_t full[kStages];                                // every producer thread's copies of the stage landed
  uint64_t empty[kStages];                               // every consumer warp is done with the stage
};

// This thread's place in the m64nN accumulators: rows (M) r0 and r0 + 8 of its warp's 16, and in every
// 8-column group j the columns 8j + 2 * (lane % 4) + {0, 1}. A thread owns kCols / 4 columns, indexed
// c = 2j + e; accumulator element [j * 4 + h * 2 + e] is (row r0 + 8h, column 8j + 2 * (lane % 4) + e).
// Column n is query row first_row + n: consumer warpgroup g of a kernel with several takes rows g * kCols on.
struct Fragment {
  int lane, warp, r0, quad_col, group, first_row;
  __device__ Fragment() : Fragment(warp_uniform_group(32), 0, 0) {}   // the only consumer warpgroup: threads 0-127
  // The fp8 kernels' consumer warpgroups. The block split keeps its roles per thread (threadIdx, not
  // warp_uniform_group): with them warp-uniform it ran b32/s1024 3% and b8/s8192 1.6% slower (PERF_NOTES.md, v170).
  __device__ Fragment(int group, int first_row) : Fragment((threadIdx.x / 32) % kConsumerWarps, group, first_row) {}
  __device__ int column(int c) const { return 8 * (c / 2) + quad_col + c % 2; }
  __device__ int query_row(int column) const { return first_row + column; }
  __device__ int barrier(Barrier id) const { return id + group * kBarriersPerGroup; }
  // Rows r0 and r0 + 1 sit in lanes L and L ^ 4: the even one of the pair is the row-pair's base.
  __device__ bool even_row() const { return (lane / 4) % 2 == 0; }

 private:
  __device__ Fragment(int warp, int group, int first_row)
      : lane(threadIdx.x % 32), warp(warp), r0(warp * 16 + lane / 4), quad_col(2 * (lane % 4)), group(group),
        first_row(first_row) {}
};

__device__ __forceinline__ float warp_column_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 4));
  x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 8));
  return fmaxf(x, __shfl_xor_sync(0xffffffff, x, 16));
}
__device__ __forceinline__ float warp_column_sum(float x) {
  x += __shfl_xor_sync(0xffffffff, x, 4);
  x += __shfl_xor_sync(0xffffffff, x, 8);
  return x + __shfl_xor_sync(0xffffffff, x, 16);
}

// Two accumulator values of one column in rows r and r + 1 (r even) come from lanes L and L ^ 4. Each of
// the pair trades one value so that the even lane holds column c0's pair and the odd lane column c1's.
// Returns the pair (row r, row r + 1) and sets which_column to 0 or 1.
__device__ __forceinline__ float2 pair_rows(const Fragment& f, float c0_value, float c1_value, int& which_column) {
  const float send = f.even_row() ? c1_value : c0_value;
  const float got = __shfl_xor_sync(0xffffffff, send, 4);
  which_column = f.even_row() ? 0 : 1;
  return f.even_row() ? make_float2(c0_value, got) : make_float2(got, c1_value);
}

// ---------------------------------------------------------------------------------------------------
// Producer warpgroup: every thread walks the part's (request, block) pairs (the same deterministic
// sequence, the same block_table reads) and copies its share of each KV block into the next stage.
//
// Thread i copies 16-byte chunk c = i % 8 of sub-tile t's 128 bytes of tokens i / 8 + 16k (k < 4, t < 9):
// eight consecutive threads read one token's 128 contiguous bytes, a warp four whole token rows (4.5 KB
// contiguous for a packed page) per k. All four of its tokens have token % 8 = (i / 8) % 8, so the
// swizzled destination is one per-thread offset plus compile-time immediates.

template <int kCols>
__device__ void produce_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage<kCols>& smem) {
  const PageCopyLane<> lane(p, threadIdx.x - kWarpgroupThreads);
  const uint32_t dst_offset = BlockLayout::row(0, 0, lane.token) + ((lane.chunk ^ (lane.token % 8)) * 16);
  BlockCursor cursor;
  int page = cursor.begin(p, entry);
  int n = 0;
  for (; cursor.valid(entry); ++n) {
    const int stage = n % kStages;
    if (n >= kStages) mbar_wait(smem_addr(&smem.empty[stage]), (n / kStages - 1) & 1);
    uint32_t src_bytes;
    const char* const src = lane.source(p, page, src_bytes);
    const uint32_t dst = smem_addr(smem.kv[stage]) + dst_offset;
#pragma unroll
    for (int k = 0; k < kBlockSize / 16; ++k) {
#pragma unroll
      for (int t = 0; t < kSubTiles; ++t) {
        cp_async_16_zfill(dst + k * 2 * BlockLayout::kGroupBytes + t * 1024, src + k * 16 * lane.token_bytes + t * 128,
                          src_bytes);
      }
    }
    // full[stage] expects kProducerThreads arrivals; each lands once this thread's copies have.
    cp_async_mbar_arrive_noinc(smem_addr(&smem.full[stage]));
    page = cursor.next(p, entry);
    if (n == 0) mbar_wait(smem_addr(&smem.full[0]), 0);   // the first block alone in flight (PERF_NOTES.md, v98)
  }
  // Exit only after this thread's copies and their arrivals are done: wait for the last blocks' full
  // phases (none can complete again: no further arrivals come).
  for (int m = max(n - kStages, 0); m < n; ++m) mbar_wait(smem_addr(&smem.full[m % kStages]), (m / kStages) & 1);
}

// ---------------------------------------------------------------------------------------------------
// Consumer warpgroup phases.

// Q rows [0, p.rows) of request req into the swizzled Q tile (rows past p.rows stay zero; copy_query_rows).
template <int kCols>
__device__ __forceinline__ void load_q(const DecodeParams& p, int req, SharedStorage<kCols>& smem) {
  const uint32_t q_tile = smem_addr(smem.q);
  copy_query_rows<kConsumerWarps>(
      p, req, 0, p.rows, [&](int row, int chunk) { return q_tile + swizzled_offset<kCols>(row, chunk * 8); });
  cp_async_wait_all();
  fence_async_proxy();
  named_barrier_sync<kWarpgroupThreads>(kQReady);
}

// S^T = K Q^T for the KV block at shared address kv.
template <typename Element, int kCols>
__device__ __forceinline__ void compute_scores(uint32_t kv, const SharedStorage<kCols>& smem, float (&s)[kCols / 2]) {
  using KQ = typename NarrowGmma<Element, kCols>::KQ;
  const uint32_t q_base = smem_addr(smem.q);
  cute::warpgroup_arrive();
#pragma unroll
  for (int k = 0; k < kKSteps; ++k) {
    const int sub_tile = k / 4, column_bytes = (k % 4) * 32;
    wgmma_ss<KQ>(desc_k_major(BlockLayout::row(kv, sub_tile, 0) + column_bytes, BlockLayout::kGroupBytes),
                 desc_k_major(q_base + sub_tile * kCols * 128 + column_bytes), s, k > 0,
                 std::make_index_sequence<kCols / 2>{});
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(s);
}

// Running softmax statistics of this thread's kCols / 4 columns, in the log2 domain.
template <int kCols>
struct ColumnStats {
  float max[kCols / 4];        // running max of the scaled scores
  float sum[kCols / 4];        // this thread's share of the running denominator (rows r0, r0 + 8)
  int key_limit[kCols / 4];    // keys visible to the column's query row
};

// The block's scores scaled (by the softmax scale) and masked; returns the max of each of this thread's columns
// over the thread's rows, or (kWarpMax) over the warp's.
template <int kCols, bool kWarpMax>
__device__ __forceinline__ void scale_and_mask(const DecodeParams& p, const Fragment& f, int block, bool needs_mask,
                                               float (&s)[kCols / 2], const ColumnStats<kCols>& stats,
                                               float (&column_max)[kCols / 4]) {
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) {
    float m = -INFINITY;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float& x = s[(c / 2) * 4 + h * 2 + c % 2];
      x *= p.scale_log2;
      // -inf also discards NaN read from page slots past seqlen.
      if (needs_mask && block * kBlockSize + f.r0 + 8 * h >= stats.key_limit[c]) x = -INFINITY;
      m = fmaxf(m, x);
    }
    column_max[c] = kWarpMax ? warp_column_max(m) : m;
  }
}

// Each column's block max agreed across the four warps (from each warp's), folded into the running max: returns P's
// base of each column and sets its rescale factor.
template <int kCols, typename Storage>
__device__ __forceinline__ void agree_block_max(const Fragment& f, int block_parity,
                                                const float (&block_max)[kCols / 4], ColumnStats<kCols>& stats,
                                                Storage& smem, float (&base)[kCols / 4], float (&rescale)[kCols / 4]) {
  constexpr int kOwnColumns = kCols / 4;
  if (f.lane < 4) {
#pragma unroll
    for (int c = 0; c < kOwnColumns; ++c) smem.block_max[block_parity][f.warp][f.column(c)] = block_max[c];
  }
  named_barrier_sync<kWarpgroupThreads>(f.barrier(kBlockMaxReady));
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) {
    float m = block_max[c];
#pragma unroll
    for (int w = 0; w < kConsumerWarps; ++w) m = fmaxf(m, smem.block_max[block_parity][w][f.column(c)]);
    base[c] = fold_block_max(stats.max[c], m, rescale[c]);
  }
}

// P = exp2(s - base) in s, and the row sums rescaled and extended by it.
template <int kCols>
__device__ __forceinline__ void exponentiate(float (&s)[kCols / 2], const float (&base)[kCols / 4],
                                             const float (&rescale)[kCols / 4], ColumnStats<kCols>& stats) {
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) {
    float sum = 0.f;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float& x = s[(c / 2) * 4 + h * 2 + c % 2];
      x = exp2f(x - base[c]);
      sum += x;
    }
    stats.sum[c] = stats.sum[c] * rescale[c] + sum;
  }
}

// Scales (by the softmax scale) and masks the block's scores, agrees on each column's block max across the four
// warps, turns scores into probabilities and returns each column's rescale factor for O^T.
template <int kCols, typename Storage>
__device__ __forceinline__ void online_softmax(const DecodeParams& p, const Fragment& f, int block,
                                               int block_parity, bool needs_mask, float (&s)[kCols / 2],
                                               ColumnStats<kCols>& stats, Storage& smem,
                                               float (&rescale)[kCols / 4]) {
  float warp_max[kCols / 4], base[kCols / 4];
  scale_and_mask<kCols, true>(p, f, block, needs_mask, s, stats, warp_max);
  agree_block_max<kCols>(f, block_parity, warp_max, stats, smem, base, rescale);
  exponentiate<kCols>(s, base, rescale, stats);
}

// How far (log2) a score may exceed its column's running max with that max kept as P's base: P up to 1.75, so
// the fp8 kernels' 2^8 P stays within e4m3's 448.
constexpr float kMaxSlackLog2 = 0.807f;

// online_softmax with a vote across the warpgroup first: when no score exceeds its column's running max by more
// than the slack (most blocks past a request's first few), every max stays P's base and nothing is rescaled, as
// exact as the full path; otherwise the block maxima are agreed as there. Its caller rescales O^T by the factors
// either way: a branch on the vote there cost ~5 us a kernel (PERF_NOTES.md, eighteenth session).
template <int kCols, typename Storage>
__device__ __forceinline__ void online_softmax_voted(const DecodeParams& p, const Fragment& f, int block,
                                                     int block_parity, bool needs_mask, float (&s)[kCols / 2],
                                                     ColumnStats<kCols>& stats, Storage& smem,
                                                     float (&rescale)[kCols / 4]) {
  float thread_max[kCols / 4], base[kCols / 4];
  scale_and_mask<kCols, false>(p, f, block, needs_mask, s, stats, thread_max);
  bool exceeds = false;
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) exceeds |= thread_max[c] > stats.max[c] + kMaxSlackLog2;
  const bool moved = named_barrier_any<kWarpgroupThreads>(f.barrier(kBlockMaxReady), exceeds);
  if (moved) {
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) thread_max[c] = warp_column_max(thread_max[c]);
    agree_block_max<kCols>(f, block_parity, thread_max, stats, smem, base, rescale);
  } else {
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) {
      base[c] = softmax_base(stats.max[c]);
      rescale[c] = 1.f;
    }
  }
  exponentiate<kCols>(s, base, rescale, stats);
}

// P^T into shared memory as the K-major B operand: column n's 64 probabilities form one 128-byte row.
template <typename Element, int kCols, typename Storage>
__device__ __forceinline__ void store_probs(const Fragment& f, const float (&s)[kCols / 2], Storage& smem) {
#pragma unroll
  for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int which;
      const float2 rows = pair_rows(f, s[j * 4 + h * 2], s[j * 4 + h * 2 + 1], which);
      const int column = f.column(2 * j + which);
      const int token = (f.r0 & ~1) + 8 * h;
      *reinterpret_cast<uint32_t*>(smem.p + swizzled_offset<kCols>(column, token)) =
          GmmaOps<Element>::pack(rows.x, rows.y);
    }
  }
}

// Zeroes V rows [valid_tokens, 64) of the block's eight V sub-tiles: 0 * NaN would poison P.V.
__device__ __forceinline__ void zero_v_tail(uint32_t kv, int valid_tokens) {
  const int chunks = (kBlockSize - valid_tokens) * kDTiles * 8;
  for (int i = threadIdx.x; i < chunks; i += kWarpgroupThreads) {
    const int token = valid_tokens + i / (kDTiles * 8), sub_tile = (i / 8) % kDTiles, chunk = i % 8;
    store_zero_16(BlockLayout::row(kv, sub_tile, token) + chunk * 16);
  }
}

template <int kCols>
__device__ __forceinline__ void rescale_output(float (&o)[kDTiles][kCols / 2], const float (&rescale)[kCols / 4]) {
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
    for (int i = 0; i < kCols / 2; ++i) o[d][i] *= rescale[(i / 4) * 2 + i % 2];
  }
}

// O^T += V^T P^T for the KV block at shared address kv (V = its first eight sub-tiles).
template <typename Element, int kCols>
__device__ __forceinline__ void accumulate_output(uint32_t kv, const SharedStorage<kCols>& smem,
                                                  float (&o)[kDTiles][kCols / 2]) {
  using VP = typename NarrowGmma<Element, kCols>::VP;
  const uint32_t p_base = smem_addr(smem.p);
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) fence_operands(o[d]);
  cute::warpgroup_arrive();
  // Token steps outer: consecutive wgmmas go to different d-tiles, eight independent accumulators in flight.
#pragma unroll
  for (int t = 0; t < kTokenSteps; ++t) {
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) {
      wgmma_ss<VP>(desc_mn_major(BlockLayout::row(kv, d, t * 16), kSubTileBytes, BlockLayout::kGroupBytes),
                   desc_k_major(p_base + t * 32), o[d], true,
                   std::make_index_sequence<kCols / 2>{});
    }
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) fence_operands(o[d]);
}

// Each of this thread's columns' output scale (output_scale / row sum, 0 for a row without keys) and LSE (log2),
// from the row sums over the warpgroup's four warps.
template <int kCols, typename Storage>
__device__ __forceinline__ void row_scales(const Fragment& f, const ColumnStats<kCols>& stats, float output_scale,
                                           Storage& smem, float (&scale)[kCols / 4], float (&lse_log2)[kCols / 4]) {
  constexpr int kOwnColumns = kCols / 4;
  float warp_sum[kOwnColumns];
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) warp_sum[c] = warp_column_sum(stats.sum[c]);
  if (f.lane < 4) {
#pragma unroll
    for (int c = 0; c < kOwnColumns; ++c) smem.column_sum[f.warp][f.column(c)] = warp_sum[c];
  }
  named_barrier_sync<kWarpgroupThreads>(f.barrier(kColumnSumsReady));
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kConsumerWarps; ++w) sum += smem.column_sum[w][f.column(c)];
    scale[c] = sum == 0.f ? 0.f : (1.f / sum) * output_scale;
    lse_log2[c] = sum == 0.f ? -INFINITY : stats.max[c] + __log2f(sum);
  }
}

// O^T's tiles first_tile.. (64 output dims each), times each column's scale, written transposed to out (or to the
// split's partial).
template <typename Element, int kCols, int kTiles>
__device__ __forceinline__ void store_output_tiles(const DecodeParams& p, const Fragment& f, int req, OutputSlot slot,
                                                   int first_tile, const float (&o)[kTiles][kCols / 2],
                                                   const float (&scale)[kCols / 4]) {
  Element* const rows_out = output_rows<Element>(p, req, slot);
#pragma unroll
  for (int d = 0; d < kTiles; ++d) {
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int which;
        const float2 rows = pair_rows(f, o[d][j * 4 + h * 2] * scale[2 * j], o[d][j * 4 + h * 2 + 1] * scale[2 * j + 1],
                                      which);
        const int row = f.query_row(f.column(2 * j + which));
        const int dim = (first_tile + d) * 64 + (f.r0 & ~1) + 8 * h;
        if (row >= p.rows) continue;
        *reinterpret_cast<uint32_t*>(rows_out + row * kHeadDimV + dim) = GmmaOps<Element>::pack(rows.x, rows.y);
      }
    }
  }
}

// The LSE of this thread's columns' rows, by lanes 0-3 of warp 0 (they own every column once).
template <int kCols>
__device__ __forceinline__ void store_lse(const DecodeParams& p, const Fragment& f, int req, OutputSlot slot,
                                          const float (&lse_log2)[kCols / 4]) {
  if (f.warp != 0 || f.lane >= 4) return;
  const int64_t row_base = int64_t(slot.is_split ? slot.split_row : req) * p.rows;
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) {
    const int row = f.query_row(f.column(c));
    if (row >= p.rows) continue;
    if (slot.is_split) {
      p.lse_accum[row_base + row] = lse_log2[c];
    } else {
      store_final_lse(p, req, row, lse_log2[c] == -INFINITY, lse_log2[c]);
    }
  }
}

// Normalizes O^T (times output_scale) and writes it transposed to out (or to the split's partial),
// with the LSE.
template <typename Element, int kCols, typename Storage>
__device__ __forceinline__ void write_output(const DecodeParams& p, const Fragment& f, int req, OutputSlot slot,
                                             const ColumnStats<kCols>& stats, const float (&o)[kDTiles][kCols / 2],
                                             float output_scale, Storage& smem) {
  float scale[kCols / 4], lse_log2[kCols / 4];
  row_scales<kCols>(f, stats, output_scale, smem, scale, lse_log2);
  store_output_tiles<Element, kCols>(p, f, req, slot, 0, o, scale);
  store_lse<kCols>(p, f, req, slot, lse_log2);
}

template <typename Element, int kCols>
__device__ void consume_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage<kCols>& smem) {
  const Fragment f;
  int consumed = 0;   // blocks this CTA has processed: picks the stage and the mbarrier phase
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    ColumnStats<kCols> stats;
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
    load_q(p, req, smem);   // even for a piece without blocks: so the loads need not wait for the request's length

    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      const int stage = consumed % kStages;
      const uint32_t kv = smem_addr(smem.kv[stage]);
      mbar_wait(smem_addr(&smem.full[stage]), (consumed / kStages) & 1);
      // cp.async wrote the stage through the generic proxy and wgmma reads it through the async proxy.
      // The mbarrier wait makes the copies visible to this thread; the proxy fence then orders them before
      // its wgmmas. FA3 (hopper/mainloop_fwd_sm90_tma_gmma_ws.hpp, PagedKVNonTMA: load_K/load_V then
      // producer_commit(cpasync_barrier_arrive)), FlashInfer (mla_hopper.cuh: load_kv, producer_commit
      // (cpasync_barrier_arrive), consumer_wait, __syncthreads, wgmma) and CUTLASS's
      // sm90_mma_multistage_gmma_ss_warpspecialized fence nowhere on this path; the fence here is the
      // conservative reading of the PTX memory model (one instruction per block).
      fence_async_proxy();

      float s[kCols / 2];
      compute_scores<Element, kCols>(kv, smem, s);
      const bool needs_mask = (block + 1) * kBlockSize > min_key_limit(p, piece.seqlen);
      float rescale[kCols / 4];
      online_softmax<kCols>(p, f, block, consumed & 1, needs_mask, s, stats, smem, rescale);
      // Past the block-max barrier every warp's Q.K^T is done, so the stage's V rows may change.
      const int valid_tokens = min(piece.seqlen - block * kBlockSize, kBlockSize);
      if (valid_tokens < kBlockSize) zero_v_tail(kv, valid_tokens);
      store_probs<Element, kCols>(f, s, smem);
      fence_async_proxy();
      named_barrier_sync<kWarpgroupThreads>(kProbsReady);

      rescale_output<kCols>(o, rescale);
      accumulate_output<Element, kCols>(kv, smem, o);
      if (f.lane == 0) mbar_arrive(smem_addr(&smem.empty[stage]));
    }
    if (req == entry.end_req) allow_next_grid_launch();
    write_output<Element, kCols>(p, f, req, slot, stats, o, 1.f, smem);
    named_barrier_sync<kWarpgroupThreads>(kRequestDone);   // the next request reuses Q and the column sums
  }
}

template <typename Element, int kCols>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_narrow_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage<kCols>*>(smem_bytes);
  if (threadIdx.x == 0) {
    SchedEntry::prefetch(p.sched, blockIdx.y);   // its load follows the wait below
    for (int s = 0; s < kStages; ++s) {
      mbar_init(smem_addr(&smem.full[s]), kProducerThreads);
      mbar_init(smem_addr(&smem.empty[s]), kConsumerWarps);
    }
    mbar_fence_init();
  }
  // Query rows past p.rows are padding columns of S^T; keep them finite.
  for (int i = threadIdx.x; i < kSubTiles * kCols * 8; i += kThreads) store_zero_16(smem_addr(smem.q) + i * 16);
  __syncthreads();

  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const SchedEntry entry = SchedEntry::load(p.sched, blockIdx.y);
  if (warp_uniform_group(kWarpgroupThreads) > 0) {
    produce_kv_blocks<kCols>(p, entry, smem);
    return;
  }
  consume_kv_blocks<Element, kCols>(p, entry, smem);
}

}  // namespace narrow

template <typename Element, int kCols>
cudaError_t launch_decode_narrow(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(narrow::SharedStorage<kCols>) <= 227 * 1024, "shared memory over the sm_90 limit");
  return launch_with_pdl(narrow::mla_decode_narrow_kernel<Element, kCols>, dim3(1, p.num_parts),
                         dim3(narrow::kThreads), sizeof(narrow::SharedStorage<kCols>), stream, p);
}

}  // namespace mla

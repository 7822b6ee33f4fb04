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
// shared memory before P.V. A split request writes fp32 partials + LSE for the combine kernel.
//
// An fp8 (e4m3) cache keeps the 16-bit stages and everything the consumers do: the producers load each
// page's fp8 bytes into registers, convert them exactly to the query's type and store them in BlockLayout
// (produce_fp8_kv_blocks); the per-tensor descale multiplies the softmax scale and the output.
#pragma once

#include "mla_fp8.cuh"
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

// Named barriers of the consumer warpgroup (0 is __syncthreads).
enum Barrier : int { kQReady = 1, kBlockMaxReady = 2, kProbsReady = 3, kColumnSumsReady = 4, kRequestDone = 5 };

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
struct Fragment {
  int lane, warp, r0, quad_col;
  __device__ Fragment() : lane(threadIdx.x % 32), warp(threadIdx.x / 32), r0(warp * 16 + lane / 4),
                          quad_col(2 * (lane % 4)) {}
  __device__ int column(int c) const { return 8 * (c / 2) + quad_col + c % 2; }
  // Rows r0 and r0 + 1 sit in lanes L and L ^ 4: the even one of the pair is the row-pair's base.
  __device__ bool even_row() const { return (lane / 4) % 2 == 0; }
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
  const PageCopyLane lane(p, threadIdx.x - kWarpgroupThreads);
  const uint32_t dst_offset = BlockLayout::row(0, 0, lane.token) + ((lane.chunk ^ (lane.token % 8)) * 16);
  BlockCursor cursor{entry.begin_req, entry.begin_block};
  cursor.settle(p, entry);
  int page = cursor.valid(entry) ? cursor.page(p) : 0;
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
    ++cursor.block;
    cursor.settle(p, entry);
    if (cursor.valid(entry)) page = cursor.page(p);   // read while the copies are in flight
  }
  // Exit only after this thread's copies and their arrivals are done: wait for the last blocks' full
  // phases (none can complete again: no further arrivals come).
  for (int m = max(n - kStages, 0); m < n; ++m) mbar_wait(smem_addr(&smem.full[m % kStages]), (m / kStages) & 1);
}

// ---------------------------------------------------------------------------------------------------
// FP8 producer warpgroup. A 64-token fp8 page is 36,864 bytes, 18 16-byte chunks per thread; two
// stages of fp8 staging (another 72 KB) do not fit next to the two 16-bit stages, and staging in shared
// memory would add 72 KB of shared traffic per block to the 136 KB the wgmmas read. So each thread loads
// its 18 chunks into registers, converts them and stores them into the stage, while the next block's
// chunks are already on their way into a second register set (ping-pong): ~36-72 KB in flight per SM.
//
// Thread i loads fp8 chunk c = i % 4 (columns 16c..16c+15) of sub-tile t of tokens i / 4 + 32k (k < 2,
// t < 9): four consecutive threads read a token's 64 bytes of one sub-tile, a warp eight whole token rows
// over its nine t. The chunk becomes the 16-bit chunks 2c and 2c + 1 of that sub-tile row; both of a
// thread's tokens have token % 8 = (i / 4) % 8, so the two swizzled destinations are per-thread offsets
// plus compile-time immediates (and a quarter-warp's 16-byte stores cover all 32 banks: even chunks of
// one row, odd chunks of the next).

constexpr int kFp8ChunkValues = 16;
constexpr int kFp8ChunksPerSubTileRow = 64 / kFp8ChunkValues;                    // 4
constexpr int kFp8TokensPerPass = kProducerThreads / kFp8ChunksPerSubTileRow;     // 32
constexpr int kFp8Passes = kBlockSize / kFp8TokensPerPass;                        // 2
constexpr int kFp8ChunksPerThread = kFp8Passes * kSubTiles;                       // 18
static_assert(kFp8TokensPerPass % 8 == 0, "a pass must cover whole 8-token swizzle atoms");

struct Fp8Chunks {
  uint4 chunk[kFp8ChunksPerThread];   // [pass * kSubTiles + sub_tile]
};

// This producer thread's share of every KV block: where it reads in a page and writes in a stage.
template <typename Element>
struct Fp8BlockCopier {
  const char* src;            // its first chunk in page 0
  int64_t token_bytes, block_bytes;
  int num_blocks;
  uint32_t dst_first, dst_second;   // its two 16-bit chunks' offsets in a stage (pass 0, sub-tile 0)

  __device__ explicit Fp8BlockCopier(const DecodeParams& p) {
    const int tid = threadIdx.x - kWarpgroupThreads;
    const int chunk = tid % kFp8ChunksPerSubTileRow, token = tid / kFp8ChunksPerSubTileRow;
    token_bytes = p.k_stride_token;   // fp8: elements are bytes
    block_bytes = p.k_stride_block;
    num_blocks = p.num_blocks;
    src = static_cast<const char*>(p.k_cache) + token * token_bytes + chunk * 16;
    const uint32_t row = BlockLayout::row(0, 0, token);
    dst_first = row + (((2 * chunk) ^ (token % 8)) * 16);
    dst_second = row + (((2 * chunk + 1) ^ (token % 8)) * 16);
  }

  // Issues the loads of page `page` (a page outside [0, num_blocks) gives zeros, as the 16-bit path's
  // zero-filled cp.async does, and reads nothing).
  __device__ __forceinline__ void load(int page, Fp8Chunks& regs) const {
    if (static_cast<unsigned>(page) < static_cast<unsigned>(num_blocks)) {
      const char* const page_src = src + int64_t(page) * block_bytes;
#pragma unroll
      for (int k = 0; k < kFp8Passes; ++k) {
#pragma unroll
        for (int t = 0; t < kSubTiles; ++t) {
          const char* const chunk_src = page_src + k * kFp8TokensPerPass * token_bytes + t * 64;
          regs.chunk[k * kSubTiles + t] = load_global_stream_16(chunk_src);
        }
      }
    } else {
#pragma unroll
      for (int i = 0; i < kFp8ChunksPerThread; ++i) regs.chunk[i] = make_uint4(0, 0, 0, 0);
    }
  }

  // Converts the loaded chunks and stores them into the stage at shared address stage.
  __device__ __forceinline__ void store(uint32_t stage, const Fp8Chunks& regs) const {
#pragma unroll
    for (int k = 0; k < kFp8Passes; ++k) {
#pragma unroll
      for (int t = 0; t < kSubTiles; ++t) {
        uint4 first, second;
        e4m3x16_to<Element>(regs.chunk[k * kSubTiles + t], first, second);
        const uint32_t at = stage + k * (kFp8TokensPerPass / 8) * BlockLayout::kGroupBytes + t * 1024;
        store_shared_16(at + dst_first, first);
        store_shared_16(at + dst_second, second);
      }
    }
  }
};

// The part's blocks in order; `cursor` and `next_page` are one block ahead of `current` (block n).
// Issues the next block's loads into `next`, then converts `current` into stage n % kStages once the
// consumers have released it. Returns whether a next block exists.
template <typename Element, int kCols>
__device__ __forceinline__ bool fp8_pipeline_step(const DecodeParams& p, const SchedEntry& entry,
                                                  const Fp8BlockCopier<Element>& copier, BlockCursor& cursor,
                                                  int& next_page, int n, const Fp8Chunks& current, Fp8Chunks& next,
                                                  SharedStorage<kCols>& smem) {
  const bool more = cursor.valid(entry);
  if (more) {
    copier.load(next_page, next);
    ++cursor.block;
    cursor.settle(p, entry);
    if (cursor.valid(entry)) next_page = cursor.page(p);   // used by the next step: its latency hides here
  }
  const int stage = n % kStages;
  if (n >= kStages) mbar_wait(smem_addr(&smem.empty[stage]), (n / kStages - 1) & 1);
  copier.store(smem_addr(smem.kv[stage]), current);
  // No proxy fence here: it compiles to MEMBAR.ALL.CTA, which would wait for the next block's loads still in
  // flight (one block in flight, its latency exposed every step). The consumers fence after their full[] wait
  // (consume_kv_blocks), which the PTX memory model accepts anywhere on the path from these stores to the wgmmas.
  mbar_arrive(smem_addr(&smem.full[stage]));   // full[stage] expects one arrival per producer thread
  return more;
}

template <typename Element, int kCols>
__device__ void produce_fp8_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage<kCols>& smem) {
  const Fp8BlockCopier<Element> copier(p);
  BlockCursor cursor{entry.begin_req, entry.begin_block};
  cursor.settle(p, entry);
  if (!cursor.valid(entry)) return;
  Fp8Chunks ping, pong;   // two register sets, used alternately (indexing one array by n % 2 would spill)
  copier.load(cursor.page(p), ping);
  ++cursor.block;
  cursor.settle(p, entry);
  int next_page = cursor.valid(entry) ? cursor.page(p) : 0;
  for (int n = 0;; n += 2) {
    if (!fp8_pipeline_step<Element, kCols>(p, entry, copier, cursor, next_page, n, ping, pong, smem)) break;
    if (!fp8_pipeline_step<Element, kCols>(p, entry, copier, cursor, next_page, n + 1, pong, ping, smem)) break;
  }
  // Nothing is left in flight: every store was issued and ordered before its arrival.
}

// ---------------------------------------------------------------------------------------------------
// Consumer warpgroup phases.

// Q rows [0, p.rows) of request req into the swizzled Q tile (rows past p.rows stay zero).
template <int kCols>
__device__ __forceinline__ void load_q(const DecodeParams& p, int req, SharedStorage<kCols>& smem) {
  for (int i = threadIdx.x; i < p.rows * kQChunksPerRow; i += kWarpgroupThreads) {
    const int row = i / kQChunksPerRow, chunk = i % kQChunksPerRow;
    cp_async_16(smem_addr(smem.q) + swizzled_offset<kCols>(row, chunk * 8), q_chunk(p, req, row, chunk));
  }
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

// Scales (by the softmax scale times descale, the cache's factor) and masks the block's scores, agrees on
// each column's block max across the four warps, turns scores into probabilities and returns each column's
// rescale factor for O^T.
template <int kCols, typename Storage>
__device__ __forceinline__ void online_softmax(const DecodeParams& p, float descale, const Fragment& f, int block,
                                               int block_parity, bool needs_mask, float (&s)[kCols / 2],
                                               ColumnStats<kCols>& stats, Storage& smem,
                                               float (&rescale)[kCols / 4]) {
  constexpr int kOwnColumns = kCols / 4;
  float block_max[kOwnColumns];
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) {
    float m = -INFINITY;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float& x = s[(c / 2) * 4 + h * 2 + c % 2];
      x *= p.scale_log2 * descale;
      // -inf also discards NaN read from page slots past seqlen.
      if (needs_mask && block * kBlockSize + f.r0 + 8 * h >= stats.key_limit[c]) x = -INFINITY;
      m = fmaxf(m, x);
    }
    block_max[c] = warp_column_max(m);
  }
  if (f.lane < 4) {
#pragma unroll
    for (int c = 0; c < kOwnColumns; ++c) smem.block_max[block_parity][f.warp][f.column(c)] = block_max[c];
  }
  named_barrier_sync<kWarpgroupThreads>(kBlockMaxReady);
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) {
    float m = block_max[c];
#pragma unroll
    for (int w = 0; w < kConsumerWarps; ++w) m = fmaxf(m, smem.block_max[block_parity][w][f.column(c)]);
    const float base = fold_block_max(stats.max[c], m, rescale[c]);
    float sum = 0.f;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float& x = s[(c / 2) * 4 + h * 2 + c % 2];
      x = exp2f(x - base);
      sum += x;
    }
    stats.sum[c] = stats.sum[c] * rescale[c] + sum;
  }
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

// Normalizes O^T (times output_scale) and writes it transposed to out (or to the split's fp32 partial),
// with the LSE.
template <typename Element, int kCols, typename Storage>
__device__ __forceinline__ void write_output(const DecodeParams& p, const Fragment& f, int req, OutputSlot slot,
                                             const ColumnStats<kCols>& stats, const float (&o)[kDTiles][kCols / 2],
                                             float output_scale, Storage& smem) {
  constexpr int kOwnColumns = kCols / 4;
  float warp_sum[kOwnColumns];
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) warp_sum[c] = warp_column_sum(stats.sum[c]);
  if (f.lane < 4) {
#pragma unroll
    for (int c = 0; c < kOwnColumns; ++c) smem.column_sum[f.warp][f.column(c)] = warp_sum[c];
  }
  named_barrier_sync<kWarpgroupThreads>(kColumnSumsReady);
  float inv_sum[kOwnColumns], lse_log2[kOwnColumns];
#pragma unroll
  for (int c = 0; c < kOwnColumns; ++c) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kConsumerWarps; ++w) sum += smem.column_sum[w][f.column(c)];
    inv_sum[c] = sum == 0.f ? 0.f : (1.f / sum) * output_scale;
    lse_log2[c] = sum == 0.f ? -INFINITY : stats.max[c] + __log2f(sum);
  }

  const int64_t row_base = int64_t(slot.is_split ? slot.split_row : req) * p.rows;
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int which;
        const float2 rows = pair_rows(f, o[d][j * 4 + h * 2] * inv_sum[2 * j], o[d][j * 4 + h * 2 + 1] * inv_sum[2 * j + 1],
                                      which);
        const int column = f.column(2 * j + which);
        const int dim = d * 64 + (f.r0 & ~1) + 8 * h;
        if (column >= p.rows) continue;
        const int64_t offset = (row_base + column) * kHeadDimV + dim;
        if (slot.is_split) {
          *reinterpret_cast<float2*>(p.out_accum + offset) = rows;
        } else {
          *reinterpret_cast<uint32_t*>(static_cast<Element*>(p.out) + offset) = GmmaOps<Element>::pack(rows.x, rows.y);
        }
      }
    }
  }
  if (f.warp == 0 && f.lane < 4) {
#pragma unroll
    for (int c = 0; c < kOwnColumns; ++c) {
      const int row = f.column(c);
      if (row >= p.rows) continue;
      if (slot.is_split) {
        p.lse_accum[row_base + row] = lse_log2[c];
      } else {
        store_final_lse(p, req, row, lse_log2[c] == -INFINITY, lse_log2[c]);
      }
    }
  }
}

// The factor between the cache's stored values and K: descale_k for fp8 (read once, after the previous grid).
template <typename KvElement>
__device__ __forceinline__ float kv_scale(const DecodeParams& p) {
  if constexpr (kIsFp8Kv<KvElement>) {
    return __ldg(p.descale_k);
  } else {
    return 1.f;
  }
}

template <typename Element, typename KvElement, int kCols>
__device__ void consume_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage<kCols>& smem) {
  const Fragment f;
  // S = scale * Q.K^T = (scale * descale) * Q.K8^T and O = descale * P.V8: the 16-bit stages hold K8 exactly.
  const float descale = kv_scale<KvElement>(p);
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
    if (piece.num_blocks() > 0) load_q(p, req, smem);

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
      online_softmax<kCols>(p, descale, f, block, consumed & 1, needs_mask, s, stats, smem, rescale);
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
    write_output<Element, kCols>(p, f, req, slot, stats, o, descale, smem);
    named_barrier_sync<kWarpgroupThreads>(kRequestDone);   // the next request reuses Q and the column sums
  }
}

template <typename Element, typename KvElement, int kCols>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_narrow_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage<kCols>*>(smem_bytes);
  if (threadIdx.x == 0) {
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
  if (threadIdx.x >= kWarpgroupThreads) {
    if constexpr (kIsFp8Kv<KvElement>) {
      produce_fp8_kv_blocks<Element, kCols>(p, entry, smem);
    } else {
      static_assert(std::is_same_v<KvElement, Element>, "a 16-bit k_cache has the query's dtype");
      produce_kv_blocks<kCols>(p, entry, smem);
    }
    return;
  }
  consume_kv_blocks<Element, KvElement, kCols>(p, entry, smem);
}

}  // namespace narrow

template <typename Element, int kCols, typename KvElement>
cudaError_t launch_decode_narrow(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(narrow::SharedStorage<kCols>) <= 227 * 1024, "shared memory over the sm_90 limit");
  return launch_with_pdl(narrow::mla_decode_narrow_kernel<Element, KvElement, kCols>, dim3(1, p.num_parts),
                         dim3(narrow::kThreads), sizeof(narrow::SharedStorage<kCols>), stream, p);
}

}  // namespace mla

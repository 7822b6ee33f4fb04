// Split-KV MLA decode for Hopper (sm_90a).
//
// One persistent CTA per (64-row query tile, SM part); a part walks its slice of (request, KV block)
// pairs from the tile scheduler. Per KV block of 64 tokens:
//   warpgroup 0: S = Q K^T (wgmma 64x64x576) -> mask -> online softmax -> P
//                O[:, 0:256]   = O * rescale + P V[:, 0:256]   (P from registers)
//   warpgroup 1: O[:, 256:512] = O * rescale + P V[:, 256:512] (P through shared memory)
// The 64x512 fp32 O tile is split by columns because it is half the register file. KV pages arrive in
// two stages; a producer warpgroup refills each group of sub-tiles of a stage as soon as its readers
// release it, walking the part's blocks across request boundaries: by TMA from one thread when the
// query has several tiles (compute-bound: the consumers keep the issue slots), by cp.async from all 128
// threads for a single tile (memory-bound: as the swap-AB kernel, where cp.async beat one TMA lane).
// P reaches warpgroup 1 through its stage's RoPE sub-tile, which Q K^T has finished reading. V rows past
// seqlen are zeroed in shared memory so NaN in unused page slots never reaches O. A request split over
// several parts writes partials (out's dtype) + LSE that the combine kernel merges.
#pragma once

#include <cstddef>

#include "mla_launch.h"
#include "mla_params.h"
#include "mla_pipeline.cuh"
#include "mla_query.cuh"
#include "mla_schedule.cuh"
#include "mla_softmax.cuh"
#include "mla_wgmma.cuh"

namespace mla {
namespace wide {

constexpr int kStages = 2;
constexpr int kConsumerWarpgroups = 2;                          // warpgroups 0 and 1: MMA and softmax
constexpr int kProducerWarpgroup = kConsumerWarpgroups;         // warpgroup 2: TMA
constexpr int kConsumerThreads = kConsumerWarpgroups * kWarpgroupThreads;
constexpr int kThreads = kConsumerThreads + kWarpgroupThreads;
constexpr int kKSteps = kHeadDim / 16;                          // k-steps of S = Q K^T
constexpr int kTokenSteps = kBlockSize / 16;                    // k-steps of O += P V

// How a CTA's producer warpgroup loads KV (launch_decode_wide picks by the number of row tiles).
enum class KvLoads { kTma, kCpAsync };

// setmaxnreg budgets: a consumer holds its 256 columns of O (128 floats) plus S and P; the producer only
// issues copies, so its registers go to the consumers.
constexpr int kProducerRegisters = 24;
constexpr int kConsumerRegisters = 240;
// setmaxnreg.inc waits until the CTA's pool has the registers, and the pool is what the launch allocated (168 a
// thread at 384 threads): budgets above it hang the consumers (it did, in experiment v30).
constexpr int kLaunchRegisters = 64 * 1024 / kThreads / 8 * 8;
static_assert(kConsumerWarpgroups * kConsumerRegisters + kProducerRegisters <=
                  (kConsumerWarpgroups + 1) * kLaunchRegisters,
              "setmaxnreg budgets exceed the registers allocated at launch");

// A KV stage is loaded and released in three groups of 64-column sub-tiles, each as soon as its
// readers are done: V0 = columns 0-255 (read by Q K^T and warpgroup 0's P V), V1 = 256-511 (Q K^T and
// warpgroup 1's P V), RoPE = 512-575 (Q K^T; then it holds the block's P for warpgroup 1's P V).
enum SubTileGroup : int { kGroupV0 = 0, kGroupV1 = 1, kGroupRope = 2 };
constexpr int kGroups = 3;
constexpr int group_first_sub_tile(int g) { return g == kGroupV0 ? 0 : g == kGroupV1 ? 4 : 8; }
constexpr int group_sub_tiles(int g) { return g == kGroupRope ? 1 : 4; }
constexpr int group_releases(int g) { return g == kGroupV1 ? 2 : 1; }   // V1 is freed by both warpgroups
constexpr int kProbsSubTile = group_first_sub_tile(kGroupRope);
static_assert(kBlockSize * kBlockSize * 2 == kSubTileBytes, "a block's 64 x 64 P fills its RoPE sub-tile");

struct SharedStorage {
  alignas(1024) char q[kTileBytes];                 // Q: 64 rows x 576, nine swizzled 64-column sub-tiles
  alignas(1024) char kv[kStages][kTileBytes];       // KV blocks, laid out like Q; sub-tile 8 then holds P
  float rescale[kStages][kRowsPerTile];             // per-row O rescale of the stage's block
  float row_sum[kRowsPerTile];                      // final softmax denominators
  float row_max[kRowsPerTile];                      // final max (log2 domain)
  uint64_t full[kStages][kGroups];                  // mbarrier: the group of the stage landed
  uint64_t empty[kStages][kGroups];                 // mbarrier: its readers released it
  uint64_t probs_ready[kStages];                    // mbarrier: P and rescale of the stage's block written
};
static_assert(sizeof(SharedStorage) <= 227 * 1024, "shared memory over the sm_90 limit");
// Tiles back to back, each starting on a 1024-byte swizzle atom; the row statistics and mbarriers follow.
static_assert(offsetof(SharedStorage, kv) == kTileBytes && offsetof(SharedStorage, rescale) == 3 * kTileBytes &&
                  offsetof(SharedStorage, full) == offsetof(SharedStorage, rescale) + (kStages + 2) * kRowsPerTile * 4,
              "shared memory layout");

// Named barriers of the consumer warpgroups (0 is __syncthreads).
enum NamedBarrier : int { kRowStatsReady = 1, kWarpgroup0 = 2, kWarpgroup1 = 3, kConsumers = 4 };

// The n-th KV block a CTA streams goes to stage n % kStages; the stage's mbarriers flip phase every use.
struct Stage {
  int index, phase;
  __device__ explicit Stage(uint32_t n) : index(n % kStages), phase((n / kStages) & 1) {}
};

// This thread's place in its warpgroup's m64nN accumulators: rows r0 and r0 + 8, and in every 8-column
// group j the columns 8j + quad_col + {0, 1}; element [j * 4 + h * 2 + e] is (row r0 + 8h, 8j + quad_col + e).
struct Fragment {
  int warpgroup, lane, r0, quad_col;
  __device__ Fragment()
      : warpgroup(warp_uniform_group(kWarpgroupThreads)), lane(threadIdx.x % 32),
        r0((threadIdx.x % kWarpgroupThreads) / 32 * 16 + lane / 4), quad_col(2 * (lane % 4)) {}
};

// Online softmax state of this thread's rows r0 and r0 + 8, in the log2 domain.
struct RowStats {
  float max[2] = {-INFINITY, -INFINITY};
  float sum[2] = {0.f, 0.f};   // warpgroup 0: this thread's share until share_row_stats
};

// Every producer, before it refills group g of a stage with the part's n-th block (n = produced): waits until the
// group's readers released the block before it there (the first kStages blocks find their stages free).
__device__ __forceinline__ void wait_group_free(SharedStorage& smem, const Stage& stage, int produced, int group) {
  if (produced >= kStages) mbar_wait(smem_addr(&smem.empty[stage.index][group]), stage.phase ^ 1);
}

// Every producer, after issuing the part's first block: waits until all of its groups landed before it issues the
// second, so the first blocks of all CTAs share the copy rate instead of queuing behind their next ones
// (kernels/PERF_NOTES.md, v98).
__device__ __forceinline__ void wait_first_block(SharedStorage& smem) {
  for (int g = 0; g < kGroups; ++g) mbar_wait(smem_addr(&smem.full[0][g]), 0);
}

// ---------------------------------------------------------------------------------------------------
// TMA producer: thread 0 of warpgroup 2 walks the part's (request, block) pairs.

__device__ __forceinline__ void issue_kv_group(const DecodeParams& p, int page, int group, uint32_t kv,
                                               uint32_t full) {
  mbar_arrive_expect_tx(full, group_sub_tiles(group) * kSubTileBytes);
  // Out-of-range pages fall outside the tensor map and arrive as zeros.
  for (int t = group_first_sub_tile(group); t < group_first_sub_tile(group) + group_sub_tiles(group); ++t) {
    tma_load_3d(kv + t * kSubTileBytes, &p.k_map, t * 64, 0, page, full);
  }
}

__device__ __forceinline__ void produce_kv_blocks(const DecodeParams& p, const SchedEntry& entry,
                                                  SharedStorage& smem) {
  tma_prefetch_descriptor(&p.k_map);
  BlockCursor cursor;
  int page = cursor.begin(p, entry);
  for (int produced = 0; cursor.valid(entry); ++produced) {
    const Stage stage(produced);
    for (int g = 0; g < kGroups; ++g) {
      wait_group_free(smem, stage, produced, g);
      issue_kv_group(p, page, g, smem_addr(smem.kv[stage.index]), smem_addr(&smem.full[stage.index][g]));
    }
    page = cursor.next(p, entry);
    if (produced == 0) wait_first_block(smem);
  }
}

// ---------------------------------------------------------------------------------------------------
// cp.async producer: every thread of warpgroup 2 walks the same (request, block) pairs and copies its
// share of each KV block. Thread i copies 16-byte chunk c = i % 8 of tokens i / 8 + 16k (k < 4) of every
// 64-column sub-tile into the layout a 64x64 SWIZZLE_128B TMA box gives (chunk c of token r at chunk
// c ^ (r % 8) of its 128-byte row): eight consecutive threads read one token's 128 contiguous bytes, and
// the four tokens of a thread share r % 8, so its destinations are one offset plus immediates.

__device__ __forceinline__ void copy_kv_blocks(const DecodeParams& p, const SchedEntry& entry, SharedStorage& smem) {
  const PageCopyLane<> lane(p, threadIdx.x - kProducerWarpgroup * kWarpgroupThreads);
  const uint32_t dst_offset = lane.token * 128 + ((lane.chunk ^ (lane.token % 8)) * 16);
  BlockCursor cursor;
  int page = cursor.begin(p, entry);
  int produced = 0;
  for (; cursor.valid(entry); ++produced) {
    const Stage stage(produced);
    uint32_t src_bytes;
    const char* const src = lane.source(p, page, src_bytes);
    const uint32_t dst = smem_addr(smem.kv[stage.index]) + dst_offset;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      wait_group_free(smem, stage, produced, g);
#pragma unroll
      for (int k = 0; k < kBlockSize / 16; ++k) {
#pragma unroll
        for (int t = group_first_sub_tile(g); t < group_first_sub_tile(g) + group_sub_tiles(g); ++t) {
          cp_async_16_zfill(dst + t * kSubTileBytes + k * 16 * 128, src + k * 16 * lane.token_bytes + t * 128,
                            src_bytes);
        }
      }
      // full[stage][g] expects one arrival per producer thread; each lands once this thread's copies so far
      // have, those of group g among them.
      cp_async_mbar_arrive_noinc(smem_addr(&smem.full[stage.index][g]));
    }
    page = cursor.next(p, entry);
    if (produced == 0) wait_first_block(smem);
  }
  // Exit only after this thread's copies and their arrivals are done: wait for the last blocks' full
  // phases (none can complete again: no further arrivals come).
  for (int m = max(produced - kStages, 0); m < produced; ++m) {
    const Stage stage(m);
    for (int g = 0; g < kGroups; ++g) mbar_wait(smem_addr(&smem.full[stage.index][g]), stage.phase);
  }
}

// ---------------------------------------------------------------------------------------------------
// Consumer phases.

// The query rows of the tile whose first row is tile_row; the tile's rows past them are padding rows.
__device__ __forceinline__ int tile_query_rows(const DecodeParams& p, int tile_row) {
  return min(p.rows - tile_row, kRowsPerTile);
}

// Copies this tile's query rows of request req into the swizzled Q tile with both warpgroups (copy_query_rows).
// Rows past p.rows stay zero (zero_padding_rows): wgmma rows are independent and those outputs are never stored.
__device__ __forceinline__ void load_q(const DecodeParams& p, int req, int tile_row, SharedStorage& smem) {
  const uint32_t q_tile = smem_addr(smem.q);
  copy_query_rows<kConsumerThreads / 32>(p, req, tile_row, tile_query_rows(p, tile_row),
                                         [&](int row, int chunk) { return q_tile + swizzled_offset(row, chunk * 8); });
  cp_async_wait_all();
  fence_async_proxy();
  named_barrier_sync<kConsumerThreads>(kConsumers);
}

// The Q tile's rows past the tile's query rows (padding rows) as zeros, by the consumers before their first load_q
// (whose proxy fence and barrier order them), and online_softmax_speculative makes their probabilities 0: Q K^T and
// P V then multiply zeros there instead of stale bytes. Their outputs are never stored either way, but at the card's
// power cap operands cost time: 32 rows in a tile took 4% less energy and time a sustained step
// (kernels/PERF_NOTES.md, forty-first session).
__device__ __forceinline__ void zero_padding_rows(const DecodeParams& p, int tile_row, SharedStorage& smem) {
  const int num_rows = tile_query_rows(p, tile_row);
  for (int i = num_rows * kQChunksPerRow + threadIdx.x; i < kRowsPerTile * kQChunksPerRow; i += kConsumerThreads) {
    store_zero_16(smem_addr(smem.q) + swizzled_offset(i / kQChunksPerRow, (i % kQChunksPerRow) * 8));
  }
}

// S = Q K^T for the KV block at shared address kv.
template <typename Element>
__device__ __forceinline__ void compute_scores(const SharedStorage& smem, uint32_t kv, float (&s)[32]) {
  // Each k-step's descriptors as the first ones plus a constant (desc_plus): ncu counted ~13 instructions a wgmma
  // building them afresh, 480 a warp and block, issued between the wgmmas (v140).
  const uint64_t q_desc = desc_k_major(smem_addr(smem.q)), kv_desc = desc_k_major(kv);
  cute::warpgroup_arrive();
#pragma unroll
  for (int k = 0; k < kKSteps; ++k) {
    const int offset = (k / 4) * kSubTileBytes + (k % 4) * 32;
    wgmma_ss<typename GmmaOps<Element>::QK>(desc_plus(q_desc, offset), desc_plus(kv_desc, offset), s, k > 0,
                                            std::make_index_sequence<32>{});
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(s);
}

// The block's scores at or past each row's key limit become -inf, which also discards NaN read from page slots past
// seqlen.
__device__ __forceinline__ void mask_scores(const Fragment& f, int block, const int (&key_limit)[2], float (&s)[32]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if (block * kBlockSize + j * 8 + f.quad_col + e >= key_limit[h]) s[j * 4 + h * 2 + e] = -INFINITY;
      }
    }
  }
}

// Row h's max over the block: this thread's 16 raw scores of the row (in four chains, a shorter dependency), then
// its quad's, which hold the row's other columns.
__device__ __forceinline__ float row_block_max(const float (&s)[32], int h) {
  float partial_max[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
#pragma unroll
  for (int j = 0; j < 8; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float& m = partial_max[j % 2 * 2 + e];
      m = fmaxf(m, s[j * 4 + h * 2 + e]);
    }
  }
  float block_max = fmaxf(fmaxf(partial_max[0], partial_max[1]), fmaxf(partial_max[2], partial_max[3]));
  block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffff, block_max, 1));
  return fmaxf(block_max, __shfl_xor_sync(0xffffffff, block_max, 2));
}

// exp2 of an exponent in the block's column group j (columns 8j..8j+7 of the accumulator): groups 6 and 7, a quarter
// of the exponentials, on the FMA pipe, which issues four times as fast as MUFU.EX2.
__device__ __forceinline__ float block_exp2(float exponent, int j) {
  return j >= 6 ? exp2_on_fma_pipe(exponent) : exp2f(exponent);
}

// The fp8 64-row kernel's softmax step: masks the block's scores (mask_scores), turns them into probabilities in
// place and returns each row's rescale factor for O. The softmax scale is positive, so the max is taken on the raw
// scores and the scale goes into exp2's argument (one FFMA a score). Its running max is exact: its 2^8 P must stay
// within e4m3 (and its load_q writes its padding rows as zeros).
__device__ __forceinline__ void online_softmax(const DecodeParams& p, const Fragment& f, int block, bool needs_mask,
                                               const int (&key_limit)[2], float (&s)[32], RowStats& stats,
                                               float (&rescale)[2]) {
  const float scale_log2 = p.scale_log2;
  if (needs_mask) mask_scores(f, block, key_limit, s);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float base = fold_block_max(stats.max[h], row_block_max(s, h) * scale_log2, rescale[h]);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float& x = s[j * 4 + h * 2 + e];
        x = block_exp2(fmaf(x, scale_log2, -base), j);
        sum += x;
      }
    }
    stats.sum[h] = stats.sum[h] * rescale[h] + sum;
  }
}

// P = exp2(s * scale - base) of each row as the A operand of m64n256k16 (k-step t: columns 16t..16t+15), and each
// row's sum of it; s is left as it is.
template <typename Element>
__device__ __forceinline__ void probabilities(const float (&s)[32], float scale_log2, const float (&base)[2],
                                              uint32_t (&probs)[kTokenSteps][4], float (&sum)[2]) {
  sum[0] = sum[1] = 0.f;
#pragma unroll
  for (int t = 0; t < kTokenSteps; ++t) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int j = 2 * t + r / 2, h = r % 2;
      float x[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        x[e] = block_exp2(fmaf(s[j * 4 + h * 2 + e], scale_log2, -base[h]), j);
        sum[h] += x[e];
      }
      probs[t][r] = GmmaOps<Element>::pack(x[0], x[1]);
    }
  }
}

// The 16-bit softmax step: masks the block's scores (mask_scores), packs its probabilities and returns each row's
// rescale factor for O. The running max is lazy (fold_block_max_lazy: it moves only by more than kLazyMaxSlackLog2, so
// almost every block's rescale factors are exactly 1, rescale_rows_lazily), so a block almost never moves it: P is
// first computed against the running max as it is while the block's row maxima reduce beside the exponentials, and
// again only in a warp where a block max moves a running max; the max's reduction then leaves the serial path (v153).
// A piece's first block, which always moves it, takes both passes: with the first pass behind a branch ptxas no longer
// overlaps its exponentials with the max's reduction, and every block lost ~3% (v154a).
// padding[h] says row h is a padding row (zero_padding_rows), whose probabilities become 0 through an exponent base
// no score reaches.
template <typename Element>
__device__ __forceinline__ void online_softmax_speculative(const DecodeParams& p, const Fragment& f, int block,
                                                           bool needs_mask, const int (&key_limit)[2], float (&s)[32],
                                                           RowStats& stats, float (&rescale)[2],
                                                           const bool (&padding)[2],
                                                           uint32_t (&probs)[kTokenSteps][4]) {
  constexpr float kPaddingBase = 3e38f;
  const float scale_log2 = p.scale_log2;
  if (needs_mask) mask_scores(f, block, key_limit, s);
  float base[2], sum[2], block_max[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float running_max = stats.max[h];   // as fold_block_max_lazy leaves it when the block does not move it
    const float row_base = move_running_max(running_max, running_max, rescale[h]);
    base[h] = padding[h] ? kPaddingBase : row_base;
  }
  probabilities<Element>(s, scale_log2, base, probs, sum);
  bool moves = false;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    block_max[h] = row_block_max(s, h) * scale_log2;
    moves |= block_max[h] > stats.max[h] + kLazyMaxSlackLog2;
  }
  if (__any_sync(0xffffffff, moves)) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float row_base = fold_block_max_lazy(stats.max[h], block_max[h], rescale[h]);
      base[h] = padding[h] ? kPaddingBase : row_base;
    }
    probabilities<Element>(s, scale_log2, base, probs, sum);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) stats.sum[h] = stats.sum[h] * rescale[h] + sum[h];
}

// P into the swizzled 64 x 64 tile at p_tile and the rows' rescale factors into row_rescale, for another warpgroup's
// P V.
__device__ __forceinline__ void store_probs_to(const Fragment& f, const uint32_t (&probs)[kTokenSteps][4],
                                               const float (&rescale)[2], uint32_t p_tile, float* row_rescale) {
  // probs[t][r] is this lane's pair of an 8x8 matrix: rows warp_row + 8 (r % 2) + 0..7, columns 16t + 8 (r / 2)
  // + 0..7, in the layout stmatrix takes; lane l gives the address of row l % 8 of matrix l / 8.
  const int matrix = f.lane / 8;
  const int row = (f.r0 - f.lane / 4) + 8 * (matrix % 2) + f.lane % 8;
#pragma unroll
  for (int t = 0; t < kTokenSteps; ++t) {
    stmatrix_x4(p_tile + swizzled_offset(row, t * 16 + 8 * (matrix / 2)), probs[t]);
  }
  if (f.lane % 4 == 0) {
    row_rescale[f.r0] = rescale[0];
    row_rescale[f.r0 + 8] = rescale[1];
  }
}

// P into the block's RoPE sub-tile (Q K^T has read it) and the rows' rescale factors, for warpgroup 1.
__device__ __forceinline__ void store_probs(const Fragment& f, const uint32_t (&probs)[kTokenSteps][4],
                                            const float (&rescale)[2], int stage, SharedStorage& smem) {
  store_probs_to(f, probs, rescale, smem_addr(smem.kv[stage] + kProbsSubTile * kSubTileBytes), smem.rescale[stage]);
}

// Zeroes V rows [valid_tokens, 64) of four 64-column sub-tiles from first_sub_tile on, by one warpgroup,
// and makes them visible to its wgmma: 0 * NaN would poison P V.
__device__ __forceinline__ void zero_v_tail(uint32_t first_sub_tile, int valid_tokens, NamedBarrier warpgroup_barrier) {
  const int chunks = (kBlockSize - valid_tokens) * 8 * 4;
  for (int i = threadIdx.x % kWarpgroupThreads; i < chunks; i += kWarpgroupThreads) {
    const int row = valid_tokens + i / 32, sub = (i % 32) / 8, chunk = i % 8;
    store_zero_16(first_sub_tile + sub * kSubTileBytes + row * 128 + chunk * 16);
  }
  fence_async_proxy();
  named_barrier_sync<kWarpgroupThreads>(warpgroup_barrier);
}

// Multiplies this thread's two rows (r0 and r0 + 8) of an m64n256 accumulator.
__device__ __forceinline__ void scale_rows(float (&o)[128], float row0, float row1) {
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    o[j * 4 + 0] *= row0;
    o[j * 4 + 1] *= row0;
    o[j * 4 + 2] *= row1;
    o[j * 4 + 3] *= row1;
  }
}

// scale_rows after online_softmax_speculative: a warp whose 16 rows' factors are all exactly 1 skips the multiplies,
// which took ~7% of a 128-head block (kernels/PERF_NOTES.md, v133b). With exact maxima too few blocks skip to pay for
// the vote and the branch (v133, v24a).
__device__ __forceinline__ void rescale_rows_lazily(float (&o)[128], float row0, float row1) {
  if (__any_sync(0xffffffff, row0 != 1.f || row1 != 1.f)) scale_rows(o, row0, row1);
}

// The V operand of k-step t (tokens 16t..16t+15) of O += P V, from first_sub_tile on.
__device__ __forceinline__ uint64_t v_desc(uint32_t first_sub_tile, int t) {
  return desc_mn_major(first_sub_tile + t * 16 * 128);
}

// Warpgroup 0: issues O[:, 0:256] = O * rescale + P V[:, 0:256], P from registers (read until the batch's
// warpgroup_wait).
template <typename Element>
__device__ __forceinline__ void issue_v0(uint32_t kv, const uint32_t (&probs)[kTokenSteps][4],
                                         const float (&rescale)[2], float (&o)[128]) {
  rescale_rows_lazily(o, rescale[0], rescale[1]);
  fence_operands(o);
  cute::warpgroup_arrive();
#pragma unroll
  for (int t = 0; t < kTokenSteps; ++t) {
    wgmma_rs<typename GmmaOps<Element>::PV_RS>(probs[t], v_desc(kv, t), o, std::make_index_sequence<128>{});
  }
  cute::warpgroup_commit_batch();
}

// Warpgroup 1: O[:, 256:512] = O * rescale + P V[:, 256:512], P and rescale from shared memory; v1 is the
// stage's first V1 sub-tile, probs its P.
template <typename Element>
__device__ __forceinline__ void accumulate_v1(const Fragment& f, uint32_t v1, uint32_t probs,
                                              const float (&rescale)[kRowsPerTile], float (&o)[128]) {
  rescale_rows_lazily(o, rescale[f.r0], rescale[f.r0 + 8]);
  fence_operands(o);
  cute::warpgroup_arrive();
#pragma unroll
  for (int t = 0; t < kTokenSteps; ++t) {
    wgmma_ss<typename GmmaOps<Element>::PV_SS>(desc_k_major(probs + t * 32), v_desc(v1, t), o, true,
                                               std::make_index_sequence<128>{});
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(o);
}

// One KV block as the consumers see it.
struct BlockStep {
  int block;           // KV block of the request
  Stage stage;
  uint32_t kv;         // shared address of the stage
  int valid_tokens;    // tokens before seqlen
};

// After a stage's full wait: cp.async wrote it through the generic proxy
// and wgmma reads it through the async proxy; the wait makes the copies visible to this thread, the proxy fence
// orders them before its wgmmas (conservative, as in the swap-AB kernel). TMA writes through the async proxy
// itself: nothing to order.
template <KvLoads kLoads>
__device__ __forceinline__ void order_loads_before_wgmma() {
  if constexpr (kLoads != KvLoads::kTma) fence_async_proxy();
}

// Warpgroup 0's share of a block: S = Q K^T, softmax, P to warpgroup 1, then its half of O.
template <typename Element, KvLoads kLoads>
__device__ __forceinline__ void process_block_warpgroup0(const DecodeParams& p, const Fragment& f,
                                                        const BlockStep& b, bool needs_mask, const int (&key_limit)[2],
                                                        const bool (&padding)[2],
                                                        RowStats& stats, float (&o)[128], float (&s)[32],
                                                        SharedStorage& smem) {
  // The whole block has landed before its first wgmma (waiting per group of sub-tiles measured no faster).
  for (int g = 0; g < kGroups; ++g) mbar_wait(smem_addr(&smem.full[b.stage.index][g]), b.stage.phase);
  order_loads_before_wgmma<kLoads>();
  compute_scores<Element>(smem, b.kv, s);
  if (threadIdx.x == 0) mbar_arrive(smem_addr(&smem.empty[b.stage.index][kGroupV1]));

  float rescale[2];
  uint32_t probs[kTokenSteps][4];
  online_softmax_speculative<Element>(p, f, b.block, needs_mask, key_limit, s, stats, rescale, padding, probs);
  // Every warp's Q K^T has read the stage: P may go over its RoPE sub-tile and its V tail rows may be zeroed. Each
  // stage has its own P (warpgroup 0 may start the next block while warpgroup 1 still reads this one), freed with
  // the stage by warpgroup 1.
  named_barrier_sync<kWarpgroupThreads>(kWarpgroup0);
  if (b.valid_tokens < kBlockSize) zero_v_tail(b.kv, b.valid_tokens, kWarpgroup0);
  issue_v0<Element>(b.kv, probs, rescale, o);
  // P to warpgroup 1 while the tensor pipe multiplies this warpgroup's half.
  store_probs(f, probs, rescale, b.stage.index, smem);
  fence_async_proxy();
  named_barrier_sync<kWarpgroupThreads>(kWarpgroup0);
  if (threadIdx.x == 0) mbar_arrive(smem_addr(&smem.probs_ready[b.stage.index]));
  cute::warpgroup_wait<0>();
  fence_operands(o);
  if (threadIdx.x == 0) mbar_arrive(smem_addr(&smem.empty[b.stage.index][kGroupV0]));
}

// Warpgroup 1's share of a block: its half of O from warpgroup 0's P.
template <typename Element, KvLoads kLoads>
__device__ __forceinline__ void process_block_warpgroup1(const Fragment& f, const BlockStep& b, float (&o)[128],
                                                         SharedStorage& smem) {
  mbar_wait(smem_addr(&smem.full[b.stage.index][kGroupV1]), b.stage.phase);
  order_loads_before_wgmma<kLoads>();
  const uint32_t v1 = b.kv + group_first_sub_tile(kGroupV1) * kSubTileBytes;
  if (b.valid_tokens < kBlockSize) zero_v_tail(v1, b.valid_tokens, kWarpgroup1);
  mbar_wait(smem_addr(&smem.probs_ready[b.stage.index]), b.stage.phase);
  accumulate_v1<Element>(f, v1, smem_addr(smem.kv[b.stage.index] + kProbsSubTile * kSubTileBytes),
                         smem.rescale[b.stage.index], o);
  if (threadIdx.x == kWarpgroupThreads) {
    mbar_arrive(smem_addr(&smem.empty[b.stage.index][kGroupV1]));
    mbar_arrive(smem_addr(&smem.empty[b.stage.index][kGroupRope]));   // its P read
  }
}

// Warpgroup 0 owns the softmax statistics: it completes the row sums and hands them to warpgroup 1.
template <typename Storage>   // any storage with row_sum and row_max of kRowsPerTile floats
__device__ __forceinline__ void share_row_stats(const Fragment& f, RowStats& stats, Storage& smem) {
  if (f.warpgroup == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      stats.sum[h] += __shfl_xor_sync(0xffffffff, stats.sum[h], 1);
      stats.sum[h] += __shfl_xor_sync(0xffffffff, stats.sum[h], 2);
    }
    if (f.lane % 4 == 0) {
      smem.row_sum[f.r0] = stats.sum[0];
      smem.row_sum[f.r0 + 8] = stats.sum[1];
      smem.row_max[f.r0] = stats.max[0];
      smem.row_max[f.r0 + 8] = stats.max[1];
    }
    named_barrier_arrive<kConsumerThreads>(kRowStatsReady);
  } else {
    named_barrier_sync<kConsumerThreads>(kRowStatsReady);
    stats.sum[0] = smem.row_sum[f.r0];
    stats.sum[1] = smem.row_sum[f.r0 + 8];
    stats.max[0] = smem.row_max[f.r0];
    stats.max[1] = smem.row_max[f.r0 + 8];
  }
}

// Row h (of the fragment's two) of this warpgroup's 256 columns of O times inv_sum, as Element, to dst (the row's
// first column of the warpgroup) when valid. Each quad of lanes writes whole 32-byte sectors: the accumulator gives
// a quad 8 consecutive columns of a row, half a sector in 16 bits, so the values are first exchanged within the quad
// (two shuffles, which every lane takes part in) until each lane holds 4 consecutive columns of 16. Half-sector
// stores made the partials of 64 and 128 rows slower than fp32 ones (PERF_NOTES.md, v55a and v58).
template <typename Element>
__device__ __forceinline__ void store_row(Element* dst, bool valid, int quad, const float (&o)[128], int h,
                                          float inv_sum) {
  // Lane q holds a = columns 2q, 2q+1 and b = 8+2q, 8+2q+1 of each 16; it ends with columns 4q..4q+3:
  // lane 0 (a0, a1), lane 1 (a2, a3), lane 2 (b0, b1), lane 3 (b2, b3).
  const bool odd = quad & 1, high = quad & 2;
  const bool forwards = odd == high;   // lanes 0 and 3 pass on what they received
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const uint32_t a = GmmaOps<Element>::pack(o[j * 8 + h * 2] * inv_sum, o[j * 8 + h * 2 + 1] * inv_sum);
    const uint32_t b = GmmaOps<Element>::pack(o[j * 8 + 4 + h * 2] * inv_sum, o[j * 8 + 4 + h * 2 + 1] * inv_sum);
    const uint32_t keep = high ? b : a;
    const uint32_t got = __shfl_xor_sync(0xffffffff, high ? a : b, 2);
    const uint32_t got2 = __shfl_xor_sync(0xffffffff, forwards ? got : keep, 1);
    const uint32_t x = odd ? got2 : (high ? got : keep), y = odd ? (high ? keep : got) : got2;
    if (valid) *reinterpret_cast<uint2*>(dst + j * 16 + 4 * quad) = make_uint2(x, y);
  }
}

// Normalizes this warpgroup's 256 columns of O (times o_scale) and writes them to out, or to the split's partial
// (out's dtype); warpgroup 0 writes the LSE.
template <typename Element>
__device__ __forceinline__ void write_output(const DecodeParams& p, const Fragment& f, int tile_row, int req,
                                             OutputSlot slot, const RowStats& stats, const float (&o)[128],
                                             float o_scale) {
  const int col_base = f.warpgroup * (kHeadDimV / kConsumerWarpgroups), quad = f.lane % 4;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = tile_row + f.r0 + 8 * h;
    const bool valid = row < p.rows;   // padding rows write nothing, but take part in store_row's shuffles
    const bool empty = stats.sum[h] == 0.f;
    // o_scale after the reciprocal: o_scale / sum changed the 16-bit kernel's code for o_scale = 1.
    const float inv_sum = (empty ? 0.f : 1.f / stats.sum[h]) * o_scale;
    const float lse_log2 = stats.max[h] + __log2f(stats.sum[h]);
    const bool writes_lse = valid && f.warpgroup == 0 && quad == 0;
    const int64_t offset = int64_t(min(row, p.rows - 1)) * kHeadDimV + col_base;
    store_row(output_rows<Element>(p, req, slot) + offset, valid, quad, o, h, inv_sum);
    if (!writes_lse) continue;
    if (slot.is_split) {
      p.lse_accum[int64_t(slot.split_row) * p.rows + row] = empty ? -INFINITY : lse_log2;
    } else {
      store_final_lse(p, req, row, empty, lse_log2);
    }
  }
}

template <typename Element, KvLoads kLoads>
__device__ __forceinline__ void consume_kv_blocks(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                                  SharedStorage& smem) {
  const int tile_row = blockIdx.x * kRowsPerTile;
  zero_padding_rows(p, tile_row, smem);
  const bool padding[2] = {tile_row + f.r0 >= p.rows, tile_row + f.r0 + 8 >= p.rows};
  int consumed = 0;   // blocks this CTA has processed: picks the stage and the mbarrier phase
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const int num_blocks = piece.num_blocks();
    const OutputSlot slot = output_slot(p, entry, req);
    int row_key_limit[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) row_key_limit[h] = key_limit(p, piece.seqlen, tile_row + f.r0 + 8 * h);
    const int unmasked_keys = min_key_limit(p, piece.seqlen);
    RowStats stats;
    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.f;
    if (num_blocks > 0) load_q(p, req, tile_row, smem);
    // Warpgroup 0's scores. Declared per request, not per block: wgmma's accumulator operands are in/out,
    // and this is the register schedule the kernel was tuned with.
    float s[32];

    for (int i = 0; i < num_blocks; ++i, ++consumed) {
      const int block = piece.first + i;
      const Stage stage(consumed);
      const BlockStep b{block, stage, smem_addr(smem.kv[stage.index]),
                        min(piece.seqlen - block * kBlockSize, kBlockSize)};
      if (f.warpgroup == 0) {
        const bool needs_mask = (block + 1) * kBlockSize > unmasked_keys;
        process_block_warpgroup0<Element, kLoads>(p, f, b, needs_mask, row_key_limit, padding, stats, o, s, smem);
      } else {
        process_block_warpgroup1<Element, kLoads>(f, b, o, smem);
      }
    }
    if (req == entry.end_req) allow_next_grid_launch();
    share_row_stats(f, stats, smem);
    write_output<Element>(p, f, tile_row, req, slot, stats, o, 1.f);
    named_barrier_sync<kConsumerThreads>(kConsumers);   // the next request reuses the Q tile and row statistics
  }
}

template <typename Element, KvLoads kLoads>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage*>(smem_bytes);
  const Fragment f;
  if (threadIdx.x == 0) {
    SchedEntry::prefetch(p.sched, blockIdx.y);   // its load follows the wait below
    for (int s = 0; s < kStages; ++s) {
      for (int g = 0; g < kGroups; ++g) {
        mbar_init(smem_addr(&smem.full[s][g]), kLoads == KvLoads::kTma ? 1 : kWarpgroupThreads);
        mbar_init(smem_addr(&smem.empty[s][g]), group_releases(g));
      }
      mbar_init(smem_addr(&smem.probs_ready[s]), 1);
    }
    mbar_fence_init();
  }
  __syncthreads();
  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const SchedEntry entry = SchedEntry::load(p.sched, blockIdx.y);

  if (f.warpgroup == kProducerWarpgroup) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    if constexpr (kLoads == KvLoads::kTma) {
      if (threadIdx.x == kProducerWarpgroup * kWarpgroupThreads) produce_kv_blocks(p, entry, smem);
    } else {
      copy_kv_blocks(p, entry, smem);
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegisters));
  consume_kv_blocks<Element, kLoads>(p, f, entry, smem);
}

}  // namespace wide

template <typename Element>
cudaError_t launch_decode_wide(const DecodeParams& p, cudaStream_t stream) {
  const dim3 grid((p.rows + kRowsPerTile - 1) / kRowsPerTile, p.num_parts);
  const auto kernel = grid.x == 1 ? wide::mla_decode_kernel<Element, wide::KvLoads::kCpAsync>
                                  : wide::mla_decode_kernel<Element, wide::KvLoads::kTma>;
  return launch_with_pdl(kernel, grid, dim3(wide::kThreads), sizeof(wide::SharedStorage), stream, p);
}

}  // namespace mla

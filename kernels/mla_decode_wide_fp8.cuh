// Decode on an fp8 (e4m3) KV cache with the query rows in wgmma's M (v105): one 64-row tile a CTA, as the 16-bit
// 64-row kernel (mla_decode.cuh), but Q.K^T and P.V on fp8 wgmma. It runs 17 rows and more (launch_decode), except
// 17-32 rows planned as row halves: 17-32 rows (padded to 64) pay Q.K^T once a block instead of once per 16 rows (the
// swap-AB kernels' N is the rows, and an SS wgmma is paced by its operand bytes at 128 a cycle: m64n16k32 20 cycles,
// m64n64k32 32; benchmarks/results/h200_wgmma_rates.md), and no byte is widened to 16 bits (the fp8 64-row kernel
// before it, v82, widened the cache in shared memory).
//
//   warpgroup 0: S [64 x 64] = Q8 [64 x 576] . K8^T       18 wgmma m64n64k32 e4m3, SS: Q8 quantized per row on
//                                                           load, K8 straight from the raw stage
//                -> scale (descale_k / q_scale of the row) -> mask -> online softmax -> P (fp32)
//                -> P8 as two e4m3 parts (high = e4m3(256 p), low = e4m3(256 p - high)) in registers
//                O[:, 0:256] = O * rescale + P8 . V8[:, 0:256]     RS m64n256k32, both parts, V8 from the Vt stage
//   warpgroup 1: O[:, 256:512] the same, P8's registers handed over through shared memory thread by thread
//   warpgroup 2: copies each block into a raw stage and transposes its V into a Vt stage (mla_fp8_stages.cuh)
//
// fp8 wgmma takes B K-major, so P.V reads V8 as the Vt stage's rows (a V column's 64 tokens). P's A registers are
// its accumulator fragment packed as it lies: a thread holds tokens 8j + 2q, 8j + 2q + 1 of S (q = lane % 4), and A
// register r of k-step t holds k positions 4q..4q+3 (r = 0, 1) or 16 + 4q.. (r = 2, 3); the producer writes each Vt
// row in the matching order (VtOrder::kWideP), so no shuffle is needed.
// O = descale_k / 2^8 * sum P8 . V8 / row sum; lse from the fp32 probabilities.
//
// A folded tile (at most 32 query rows, v113): rows 32-63 repeat rows 0-31 and carry P8's low part, so one P.V
// wgmma a k-step multiplies both parts (8 m64n256k32 a block instead of 16), and warps w, w + 2 of warpgroup 0, which
// then hold the same rows' scores, split each block's exponentials and packing by k-step (folded_softmax); O's rows
// 32-63 are added to rows 0-31 once a request (add_folded_rows). Its running max is lazy and its P8 is e4m3(32 p)
// (kFoldedSlackLog2, kProbScale below), so O = descale_k / 2^5 * ... there. A folded tile with a swap-AB Q.K^T (its
// softmax down S^T's columns, across warps) measured slower (docs/kernel-design.md; PERF_NOTES.md, v146, v147).
#pragma once

#include <type_traits>

#include "mla_decode.cuh"
#include "mla_fp8_stages.cuh"

namespace mla {
namespace wide_fp8 {

using narrow_fp8::kPvKSteps;   // k32 steps of P.V over a block's tokens
using narrow_fp8::RawLayout;
using narrow_fp8::StageRing;
using narrow_fp8::VtLayout;
using wide::Fragment;
using wide::RowStats;

constexpr int kConsumerWarpgroups = 2;
constexpr int kConsumerThreads = kConsumerWarpgroups * kWarpgroupThreads;
constexpr int kThreads = kConsumerThreads + kWarpgroupThreads;
constexpr int kParts = 2;                    // P8's high and low parts
constexpr int kFoldedRows = kRowsPerTile / 2;   // the query rows of a folded tile
template <bool kFolded>
constexpr int kHeldParts = kFolded ? 1 : kParts;   // a folded tile's thread holds its rows' part
template <bool kFolded>
constexpr int kProbWords = kHeldParts<kFolded> * kPvKSteps * 4;   // a thread's A registers of P8
// setmaxnreg: the transposing producer holds 16 x 16 bytes a thread (PERF_NOTES.md, v42: slower below ~150 there);
// warpgroup 0 holds O (128), S (32) and, while its P.V is in flight under the next Q.K^T, P8's registers (16);
// warpgroup 1 only O and P8.
constexpr int kLaunchRegisters = 64 * 1024 / kThreads / 8 * 8;   // 168
constexpr int kWarpgroup0Registers = 208;
constexpr int kWarpgroup1Registers = 184;
constexpr int kProducerRegisters = 112;
static_assert(kProducerRegisters + kWarpgroup0Registers + kWarpgroup1Registers <= 3 * kLaunchRegisters,
              "setmaxnreg budgets exceed the registers allocated at launch");

// The folded tile's running max is lazy: a row's max moves only when a block's max exceeds it by more than
// kFoldedSlackLog2, so p reaches 2^3 and P8 is written as e4m3(2^5 p) (at most 256, within e4m3's 448); almost every
// block's rescale factors are then 1 and a warp skips O's rescale. The unfolded tile keeps the exact max and 2^8 p:
// there the skip's branch cost more than the multiplies it saved (PERF_NOTES.md, v135).
constexpr float kFoldedSlackLog2 = 3.f;
template <bool kFolded>
constexpr float kProbScale = kFolded ? 32.f : narrow_fp8::kProbScale;

using QK = gmma::MMA_64x64x32_F32E4M3E4M3_SS_TN<>;
using PV = gmma::MMA_64x256x32_F32E4M3E4M3_RS_TN<>;

// The hand-over of a block's P8 and rescale factors from warpgroup 0 to warpgroup 1: thread i of warpgroup 1 holds
// the same fragment rows as thread i of warpgroup 0, so quad k of thread i is all it reads. In 16-byte quads (a
// quarter warp's 8 lanes cover 128 contiguous bytes: no conflicts) a hand-over is 5 stores and 5 loads a thread
// instead of 18 each (v143): every shared-memory instruction of the block queues in the same MIO pipe (s45c).
struct ProbsExchange {
  uint4 quads[kProbWords<false> / 4][kWarpgroupThreads];   // quad 2 part + t: P8's A registers of k-step t
  float2 rescale[kWarpgroupThreads];                        // the two rows' rescale factors
};
__device__ __forceinline__ uint4 as_quad(const uint32_t (&words)[4]) {
  return make_uint4(words[0], words[1], words[2], words[3]);
}
__device__ __forceinline__ void from_quad(uint4 quad, uint32_t (&words)[4]) {
  words[0] = quad.x, words[1] = quad.y, words[2] = quad.z, words[3] = quad.w;
}

struct SharedStorage : StageRing<2, 2> {
  alignas(1024) char q[RawLayout::kStageBytes];   // Q8: 64 rows x 576 e4m3 in the raw stages' layout
  ProbsExchange probs[2];                          // by block parity
  uint64_t probs_full[2], probs_empty[2];          // mbarriers: 4 warps each
  uint64_t softmax_done[2];                        // unfolded: warpgroup 0's 4 warps past a block's softmax
  float q_inv_scale[kRowsPerTile];                 // 1 / q_scale of each row
  float row_sum[kRowsPerTile], row_max[kRowsPerTile];   // wide::share_row_stats
};
static_assert(sizeof(SharedStorage) <= 227 * 1024, "shared memory over the sm_90 limit");

// The tile's query rows of request req, quantized row by row (narrow_fp8::quantize_query_row) into smem.q by both
// consumer warpgroups, 32 rows a pass. Rows past p.rows are zeros with scale 1.
template <typename Element, bool kFolded>
__device__ __forceinline__ void load_q(const DecodeParams& p, int req, int tile_row, SharedStorage& smem) {
  constexpr int kRowsPerPass = kConsumerThreads / narrow_fp8::kQLanesPerRow;
  const int part = threadIdx.x % narrow_fp8::kQLanesPerRow;
  const uint32_t q_base = smem_addr(smem.q);
#pragma unroll 1
  for (int first = 0; first < kRowsPerTile; first += kRowsPerPass) {
    const int row = first + threadIdx.x / narrow_fp8::kQLanesPerRow;
    const int query_row = tile_row + (kFolded ? row % kFoldedRows : row);
    const float inv_scale = narrow_fp8::quantize_query_row<Element>(
        p, req, query_row, query_row < p.rows, part, [&](int chunk, uint32_t low, uint32_t high) {
          const int column_byte = chunk * 8, sub_tile = column_byte / narrow_fp8::kRawSubTileColumns;
          const int byte_in_row = column_byte % narrow_fp8::kRawSubTileColumns;
          const uint32_t at = RawLayout::row(q_base, sub_tile, row) + (((byte_in_row / 16) ^ (row % 8)) * 16) +
                              byte_in_row % 16;
          asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(at), "r"(low), "r"(high) : "memory");
        });
    if (part == 0) smem.q_inv_scale[row] = inv_scale;
  }
  fence_async_proxy();
  named_barrier_sync<kConsumerThreads>(wide::kConsumers);
}

// S = Q8 K8^T for the raw stage at shared address raw (unscaled), waited for: the wait also retires this
// warpgroup's P.V of the block before.
__device__ __forceinline__ void compute_scores(uint32_t raw, const SharedStorage& smem, float (&s)[32]) {
  // Descriptors as the first ones plus a constant, as the 16-bit kernel's compute_scores (v140).
  const uint64_t q_desc = desc_k_major(smem_addr(smem.q), RawLayout::kGroupBytes);
  const uint64_t raw_desc = desc_k_major(raw, RawLayout::kGroupBytes);
  cute::warpgroup_arrive();
#pragma unroll
  for (int k = 0; k < narrow_fp8::kRawKSteps; ++k) {
    const int offset = (k / 4) * 1024 + (k % 4) * 32;   // sub-tile k / 4, 32 columns a k-step
    wgmma_ss<QK>(desc_plus(q_desc, offset), desc_plus(raw_desc, offset), s, k > 0, std::make_index_sequence<32>{});
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(s);
}

// Two probabilities as P8's parts, high = e4m3(c p) and low = e4m3(c p - high) for c = kProbScale, through f16x2: one
// conversion from fp32 for the pair, then e4m3x2 <-> f16x2 and a packed subtraction. c p is rounded to f16 first
// (2^-11 relative, far below the low part's 2^-8) and the high part's remainder is exact in f16 (Sterbenz).
template <bool kFolded>
__device__ __forceinline__ void split_pair(float p0, float p1, uint16_t& high, uint16_t& low) {
  const __half2 x = __floats2half2_rn(p0 * kProbScale<kFolded>, p1 * kProbScale<kFolded>);
  high = __nv_cvt_halfraw2_to_fp8x2(x, __NV_SATFINITE, __NV_E4M3);
  const __half2 back = __half2(__nv_cvt_fp8x2_to_halfraw2(high, __NV_E4M3));
  low = __nv_cvt_halfraw2_to_fp8x2(__hsub2(x, back), __NV_SATFINITE, __NV_E4M3);
}

// P (fp32, the accumulator fragment) as P8's A registers: probs[part][t][r] for k-step t (tokens 32t..32t+31).
// Register r holds row r0 + 8 (r % 2) at k positions 4q + 16 (r / 2) + e, which are S's columns
// 32t + 8 (2 (r / 2) + e / 2) + 2q + e % 2: s[16t + 8 (r / 2) + 4 (e / 2) + 2 (r % 2) + e % 2].
__device__ __forceinline__ void pack_probs(const float (&s)[32], uint32_t (&probs)[kParts][kPvKSteps][4]) {
#pragma unroll
  for (int t = 0; t < kPvKSteps; ++t) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      uint16_t high[2], low[2];
#pragma unroll
      for (int pair = 0; pair < 2; ++pair) {
        const int j = 16 * t + 8 * (r / 2) + 4 * pair + 2 * (r % 2);
        split_pair<false>(s[j], s[j + 1], high[pair], low[pair]);
      }
      probs[0][t][r] = high[0] | (uint32_t(high[1]) << 16);
      probs[1][t][r] = low[0] | (uint32_t(low[1]) << 16);
    }
  }
}

// O += P8 . V8 for this warpgroup's 256 columns of the Vt stage at shared address vt: both parts, issued.
template <int kHeld>
__device__ __forceinline__ void issue_products(uint32_t vt, int warpgroup, const uint32_t (&probs)[kHeld][kPvKSteps][4],
                                               float (&o)[128]) {
  const uint32_t columns = vt + warpgroup * (kHeadDimV / kConsumerWarpgroups) * VtLayout::kRowBytes;
  cute::warpgroup_arrive();
#pragma unroll
  for (int part = 0; part < kHeld; ++part) {
#pragma unroll
    for (int t = 0; t < kPvKSteps; ++t) {
      wgmma_rs<PV>(probs[part][t], narrow_fp8::desc_k_major_sw64(columns + t * 32), o, std::make_index_sequence<128>{});
    }
  }
  cute::warpgroup_commit_batch();
}

// After __syncwarp, lane 0 of each warp arrives on an mbarrier that counts the warpgroup's four warps.
__device__ __forceinline__ void warp_arrive(const Fragment& f, uint64_t& barrier) {
  __syncwarp();
  if (f.lane == 0) mbar_arrive(smem_addr(&barrier));
}

// One KV block as the consumers see it: the CTA's consumed-th, block `block` of its request.
struct BlockStep {
  int block, stage, phase, buffer;   // both rings have two stages; P's hand-over two buffers
  __device__ BlockStep(int block_, int consumed)
      : block(block_), stage(consumed % 2), phase((consumed / 2) & 1), buffer(consumed % 2) {}
};

// A folded tile's softmax in warpgroup 0 (v113b): warps w and w + 2 hold the same rows' scores. Both take the row
// max over the block's 64 tokens, but the exponentials, the row sum and P8's two parts of only k-step `half` (tokens
// 32 half .. 32 half + 31). row_scale_log2: exp2's scale of each row's raw score (positive, so the max is taken on
// the raw scores). The row sums are this warp's half's share (add_folded_rows adds the pair's).
__device__ __forceinline__ void folded_softmax(const Fragment& f, int half, int block, bool needs_mask,
                                               const int (&key_limit)[2], const float (&row_scale_log2)[2],
                                               float (&s)[32], RowStats& stats, float (&rescale)[2],
                                               uint32_t (&high)[4], uint32_t (&low)[4]) {
  if (needs_mask) wide::mask_scores(f, block, key_limit, s);
  float base[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    base[h] = fold_block_max_lazy(stats.max[h], wide::row_block_max(s, h) * row_scale_log2[h], rescale[h],
                                  kFoldedSlackLog2);
  }
  float sum[2] = {0.f, 0.f};
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    uint16_t high_pair[2], low_pair[2];
#pragma unroll
    for (int pair = 0; pair < 2; ++pair) {
      const int j = 8 * (r / 2) + 4 * pair + 2 * (r % 2), h = r % 2;   // as pack_probs, for k-step 0
      float x[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float score = half ? s[16 + j + e] : s[j + e];   // a select: s stays in registers
        const float exponent = fmaf(score, row_scale_log2[h], -base[h]);
        x[e] = r / 2 == 1 && pair == 1 ? exp2_on_fma_pipe(exponent) : exp2f(exponent);   // a quarter on the FMA pipe
        sum[h] += x[e];
      }
      split_pair<true>(x[0], x[1], high_pair[pair], low_pair[pair]);
    }
    high[r] = high_pair[0] | (uint32_t(high_pair[1]) << 16);
    low[r] = low_pair[0] | (uint32_t(low_pair[1]) << 16);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) stats.sum[h] = stats.sum[h] * rescale[h] + sum[h];
}

// A folded tile's P8 hand-over in warpgroup 0: warps 0, 1 (rows 0-31, the high part) computed k-step 0, warps 2, 3
// (their repeat, the low part) k-step 1. Each thread writes its k-step's two parts to its own slot and to its
// partner's (thread tid ^ kPartner: the same rows in the other half), then reads its own part of the partner's k-step.
__device__ __forceinline__ void hand_over_folded(int tid, int half, const uint32_t (&high)[4], const uint32_t (&low)[4],
                                                 const float (&rescale)[2], ProbsExchange& out,
                                                 uint32_t (&probs)[1][kPvKSteps][4]) {
  constexpr int kPartner = kWarpgroupThreads / 2;   // lane l of warp w + 2 is 64 threads after lane l of warp w
  uint32_t own[4], partners[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    own[r] = half ? low[r] : high[r];
    partners[r] = half ? high[r] : low[r];
  }
  out.quads[half][tid] = as_quad(own);
  out.quads[half][tid ^ kPartner] = as_quad(partners);
  out.rescale[tid] = make_float2(rescale[0], rescale[1]);
  named_barrier_sync<kWarpgroupThreads>(wide::kWarpgroup0);
  uint32_t other[4];
  from_quad(out.quads[1 - half][tid], other);
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    probs[0][0][r] = half ? other[r] : own[r];   // selects, not an index by half: P8's registers stay registers
    probs[0][1][r] = half ? own[r] : other[r];
  }
}

// O = O * rescale (skipped by a folded tile's warp whose factors are all 1), then O += P8 . V8 for this warpgroup's
// columns of the block's Vt stage, issued.
template <bool kFolded>
__device__ __forceinline__ void issue_block_products(const Fragment& f, const BlockStep& b,
                                                     const uint32_t (&probs)[kHeldParts<kFolded>][kPvKSteps][4],
                                                     const float (&rescale)[2], SharedStorage& smem, float (&o)[128]) {
  if constexpr (kFolded) {
    wide::rescale_rows_lazily(o, rescale[0], rescale[1]);
  } else {
    wide::scale_rows(o, rescale[0], rescale[1]);
  }
  fence_operands(o);
  mbar_wait(smem_addr(&smem.vt_full[b.stage]), b.phase);
  fence_async_proxy();   // the producer's transposing stores (generic proxy) before wgmma reads them
  issue_products(smem_addr(smem.vt[b.stage]), f.warpgroup, probs, o);
}

// Warpgroup 0's blocks of a request: S, the softmax, P8 for both warpgroups, its half of O. Its P.V of a block stays
// in flight under the next block's Q.K^T (wgmma groups complete in order: that wait retires it), so the tensor pipe
// runs the two back to back while warpgroup 1's P.V fills the softmax.
template <bool kFolded>
__device__ __forceinline__ void run_blocks_warpgroup0(const DecodeParams& p, const Fragment& f, const Piece& piece,
                                                     int consumed, const int (&key_limit)[2],
                                                     const float (&row_scale)[2], RowStats& stats, float (&s)[32],
                                                     SharedStorage& smem, float (&o)[128]) {
  const int tid = threadIdx.x % kWarpgroupThreads;
  const int unmasked_keys = min_key_limit(p, piece.seqlen);
  for (int i = 0; i < piece.num_blocks(); ++i) {
    const BlockStep b(piece.first + i, consumed + i);
    mbar_wait(smem_addr(&smem.raw_full[b.stage]), b.phase);
    fence_async_proxy();   // cp.async (generic proxy) wrote the stage; wgmma reads it (async proxy)
    compute_scores(smem_addr(smem.raw[b.stage]), smem, s);
    fence_operands(o);     // the previous block's P.V is retired too
    warp_arrive(f, smem.raw_empty[b.stage]);
    if (i > 0) warp_arrive(f, smem.vt_empty[1 - b.stage]);
    float rescale[2];
    const bool needs_mask = (b.block + 1) * kBlockSize > unmasked_keys;
    uint32_t probs[kHeldParts<kFolded>][kPvKSteps][4];
    ProbsExchange& out = smem.probs[b.buffer];
    if constexpr (kFolded) {
      const int half = f.r0 >= kFoldedRows;   // warps 2, 3: the low part, k-step 1
      const float row_scale_log2[2] = {row_scale[0] * p.scale_log2, row_scale[1] * p.scale_log2};
      uint32_t high[4], low[4];
      folded_softmax(f, half, b.block, needs_mask, key_limit, row_scale_log2, s, stats, rescale, high, low);
      mbar_wait(smem_addr(&smem.probs_empty[b.buffer]), b.phase ^ 1);   // the first use of a buffer finds it free
      hand_over_folded(tid, half, high, low, rescale, out, probs);
    } else {
#pragma unroll
      for (int j = 0; j < 32; ++j) s[j] *= row_scale[(j / 2) % 2];   // element j is row r0 + 8 ((j / 2) % 2)
      wide::online_softmax(p, f, b.block, needs_mask, key_limit, s, stats, rescale);
      warp_arrive(f, smem.softmax_done[b.buffer]);   // the producer may transpose the next block now
      pack_probs(s, probs);
      mbar_wait(smem_addr(&smem.probs_empty[b.buffer]), b.phase ^ 1);   // the first use of a buffer finds it free
#pragma unroll
      for (int k = 0; k < kProbWords<kFolded> / 4; ++k) out.quads[k][tid] = as_quad(probs[k / 2][k % 2]);
      out.rescale[tid] = make_float2(rescale[0], rescale[1]);
    }
    warp_arrive(f, smem.probs_full[b.buffer]);
    issue_block_products<kFolded>(f, b, probs, rescale, smem, o);
  }
  cute::warpgroup_wait<0>();
  fence_operands(o);
  if (piece.num_blocks() > 0) warp_arrive(f, smem.vt_empty[(consumed + piece.num_blocks() - 1) % 2]);
}

// Warpgroup 1's blocks of a request: its half of O from warpgroup 0's P8, each waited for.
template <bool kFolded>
__device__ __forceinline__ void run_blocks_warpgroup1(const Fragment& f, const Piece& piece, int consumed,
                                                     SharedStorage& smem, float (&o)[128]) {
  const int tid = threadIdx.x % kWarpgroupThreads;
  for (int i = 0; i < piece.num_blocks(); ++i) {
    const BlockStep b(piece.first + i, consumed + i);
    mbar_wait(smem_addr(&smem.probs_full[b.buffer]), b.phase);
    const ProbsExchange& in = smem.probs[b.buffer];
    uint32_t probs[kHeldParts<kFolded>][kPvKSteps][4];
    float rescale[2];
#pragma unroll
    for (int k = 0; k < kProbWords<kFolded> / 4; ++k) from_quad(in.quads[k][tid], probs[k / 2][k % 2]);
    const float2 factors = in.rescale[tid];
    rescale[0] = factors.x, rescale[1] = factors.y;
    warp_arrive(f, smem.probs_empty[b.buffer]);
    issue_block_products<kFolded>(f, b, probs, rescale, smem, o);
    cute::warpgroup_wait<0>();
    fence_operands(o);
    warp_arrive(f, smem.vt_empty[b.stage]);
  }
}

// A folded tile's O rows 32-63 (the low part's products) added to rows 0-31, and warpgroup 0's row sums of each
// pair of warps (folded_softmax), through the Q tile's bytes: no wgmma reads Q8 after the request's last Q.K^T, which
// warpgroup 0 waited for before its last hand-over. Half of the accumulator a round; thread i of warp w + 2 holds
// the elements of thread i of warp w.
__device__ __forceinline__ void add_folded_rows(const Fragment& f, SharedStorage& smem, float (&o)[128],
                                                RowStats& stats) {
  constexpr int kRoundValues = 64, kSlots = kConsumerThreads / 2;
  static_assert((kRoundValues + 2) * kSlots * sizeof(float) <= sizeof(smem.q), "the Q tile holds one round");
  float* buffer = reinterpret_cast<float*>(smem.q);   // [value][slot]
  const bool low_rows = f.r0 >= kFoldedRows;
  const int slot = f.warpgroup * (kSlots / 2) + (f.r0 / 16 % 2) * 32 + f.lane;
#pragma unroll
  for (int round = 0; round < 2; ++round) {
    if (round > 0) named_barrier_sync<kConsumerThreads>(wide::kConsumers);   // the round before was read
    if (low_rows) {
#pragma unroll
      for (int i = 0; i < kRoundValues; ++i) buffer[i * kSlots + slot] = o[round * kRoundValues + i];
      if (round == 0) buffer[kRoundValues * kSlots + slot] = stats.sum[0];
      if (round == 0) buffer[(kRoundValues + 1) * kSlots + slot] = stats.sum[1];
    }
    named_barrier_sync<kConsumerThreads>(wide::kConsumers);
    if (!low_rows) {
#pragma unroll
      for (int i = 0; i < kRoundValues; ++i) o[round * kRoundValues + i] += buffer[i * kSlots + slot];
      if (round == 0) stats.sum[0] += buffer[kRoundValues * kSlots + slot];
      if (round == 0) stats.sum[1] += buffer[(kRoundValues + 1) * kSlots + slot];
    }
  }
}

// kGroup: the consumer warpgroup (0 or 1), a template argument so that each one's code runs under its own
// register budget.
template <typename Element, bool kFolded, int kGroup>
__device__ __forceinline__ void consume_kv_blocks(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                                  SharedStorage& smem) {
  const int tile_row = blockIdx.x * kRowsPerTile;
  const float descale = *p.descale_k;
  int consumed = 0;   // blocks this CTA has processed: picks the stages, the buffers and the mbarrier phases
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    int row_key_limit[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = f.r0 + 8 * h;
      row_key_limit[h] = key_limit(p, piece.seqlen, tile_row + (kFolded ? row % kFoldedRows : row));
    }
    RowStats stats;
    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.f;
    load_q<Element, kFolded>(p, req, tile_row, smem);   // both warpgroups; even for a piece without blocks
    if constexpr (kGroup == 0) {
      const float row_scale[2] = {descale * smem.q_inv_scale[f.r0], descale * smem.q_inv_scale[f.r0 + 8]};
      float s[32];   // the scores, declared per request as in the 16-bit kernel
      run_blocks_warpgroup0<kFolded>(p, f, piece, consumed, row_key_limit, row_scale, stats, s, smem, o);
    } else {
      run_blocks_warpgroup1<kFolded>(f, piece, consumed, smem, o);
    }
    consumed += piece.num_blocks();
    if (req == entry.end_req) allow_next_grid_launch();
    if constexpr (kFolded) add_folded_rows(f, smem, o, stats);
    wide::share_row_stats(f, stats, smem);
    wide::write_output<Element>(p, f, tile_row, req, slot, stats, o, descale / kProbScale<kFolded>);
    named_barrier_sync<kConsumerThreads>(wide::kConsumers);   // the next request reuses Q8, its scales, the stats
  }
}

template <typename Element, bool kFolded>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_wide_fp8_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage*>(smem_bytes);
  if (threadIdx.x == 0) {
    SchedEntry::prefetch(p.sched, blockIdx.y);   // its load follows the wait below
    smem.init_barriers(kWarpgroupThreads / 32, kConsumerThreads / 32);   // raw: warpgroup 0's Q.K^T; Vt: both
    for (int b = 0; b < 2; ++b) {
      mbar_init(smem_addr(&smem.probs_full[b]), kWarpgroupThreads / 32);
      mbar_init(smem_addr(&smem.probs_empty[b]), kWarpgroupThreads / 32);
      mbar_init(smem_addr(&smem.softmax_done[b]), kWarpgroupThreads / 32);
    }
    mbar_fence_init();
  }
  __syncthreads();
  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const int tid = threadIdx.x - kConsumerThreads;
  if (tid >= 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    // The folded tile's producer paces the block: it reads pages ahead (PieceCursor) and transposes as soon as it
    // can. The unfolded tile's is paced by warpgroup 0 and waits for its softmax (PERF_NOTES.md, v114b, v116).
    using Cursor = std::conditional_t<kFolded, PieceCursor, BlockCursor>;
    narrow_fp8::produce_kv_blocks<narrow_fp8::VtOrder::kWideP, Cursor, !kFolded>(
        p, SchedEntry::load(p.sched, blockIdx.y), smem, tid);
    return;
  }
  if (threadIdx.x < kWarpgroupThreads) {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kWarpgroup0Registers));
    consume_kv_blocks<Element, kFolded, 0>(p, Fragment(), SchedEntry::load(p.sched, blockIdx.y), smem);
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kWarpgroup1Registers));
    consume_kv_blocks<Element, kFolded, 1>(p, Fragment(), SchedEntry::load(p.sched, blockIdx.y), smem);
  }
}

}  // namespace wide_fp8

template <typename Element>
cudaError_t launch_decode_wide_fp8(const DecodeParams& p, cudaStream_t stream) {
  const dim3 grid((p.rows + kRowsPerTile - 1) / kRowsPerTile, p.num_parts);
  const bool folded = p.rows <= wide_fp8::kFoldedRows;
  const auto kernel = folded ? wide_fp8::mla_decode_wide_fp8_kernel<Element, true>
                             : wide_fp8::mla_decode_wide_fp8_kernel<Element, false>;
  return launch_with_pdl(kernel, grid, dim3(wide_fp8::kThreads), sizeof(wide_fp8::SharedStorage), stream, p);
}

}  // namespace mla

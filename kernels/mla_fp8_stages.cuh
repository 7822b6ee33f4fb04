// What the fp8 (e4m3) KV cache decode kernels share (mla_decode_narrow_fp8.cuh splits 16 query rows' blocks between
// two consumer warpgroups, mla_decode_narrow_fp8_split.cuh splits 16 rows' O^T by V's columns, and
// mla_decode_wide_fp8.cuh takes its stages and producer): the raw and Vt stages, the producer warpgroup that fills
// them, and the swap-AB consumer's Q load, Q.K^T and P stores.
//
//   S^T [64 x 16] = K8 [64 x 576] . Q8^T            18 wgmma m64n16k32 e4m3: K straight from the cp.async
//                                                    stage (576 bytes a token), Q quantized per row on load
//   O^T [512 x 16] = V8^T [512 x 64] . P8^T         per block into a fresh accumulator, added to O in fp32:
//                                                    wgmma m64n32k32 e4m3, P's high and low parts as 32 columns
// fp8 wgmma takes both operands K-major, so V (the cache's first 512 columns, token-major) is transposed: in
// shared memory into Vt stages (a 64-byte row of 64 tokens per V column, 32 KB a block) by the producer
// warpgroup once the block has landed (each thread reads 16 tokens x 16 columns: 16 conflict-free 16-byte loads,
// transposes the 16 x 16 bytes in registers with PRMT and writes 16 rows of 16 tokens), or, in the block split, by
// each consumer thread into P.V's A registers (mla_fp8_register_v.cuh; it accumulates straight into O^T, P's parts
// as two k halves).
// P = exp(s - max) in [0, 1] is scaled by 2^8 (into e4m3's normal range) and written as two e4m3 parts, high =
// e4m3(256 p) and low = e4m3(256 p - high): P.V's error stays ~2^-8 relative instead of e4m3's 2^-4. The row
// sums are taken from the fp32 P. With a Vt stage each block's P.V starts from zero and is added to O in fp32 (P.V
// straight into O^T measured 7-11% slower there: twice the SS wgmmas, each reading its Vt tile; PERF_NOTES.md, x2).
// Scales: S = softmax_scale * descale_k * (K8 . Q8) / q_scale[row] and O = descale_k / 2^8 * sum P8.V8, where
// q_scale = 448 / max|q_row| maps each query row onto e4m3's range.
//
// Stages (StageRing, each kernel its depth): raw fp8 stages (40 KB: 128-byte rows of 128 columns, the fifth sub-tile
// half used) and Vt stages (32 KB, 64-byte rows, the 64-byte swizzle). With R raw stages the producer copies block
// n, then transposes block n - (R - 1) (the blocks after it still landing). Barriers: raw_full (128 cp.async
// arrivals; the producer waits on it too, since it transposes bytes other threads copied), raw_empty (the producer's
// 4 warps after reading the stage for the transpose, and the consumer warps that ran Q.K^T on it), vt_full (128
// producer threads, after transposing), vt_empty (the consumer warps that ran P.V on it); StageRing::init_barriers
// takes each kernel's consumer counts.
#pragma once

#include <cuda_fp8.h>

#include "mla_decode_narrow.cuh"

namespace mla {
namespace narrow_fp8 {

using narrow::ColumnStats;
using narrow::Fragment;
using narrow::kConsumerWarps;
using narrow::kDTiles;
using narrow::kProducerThreads;

constexpr int kCols = 16;                       // query rows of a consumer tile: the wgmma N of Q.K^T
constexpr int kRawSubTileColumns = 128;                                          // e4m3 values a 128-byte row
constexpr int kRawSubTiles = (kHeadDim + kRawSubTileColumns - 1) / kRawSubTileColumns;   // 5 (the last: 64)
constexpr int kRawKSteps = kHeadDim / 32;                                        // 18 k32 steps of Q.K^T
constexpr int kPvKSteps = kBlockSize / 32;      // k32 steps of P.V over a block's tokens
constexpr float kProbScale = 256.f;             // P is written as e4m3 of 2^8 p
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

// Vt stage: V column d is the 64-byte row d (64 tokens); its 16-token chunk g at chunk g ^ ((d / 2) % 4), the
// 64-byte swizzle (8-row atoms of 512 bytes). P^T has the same layout with a row per query column.
struct VtLayout {
  static constexpr int kRowBytes = kBlockSize;
  static constexpr int kAtomBytes = 8 * kRowBytes;
  static constexpr int kStageBytes = kHeadDimV * kRowBytes;
  __device__ static uint32_t chunk(uint32_t base, int row, int token_chunk) {
    return base + row * kRowBytes + ((token_chunk ^ ((row / 2) % 4)) * 16);
  }
};

// The raw and Vt stages and their barriers, first in each kernel's shared storage.
template <int kRaw, int kVt>
struct StageRing {
  static constexpr int kRawStages = kRaw, kVtStages = kVt;
  static constexpr int kTransposeLag = kRaw - 1;   // blocks still landing while one is transposed
  alignas(1024) char raw[kRaw][RawLayout::kStageBytes];
  alignas(1024) char vt[kVt][VtLayout::kStageBytes];
  uint64_t raw_full[kRaw], raw_empty[kRaw], vt_full[kVt], vt_empty[kVt];

  // By one thread. raw_empty also counts the producer's warps (they read the stage to transpose it).
  __device__ void init_barriers(int raw_consumer_warps, int vt_consumer_warps) {
    for (int s = 0; s < kRaw; ++s) {
      mbar_init(smem_addr(&raw_full[s]), kProducerThreads);
      mbar_init(smem_addr(&raw_empty[s]), raw_consumer_warps + kProducerThreads / 32);
    }
    for (int s = 0; s < kVt; ++s) {
      mbar_init(smem_addr(&vt_full[s]), kProducerThreads);
      mbar_init(smem_addr(&vt_empty[s]), vt_consumer_warps);
    }
  }
};

// Raw stages alone, for a kernel that reads V from them into registers (no Vt stage, no transposing warps):
// raw_empty counts only the consumer warps that read the stage.
template <int kRaw>
struct RawRing {
  static constexpr int kRawStages = kRaw;
  alignas(1024) char raw[kRaw][RawLayout::kStageBytes];
  uint64_t raw_full[kRaw], raw_empty[kRaw];

  __device__ void init_barriers(int consumer_warps) {   // by one thread
    for (int s = 0; s < kRaw; ++s) {
      mbar_init(smem_addr(&raw_full[s]), kProducerThreads);
      mbar_init(smem_addr(&raw_empty[s]), consumer_warps);
    }
  }
};

// K-major operand in the 64-byte swizzle: rows of 64 bytes, 8-row groups 512 bytes apart.
__device__ __forceinline__ uint64_t desc_k_major_sw64(uint32_t addr) {
  uint64_t d = 0;
  d |= uint64_t((addr & 0x3FFFF) >> 4);
  d |= uint64_t(1) << 16;                              // leading byte offset: unused for swizzled K-major
  d |= uint64_t(VtLayout::kAtomBytes >> 4) << 32;      // stride byte offset: next 8 rows
  d |= uint64_t(2) << 62;                              // 64-byte swizzle
  return d;
}

using KQ = gmma::MMA_64x16x32_F32E4M3E4M3_SS_TN<>;
using PV = gmma::MMA_64x32x32_F32E4M3E4M3_SS_TN<>;   // P's high and low parts as 32 columns
using PVFromRegisters = gmma::MMA_64x16x32_F32E4M3E4M3_RS_TN<>;   // one P part, V^T from registers

// ---------------------------------------------------------------------------------------------------
// Producer warpgroup.

struct CopyLane {
  int chunk, token;            // 16-byte chunk of a 128-byte row; first token (then + 16k)
  const char* cache;           // this lane's first byte in page 0
  uint32_t raw_offset;         // its first chunk's offset in a raw stage
  __device__ CopyLane(const DecodeParams& p, int tid) {   // tid: the producer warpgroup's thread index
    chunk = tid % 8;
    token = tid / 8;
    cache = static_cast<const char*>(p.k_cache) + token * p.k_stride_token + chunk * 16;
    raw_offset = RawLayout::row(0, 0, token) + ((chunk ^ (token % 8)) * 16);
  }
};

// Copies block `page` into raw stage `stage` (a page outside the cache arrives as zeros, reading nothing).
__device__ __forceinline__ void copy_page(const DecodeParams& p, const CopyLane& lane, int page, uint32_t stage) {
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

// The CTA's n-th block (page `page`) into its raw stage once the stage is free; raw_full completes when this
// thread's copies (and every other copying thread's) have landed.
template <typename Storage>
__device__ __forceinline__ void copy_block(const DecodeParams& p, const CopyLane& lane, Storage& smem, int n,
                                           int page) {
  constexpr int kRawStages = Storage::kRawStages;
  const int stage = n % kRawStages;
  if (n >= kRawStages) mbar_wait(smem_addr(&smem.raw_empty[stage]), (n / kRawStages - 1) & 1);
  copy_page(p, lane, page, smem_addr(smem.raw[stage]));
  cp_async_mbar_arrive_noinc(smem_addr(&smem.raw_full[stage]));
}

// One producer thread's share of a block's transpose: V columns 16c..16c+15 (c < 32) of tokens 16g..16g+15
// (g < 4). In a quarter warp the eight lanes read the eight chunks c % 8 of one raw sub-tile (rows of tokens
// 16g + j for four different g: no bank conflict, the raw rows' swizzle is c ^ j % 8) and write Vt chunks of four
// different g (in two halves that store their rows in swapped pairs: eight bank groups, see transpose_block).
struct TransposeLane {
  int c, g;
  uint32_t raw_offset;   // this lane's chunk of token 16g in a raw stage
  __device__ explicit TransposeLane(int tid) {   // tid: the producer warpgroup's thread index
    const int warp = tid / 32, lane = tid % 32;
    c = lane;                         // sub-tile c / 8 = lane / 8, chunk c % 8 = lane % 8
    g = (lane % 8 + warp) % 4;
    raw_offset = RawLayout::row(0, c / 8, 16 * g);
  }
};

// The 4 x 4 byte transpose: out[m] holds byte m ^ swap of x0..x3, in that order (swap 0 or 1, through the last
// step's selectors: even_sel = 0x5410 and odd_sel = 0x7632 for swap 0, the other way round for swap 1).
__device__ __forceinline__ void transpose_4x4(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, uint32_t even_sel,
                                              uint32_t odd_sel, uint32_t (&out)[4]) {
  const uint32_t t0 = __byte_perm(x0, x1, 0x5140), t1 = __byte_perm(x0, x1, 0x7362);
  const uint32_t t2 = __byte_perm(x2, x3, 0x5140), t3 = __byte_perm(x2, x3, 0x7362);
  out[0] = __byte_perm(t0, t2, even_sel);
  out[1] = __byte_perm(t0, t2, odd_sel);
  out[2] = __byte_perm(t1, t3, even_sel);
  out[3] = __byte_perm(t1, t3, odd_sel);
}

// The token order within each 16-token chunk of a Vt row: natural, or (kWideP) the order in which the 64-row fp8
// kernel's P accumulators are P.V's A registers (mla_decode_wide_fp8.cuh): k position 4w + e holds token
// 2w + e % 2 + 8 (e / 2).
enum class VtOrder { kNatural, kWideP };

// Block m's V, transposed from its raw stage into Vt stage m % kVtStages once all of its copies have landed and
// the consumers are done with that Vt stage. Tokens from valid_tokens on are written as zeros: 0 * NaN would
// poison P.V (unused page tails may hold anything).
// kAfterSoftmax (v116, a Storage with softmax_done[2]): block m's transpose also waits until warpgroup 0 is past the
// softmax of block m - 1, so that its shared-memory loads and stores do not queue ahead of that softmax's row-max
// shuffles in the MIO pipe (PERF_NOTES.md, s39k).
template <VtOrder kOrder = VtOrder::kNatural, bool kAfterSoftmax = false, typename Storage>
__device__ __forceinline__ void transpose_block(const TransposeLane& lane, Storage& smem, int m, int valid_tokens) {
  constexpr int kRawStages = Storage::kRawStages, kVtStages = Storage::kVtStages;
  const int vt_stage = m % kVtStages;
  mbar_wait(smem_addr(&smem.raw_full[m % kRawStages]), (m / kRawStages) & 1);
  if (m >= kVtStages) mbar_wait(smem_addr(&smem.vt_empty[vt_stage]), (m / kVtStages - 1) & 1);
  if constexpr (kAfterSoftmax) {
    if (m >= 1) mbar_wait(smem_addr(&smem.softmax_done[(m - 1) % 2]), ((m - 1) / 2) & 1);
  }
  const uint32_t raw = smem_addr(smem.raw[m % kRawStages]) + lane.raw_offset;
  uint32_t rows[16][4];   // [token][4 columns each]
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const uint32_t at = raw + (j / 8) * RawLayout::kGroupBytes + (j % 8) * 128 + ((lane.c % 8) ^ (j % 8)) * 16;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(rows[j][0]), "=r"(rows[j][1]), "=r"(rows[j][2]), "=r"(rows[j][3]) : "r"(at));
  }
  if (valid_tokens < kBlockSize) {   // only a request's last block has tokens to clear
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      if (16 * lane.g + j >= valid_tokens) rows[j][0] = rows[j][1] = rows[j][2] = rows[j][3] = 0;
    }
  }
  // Every producer warp has read the stage: with the consumers' Q.K^T done it may take block m + kRawStages.
  __syncwarp();
  if (threadIdx.x % 32 == 0) mbar_arrive(smem_addr(&smem.raw_empty[m % kRawStages]));
  // Lanes 4-7 of a quarter warp hold (and store) the columns in the order 1, 0, 3, 2, ...: with the four different
  // g of each half, the eight 16-byte stores of a quarter warp fall in eight bank groups (row parity picks the
  // 64-byte half of the 128 bytes).
  const int swap = (lane.c % 8) / 4;
  const uint32_t even_sel = swap ? 0x7632 : 0x5410, odd_sel = swap ? 0x5410 : 0x7632;
  uint32_t columns[16][4];   // [column ^ swap][4 tokens each]
#pragma unroll
  for (int quad = 0; quad < 4; ++quad) {        // tokens 4 quad .. (kWideP: 2 quad, + 1, + 8, + 9)
    constexpr bool kNatural = kOrder == VtOrder::kNatural;
    const int t0 = kNatural ? 4 * quad : 2 * quad, t2 = kNatural ? t0 + 2 : t0 + 8;
#pragma unroll
    for (int word = 0; word < 4; ++word) {      // columns 4 word ..
      uint32_t out[4];
      transpose_4x4(rows[t0][word], rows[t0 + 1][word], rows[t2][word], rows[t2 + 1][word], even_sel, odd_sel, out);
#pragma unroll
      for (int k = 0; k < 4; ++k) columns[4 * word + k][quad] = out[k];
    }
  }
  const uint32_t vt = smem_addr(smem.vt[vt_stage]);
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    store_shared_16(VtLayout::chunk(vt, 16 * lane.c + (i ^ swap), lane.g),
                    make_uint4(columns[i][0], columns[i][1], columns[i][2], columns[i][3]));
  }
  mbar_arrive(smem_addr(&smem.vt_full[vt_stage]));   // the consumers fence after their wait
}

__device__ __forceinline__ int valid_tokens_of(const DecodeParams& p, const BlockCursor& cursor) {
  return min(max(p.seqlens[cursor.req], 0) - cursor.block * kBlockSize, kBlockSize);
}
__device__ __forceinline__ int valid_tokens_of(const DecodeParams&, const PieceCursor& cursor) {
  return cursor.valid_tokens();
}

// Cursor: BlockCursor, or PieceCursor where the producer paces the block (the folded 64-row tile).
template <VtOrder kOrder = VtOrder::kNatural, typename Cursor = BlockCursor, bool kAfterSoftmax = false,
          typename Storage>
__device__ void produce_kv_blocks(const DecodeParams& p, const SchedEntry& entry, Storage& smem, int tid) {
  constexpr int kTransposeLag = Storage::kTransposeLag;
  const CopyLane lane(p, tid);
  const TransposeLane transpose(tid);
  Cursor cursor;
  int page = cursor.begin(p, entry), valid = 0;
  if (cursor.valid(entry)) valid = valid_tokens_of(p, cursor);
  int valid_lag[kTransposeLag] = {};   // valid tokens of the blocks still to transpose, oldest first
  for (int n = 0;; ++n) {
    if (!cursor.valid(entry)) {   // the last blocks' transposes
#pragma unroll
      for (int k = 0; k < kTransposeLag; ++k) {
        const int m = n - kTransposeLag + k;
        if (m >= 0) transpose_block<kOrder, kAfterSoftmax>(transpose, smem, m, valid_lag[k]);
      }
      break;
    }
    copy_block(p, lane, smem, n, page);
    // The part's first block alone in flight until it lands: all parts' first blocks then share the copy rate
    // instead of queuing behind every part's next ones (kernels/PERF_NOTES.md, v98). In both fp8 producers the next
    // page is read after this wait: read before it, as the 16-bit producers do, lost up to 2% (v100a).
    if (n == 0) mbar_wait(smem_addr(&smem.raw_full[0]), 0);
    const int valid_n = valid;
    page = cursor.next(p, entry);
    if (cursor.valid(entry)) valid = valid_tokens_of(p, cursor);
    if (n >= kTransposeLag) transpose_block<kOrder, kAfterSoftmax>(transpose, smem, n - kTransposeLag, valid_lag[0]);
#pragma unroll
    for (int k = 0; k + 1 < kTransposeLag; ++k) valid_lag[k] = valid_lag[k + 1];
    valid_lag[kTransposeLag - 1] = valid_n;
  }
}

// A producer that only copies (mla_decode_narrow_fp8.cuh, the block split, whose consumers read V from the raw
// stages themselves): each block as soon as its raw stage is free. It exits only after its copies' arrivals (none
// can complete again).
template <typename Storage>
__device__ void copy_kv_blocks(const DecodeParams& p, const SchedEntry& entry, Storage& smem, int tid) {
  constexpr int kRawStages = Storage::kRawStages;
  const CopyLane lane(p, tid);
  BlockCursor cursor;
  int page = cursor.begin(p, entry);
  int n = 0;
  for (; cursor.valid(entry); ++n) {
    copy_block(p, lane, smem, n, page);
    if (n == 0) mbar_wait(smem_addr(&smem.raw_full[0]), 0);   // the first block alone in flight (v98, v100a)
    page = cursor.next(p, entry);
  }
  for (int m = max(n - kRawStages, 0); m < n; ++m) {
    mbar_wait(smem_addr(&smem.raw_full[m % kRawStages]), (m / kRawStages) & 1);
  }
}

// ---------------------------------------------------------------------------------------------------
// Consumer warpgroup helpers.

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

constexpr int kQLanesPerRow = 8;   // lanes that quantize one query row together (adjacent in their warp)

// Query row `row` of request req quantized per row (q_scale = 448 / max |q_row|) by kQLanesPerRow adjacent lanes:
// lane `part` reads 9 of the row's 72 16-byte chunks (part + 8i) and hands each chunk's 8 e4m3 values to
// store(chunk, low word, high word). Returns 1 / q_scale. A padding row (real false) reads nothing: zeros, scale 1.
template <typename Element, typename Store>
__device__ __forceinline__ float quantize_query_row(const DecodeParams& p, int req, int row, bool real, int part,
                                                    Store&& store) {
  constexpr int kChunksPerLane = kQChunksPerRow / kQLanesPerRow;   // 9
  uint32_t raw[kChunksPerLane][4];   // 16-bit pairs
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < kChunksPerLane; ++i) {
    // The address outside the select: inside it, every chunk's address repeated the row's division by h_q.
    const char* src = q_chunk(p, req, row, part + kQLanesPerRow * i);
    const uint4 chunk = real ? *reinterpret_cast<const uint4*>(src) : make_uint4(0, 0, 0, 0);
    raw[i][0] = chunk.x, raw[i][1] = chunk.y, raw[i][2] = chunk.z, raw[i][3] = chunk.w;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float2 v = unpack_pair<Element>(raw[i][w]);
      amax = fmaxf(amax, fmaxf(fabsf(v.x), fabsf(v.y)));
    }
  }
#pragma unroll
  for (int lanes = 1; lanes < kQLanesPerRow; lanes *= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffff, amax, lanes));
  // A zero row keeps scale 1; amax is clamped so that neither the scale nor its inverse leaves fp32's normal range
  // (448 / amax overflows below ~1e-36, and --use_fast_math's reciprocal flushes to 0 above 2^126).
  const float scale = amax > 0.f ? kE4M3Max / fminf(fmaxf(amax, kQAmaxMin), kQAmaxMax) : 1.f;
#pragma unroll
  for (int i = 0; i < kChunksPerLane; ++i) {
    uint32_t packed[2];
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      const float2 a = unpack_pair<Element>(raw[i][2 * w]), b = unpack_pair<Element>(raw[i][2 * w + 1]);
      packed[w] = e4m3x2(a.x * scale, a.y * scale) | (e4m3x2(b.x * scale, b.y * scale) << 16);
    }
    store(part + kQLanesPerRow * i, packed[0], packed[1]);   // columns 8 chunk ..
  }
  return 1.f / scale;
}

// kCols query rows of request req (from f's first row), quantized row by row into smem.q (rows past p.rows stay
// zero with scale 1): kQLanesPerRow threads a row.
template <typename Element, typename Storage>
__device__ __forceinline__ void load_q(const DecodeParams& p, const Fragment& f, int req, Storage& smem) {
  static_assert(kWarpgroupThreads == kCols * kQLanesPerRow, "one pass over the rows");
  const int tid = threadIdx.x % kWarpgroupThreads;
  const int row = tid / kQLanesPerRow, part = tid % kQLanesPerRow;
  const uint32_t q_base = smem_addr(smem.q);
  const float inv_scale = quantize_query_row<Element>(
      p, req, f.query_row(row), f.query_row(row) < p.rows, part, [&](int chunk, uint32_t low, uint32_t high) {
        const int sub_tile = chunk / 16, column_byte = (chunk % 16) * 8;
        const uint32_t at = q_base + sub_tile * kCols * 128 + row * 128 + (((column_byte / 16) ^ (row % 8)) * 16) +
                            column_byte % 16;
        asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(at), "r"(low), "r"(high) : "memory");
      });
  if (part == 0) smem.q_inv_scale[row] = inv_scale;
  fence_async_proxy();
  named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kQReady));
}

// S^T = K8 Q8^T for the raw stage at shared address raw (unscaled), issued: s is ready after warpgroup_wait.
// kDescriptorOffsets: each k-step's descriptors as the first ones plus a constant (desc_plus): 6 instructions a wgmma
// instead of 15, but the two bases stay live (they made the 192-register 17-32-row split, since removed, spill; the
// column split keeps the fresh descriptors).
template <bool kDescriptorOffsets = false, typename Storage>
__device__ __forceinline__ void issue_scores(uint32_t raw, const Storage& smem, float (&s)[kCols / 2]) {
  const uint32_t q_base = smem_addr(smem.q);
  const uint64_t raw_desc = desc_k_major(RawLayout::row(raw, 0, 0), RawLayout::kGroupBytes);
  const uint64_t q_desc = desc_k_major(q_base);
  cute::warpgroup_arrive();
#pragma unroll
  for (int k = 0; k < kRawKSteps; ++k) {
    const int sub_tile = k / 4, column_bytes = (k % 4) * 32;
    const int raw_offset = sub_tile * 1024 + column_bytes, q_offset = sub_tile * kCols * 128 + column_bytes;
    if constexpr (kDescriptorOffsets) {
      wgmma_ss<KQ>(desc_plus(raw_desc, raw_offset), desc_plus(q_desc, q_offset), s, k > 0,
                   std::make_index_sequence<kCols / 2>{});
    } else {
      wgmma_ss<KQ>(desc_k_major(RawLayout::row(raw, 0, 0) + raw_offset, RawLayout::kGroupBytes),
                   desc_k_major(q_base + q_offset), s, k > 0, std::make_index_sequence<kCols / 2>{});
    }
  }
  cute::warpgroup_commit_batch();
}

template <typename Storage>
__device__ __forceinline__ void compute_scores(uint32_t raw, const Storage& smem, float (&s)[kCols / 2]) {
  issue_scores(raw, smem, s);
  cute::warpgroup_wait<0>();
  fence_operands(s);
}

// P.V's k position of each token: the natural order, or (TokenOrder::kRegisterV) the order in which a thread's
// 4 x 4 byte transposes of V give P.V's A registers (mla_fp8_register_v.cuh, the inverse of RegisterV::token):
// token 8 a + b sits at 16 (a / 2) + 4 (b / 2) + 2 (a % 2) + b % 2.
enum class TokenOrder { kNatural, kRegisterV };
template <TokenOrder kOrder>
__device__ __forceinline__ int pv_position(int token) {
  if constexpr (kOrder == TokenOrder::kNatural) return token;
  const int a = token / 8, b = token % 8;
  return 16 * (a / 2) + 4 * (b / 2) + 2 * (a % 2) + b % 2;
}

// P^T as its two e4m3 parts: P's values in rows r and r + 1 (r even) of a column, gathered into one lane of a
// pair (narrow::pair_rows), are written as two adjacent bytes of that column's row in each part: the high parts'
// kCols rows at shared address high, the low parts' right after them (one B operand of 2 kCols rows for P.V).
template <TokenOrder kOrder = TokenOrder::kNatural>
__device__ __forceinline__ void store_probs_fp8(const Fragment& f, const float (&s)[kCols / 2], uint32_t high) {
  const uint32_t low = high + kCols * VtLayout::kRowBytes;
#pragma unroll
  for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int which;
      const float2 rows = narrow::pair_rows(f, s[j * 4 + h * 2], s[j * 4 + h * 2 + 1], which);
      const int column = f.column(2 * j + which);
      const int token = (f.r0 & ~1) + 8 * h;
      const float x = rows.x * kProbScale, y = rows.y * kProbScale;
      const __nv_fp8x2_storage_t hi = __nv_cvt_float2_to_fp8x2(make_float2(x, y), __NV_SATFINITE, __NV_E4M3);
      const float2 hi_value = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(hi, __NV_E4M3)));
      const __nv_fp8x2_storage_t lo =
          __nv_cvt_float2_to_fp8x2(make_float2(x - hi_value.x, y - hi_value.y), __NV_SATFINITE, __NV_E4M3);
      const int position = pv_position<kOrder>(token);
      const uint32_t at = VtLayout::chunk(0, column, position / 16) + position % 16;
      asm volatile("st.shared.u16 [%0], %1;" ::"r"(high + at), "h"(hi) : "memory");
      asm volatile("st.shared.u16 [%0], %1;" ::"r"(low + at), "h"(lo) : "memory");
    }
  }
}

// O^T tiles first..first+kCount-1 += V8^T P8^T for Vt tiles vt_tile.. of the Vt stage at shared address vt, P's
// parts at shared address probs. P's high and low parts are the 2 kCols rows of one B operand (contiguous), so each
// m64n32k32 reads its Vt tile once and returns column c's two parts in accumulator columns c and c + kCols, added
// into O in fp32: each block's sum is formed in fp8 wgmma's accumulator (fewer bits than fp32), O across blocks in
// registers. One batch of kCount tiles (kCount x 16 accumulator registers) and one wait.
template <int kCount, int kTiles>
__device__ __forceinline__ void accumulate_tiles(uint32_t vt, uint32_t probs, int vt_tile, int first,
                                                 float (&o)[kTiles][kCols / 2]) {
  float ob[kCount][kCols];
  cute::warpgroup_arrive();
#pragma unroll
  for (int d = 0; d < kCount; ++d) {
#pragma unroll
    for (int t = 0; t < kPvKSteps; ++t) {
      wgmma_ss<PV>(desc_k_major_sw64(vt + (vt_tile + d) * 64 * VtLayout::kRowBytes + t * 32),
                   desc_k_major_sw64(probs + t * 32), ob[d], t > 0, std::make_index_sequence<kCols>{});
    }
  }
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
#pragma unroll
  for (int d = 0; d < kCount; ++d) {
    fence_operands(ob[d]);
#pragma unroll
    for (int i = 0; i < kCols / 2; ++i) o[first + d][i] += ob[d][i] + ob[d][i + kCols / 2];
  }
}

// O^T (or a warpgroup's tiles of it) of a request before its first block.
template <int kTiles>
__device__ __forceinline__ void zero_output(float (&o)[kTiles][kCols / 2]) {
#pragma unroll
  for (int d = 0; d < kTiles; ++d) {
#pragma unroll
    for (int i = 0; i < kCols / 2; ++i) o[d][i] = 0.f;
  }
}

// A consumer warpgroup's scores state for one request: the online softmax statistics of its kCols rows and each
// row's descale_k / q_scale (Q.K^T runs on the rounded query).
struct RequestRows {
  ColumnStats<kCols> stats;
  float column_scale[kCols / 4];   // descale_k / q_scale of each of this thread's columns
};

// The start of request req: statistics reset, Q8 of f's rows loaded into rows.q when the piece has blocks.
template <typename Element, typename Rows>
__device__ __forceinline__ void start_request(const DecodeParams& p, const Fragment& f, int req, const Piece& piece,
                                              float descale, Rows& rows, RequestRows& r) {
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) {
    r.stats.max[c] = -INFINITY;
    r.stats.sum[c] = 0.f;
    r.stats.key_limit[c] = key_limit(p, piece.seqlen, f.query_row(f.column(c)));
  }
  load_q<Element>(p, f, req, rows);   // even for a piece without blocks: so the loads need not wait for its length
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) r.column_scale[c] = descale * rows.q_inv_scale[f.column(c)];
}

// A block's S^T scaled by each row's descale_k / q_scale, masked and through the online softmax (kVoted:
// narrow::online_softmax_voted): s returns P, rescale the factors for O^T.
template <bool kVoted = false, typename Rows>
__device__ __forceinline__ void softmax_block(const DecodeParams& p, const Fragment& f, const Piece& piece, int block,
                                              int consumed, Rows& rows, RequestRows& r, float (&s)[kCols / 2],
                                              float (&rescale)[kCols / 4]) {
#pragma unroll
  for (int i = 0; i < kCols / 2; ++i) s[i] *= r.column_scale[(i / 4) * 2 + i % 2];
  const bool needs_mask = (block + 1) * kBlockSize > min_key_limit(p, piece.seqlen);
  if constexpr (kVoted) {
    narrow::online_softmax_voted<kCols>(p, f, block, consumed & 1, needs_mask, s, r.stats, rows, rescale);
  } else {
    narrow::online_softmax<kCols>(p, f, block, consumed & 1, needs_mask, s, r.stats, rows, rescale);
  }
}

// Block `block` of the piece, the warpgroup's consumed-th: S^T from its raw stage (released to the producer right
// after) through softmax_block.
template <typename Stages, typename Rows>
__device__ __forceinline__ void score_block(const DecodeParams& p, const Fragment& f, const Piece& piece, int block,
                                            int consumed, Stages& smem, Rows& rows, RequestRows& r,
                                            float (&s)[kCols / 2], float (&rescale)[kCols / 4]) {
  const int stage = consumed % Stages::kRawStages, parity = (consumed / Stages::kRawStages) & 1;
  mbar_wait(smem_addr(&smem.raw_full[stage]), parity);
  fence_async_proxy();   // cp.async (generic proxy) wrote the stage; wgmma reads it (async proxy)
  compute_scores(smem_addr(smem.raw[stage]), rows, s);
  if (f.lane == 0) mbar_arrive(smem_addr(&smem.raw_empty[stage]));
  softmax_block(p, f, piece, block, consumed, rows, r, s, rescale);
}

}  // namespace narrow_fp8
}  // namespace mla

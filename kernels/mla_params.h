// Parameters shared by the host launchers and the device kernels. Torch-free so that every .cu file
// compiles with plain nvcc on a machine without a GPU.
#pragma once

#include <cstdint>
#include <cuda.h>
#include <cuda_runtime.h>

namespace mla {

constexpr int kBlockSize = 64;         // tokens per KV-cache page
constexpr int kHeadDim = 576;          // 512 latent + 64 RoPE
constexpr int kHeadDimV = 512;         // V = first 512 columns of K
constexpr int kRowsPerTile = 64;       // query rows (s_q * h_q packed) per CTA: the wgmma M
constexpr int kSchedFields = 8;        // int32 fields per tile-scheduler entry

// One entry of tile_scheduler_metadata: an SM part covers requests [begin_req, end_req] (inclusive);
// the first from block begin_block, the last up to block end_block (exclusive).
// begin_split is the split index of begin_req inside its own split list. An empty part has begin_req == b.
enum SchedField : int {
  kBeginReq = 0,
  kBeginBlock = 1,
  kEndReq = 2,
  kEndBlock = 3,
  kBeginSplit = 4,
};

struct MetadataParams {
  const int* seqlens;       // [b]
  int* sched;               // [num_parts, kSchedFields]
  int* num_splits;          // [b + 1], exclusive prefix sum of per-request split counts
  int b;
  int num_parts;
  int split_overhead;       // cost of one split in KV blocks (mla_backend/tile_scheduler.py: split_overhead)
};

struct DecodeParams {
  CUtensorMap k_map;        // TMA view of k_cache as [num_blocks][64][576], 64x64 boxes, 128-byte swizzle
  // The query's 512 latent columns and its 64 RoPE columns: both in one [b, s_q, h_q, 576] tensor (q_rope =
  // q + 512, same strides), or two tensors, as engines that keep RoPE apart hand them over (no concatenation).
  // Strides in elements, last dims contiguous, rows 16-byte aligned.
  const void* q;            // [b, s_q, h_q, >= 512]
  int64_t q_stride_b, q_stride_s, q_stride_h;
  const void* q_rope;       // [b, s_q, h_q, >= 64]
  int64_t q_rope_stride_b, q_rope_stride_s, q_rope_stride_h;
  const void* k_cache;      // [num_blocks, 64, 576]; strides in elements (bytes for fp8), last dim contiguous
  int64_t k_stride_block, k_stride_token;
  int num_blocks;
  const int* block_table;   // [b, max_blocks]
  int64_t block_table_stride;
  int max_blocks;
  const int* seqlens;       // [b]
  const int* sched;         // [num_parts, kSchedFields]
  const int* num_splits;    // [b + 1]
  void* out;                // [b, s_q, h_q, 512] contiguous, dtype of q
  float* lse;               // [b, h_q, s_q] contiguous, natural log
  void* out_accum;          // [b + num_parts, s_q * h_q, 512], out's dtype: one row block per split
  float* lse_accum;         // [b + num_parts, s_q * h_q], log2 domain
  int b, s_q, h_q;
  int rows;                 // s_q * h_q
  int num_parts;
  float scale_log2;         // softmax_scale * log2(e)
  bool causal;
  const float* descale_k;   // [1], fp8 (e4m3) k_cache only: real K = descale_k * stored K; read on the device
  // fp8 k_cache, 17-32 rows: the plan was made for row halves (half the parts, mla_backend/tile_scheduler.py:
  // takes_row_halves), each part run by two 16-row CTAs of the block split (mla_decode_narrow_fp8.cuh).
  bool row_halves;
};

// Every launcher returns the first CUDA error of its host calls (the binding raises it).
cudaError_t launch_get_metadata(const MetadataParams& p, cudaStream_t stream);
// Fills p.k_map for k_cache; false when the driver cannot encode it (the launcher raises).
bool make_kv_tensor_map(DecodeParams& p, bool bf16);

// s_q * h_q up to this runs the swap-AB kernel (query rows as the MMA's N, KV loaded by cp.async); more rows
// run 64-row tiles (17-32 rows too: faster there than a 32-column swap-AB tile, kernels/PERF_NOTES.md v28).
// One tile (rows <= kRowsPerTile) is memory-bound and loads by cp.async from a producer warpgroup too;
// several tiles are compute-bound and load by TMA, whose producer is one thread (p.k_map).
constexpr int kNarrowMaxRows = 16;
inline bool decode_needs_tensor_map(const DecodeParams& p) { return p.rows > kRowsPerTile; }
template <typename Element, int kCols>
cudaError_t launch_decode_narrow(const DecodeParams& p, cudaStream_t stream);
template <typename Element>
cudaError_t launch_decode_wide(const DecodeParams& p, cudaStream_t stream);

// An fp8 (e4m3) k_cache (p.descale_k set) with an Element query, every product in fp8: up to kNarrowMaxRows query
// rows, and 17-32 rows where the plan was made for row halves (p.row_halves: two 16-row CTAs a part), the fp8
// swap-AB kernels; 17 rows and more otherwise the 64-row fp8 kernel (launch_decode_wide_fp8, one 64-row tile a CTA,
// PERF_NOTES.md v105; up to 32 rows folded, v113). mla_decode_narrow_fp8.cuh runs two consumer warpgroups split by
// block (every other block each); mla_decode_narrow_fp8_split.cuh (16 rows) splits O^T between two by V's columns,
// which shortens each block's chain: since each part's first block is copied alone first (v98) it is faster than the
// block split only for one request (b1/s32768 3.5%, b1/s4096 5.7%), and 2.5-20% slower from two requests on
// (b2/s16384 3%, b4/s4096 2.5%, b8/s8192 12.5%, b8/s32768 20%; PERF_NOTES.md, s35g). The blocks a CTA runs are known
// on the device only; the batch size stands in for them (graph-safe: engines capture a graph per batch size).
constexpr int kFp8MaxRows = 32;
constexpr int kFp8ColumnSplitMaxBatch = 1;
template <typename Element>
cudaError_t launch_decode_narrow_fp8(const DecodeParams& p, cudaStream_t stream);
template <typename Element>
cudaError_t launch_decode_narrow_fp8_split(const DecodeParams& p, cudaStream_t stream);
template <typename Element>
cudaError_t launch_decode_wide_fp8(const DecodeParams& p, cudaStream_t stream);
inline bool fp8_column_split_pays(const DecodeParams& p) {
  return p.rows <= kNarrowMaxRows && p.b <= kFp8ColumnSplitMaxBatch;
}

template <typename Element>
cudaError_t launch_decode(const DecodeParams& p, cudaStream_t stream) {
  if (p.descale_k) {
    if (p.rows > kNarrowMaxRows && !p.row_halves) return launch_decode_wide_fp8<Element>(p, stream);
    return fp8_column_split_pays(p) ? launch_decode_narrow_fp8_split<Element>(p, stream)
                                    : launch_decode_narrow_fp8<Element>(p, stream);
  }
  if (p.rows <= kNarrowMaxRows) return launch_decode_narrow<Element, kNarrowMaxRows>(p, stream);
  return launch_decode_wide<Element>(p, stream);
}
template <typename Element>
cudaError_t launch_combine(const DecodeParams& p, cudaStream_t stream);

}  // namespace mla

// Where the query's 16-byte chunks live: chunks 0-63 are the 512 latent columns (p.q), chunks 64-71 the
// 64 RoPE columns (p.q_rope), which is q + 512 for one concatenated tensor and a tensor of its own otherwise.
#pragma once

#include "mla_params.h"
#include "mla_pipeline.cuh"

namespace mla {

constexpr int kQChunksPerRow = kHeadDim / 8;       // 72 chunks of 8 elements
constexpr int kQLatentChunks = kHeadDimV / 8;      // the first 64 of them

// Where query row `row` (= s_idx * h_q + head) of request req starts: its latent columns (p.q) and its RoPE
// columns (p.q_rope).
struct QueryRow {
  const char* latent;
  const char* rope;
};
__device__ __forceinline__ QueryRow query_row(const DecodeParams& p, int req, int row) {
  const int64_t s_idx = row / p.h_q, head = row % p.h_q;
  return {static_cast<const char*>(p.q) + (req * p.q_stride_b + s_idx * p.q_stride_s + head * p.q_stride_h) * 2,
          static_cast<const char*>(p.q_rope) +
              (req * p.q_rope_stride_b + s_idx * p.q_rope_stride_s + head * p.q_rope_stride_h) * 2};
}

// Chunk `chunk` of query row `row` of request req.
__device__ __forceinline__ const char* q_chunk(const DecodeParams& p, int req, int row, int chunk) {
  const QueryRow q = query_row(p, req, row);
  return chunk < kQLatentChunks ? q.latent + chunk * 16 : q.rope + (chunk - kQLatentChunks) * 16;
}

// Copies query rows [first_row, first_row + num_rows) of request req by cp.async with the CTA's first kWarps warps,
// warp w its rows w, w + kWarps, ...: lane l a row's latent chunks l and l + 32 and (lanes 0-7) RoPE chunk l, each to
// shared address to(row - first_row, chunk). A row's two addresses are computed once and each copy instruction reads
// 512 contiguous bytes; indexed by chunk (q_chunk), a copy took ~60 instructions, a runtime division and int64
// strides every chunk (kernels/PERF_NOTES.md, v166).
template <int kWarps, typename To>
__device__ __forceinline__ void copy_query_rows(const DecodeParams& p, int req, int first_row, int num_rows, To&& to) {
  static_assert(kQLatentChunks == 2 * 32 && kQChunksPerRow - kQLatentChunks <= 32, "two latent chunks a lane");
  const int lane = threadIdx.x % 32;
  for (int row = threadIdx.x / 32; row < num_rows; row += kWarps) {
    const QueryRow q = query_row(p, req, first_row + row);
    cp_async_16(to(row, lane), q.latent + lane * 16);
    cp_async_16(to(row, lane + 32), q.latent + (lane + 32) * 16);
    if (lane < kQChunksPerRow - kQLatentChunks) cp_async_16(to(row, kQLatentChunks + lane), q.rope + lane * 16);
  }
}

}  // namespace mla

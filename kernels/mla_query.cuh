// Where the query's 16-byte chunks live: chunks 0-63 are the 512 latent columns (p.q), chunks 64-71 the
// 64 RoPE columns (p.q_rope), which is q + 512 for one concatenated tensor and a tensor of its own otherwise.
#pragma once

#include "mla_params.h"

namespace mla {

constexpr int kQChunksPerRow = kHeadDim / 8;       // 72 chunks of 8 elements
constexpr int kQLatentChunks = kHeadDimV / 8;      // the first 64 of them

// Chunk `chunk` of query row `row` (= s_idx * h_q + head) of request req.
__device__ __forceinline__ const char* q_chunk(const DecodeParams& p, int req, int row, int chunk) {
  const int64_t s_idx = row / p.h_q, head = row % p.h_q;
  if (chunk < kQLatentChunks) {
    return static_cast<const char*>(p.q) +
           (req * p.q_stride_b + s_idx * p.q_stride_s + head * p.q_stride_h + chunk * 8) * 2;
  }
  return static_cast<const char*>(p.q_rope) +
         (req * p.q_rope_stride_b + s_idx * p.q_rope_stride_s + head * p.q_rope_stride_h +
          (chunk - kQLatentChunks) * 8) * 2;
}

}  // namespace mla

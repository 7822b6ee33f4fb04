// Swap-AB decode on an fp8 (e4m3) KV cache for up to 16 query rows, O^T split between two consumer warpgroups by
// V's columns (v42): warpgroup 0 computes S^T, the online softmax and P for all rows, then O^T's dims 0-255;
// warpgroup 1 takes dims 256-511 with warpgroup 0's P (two P buffers, so warpgroup 0 goes on to the next block's
// Q.K^T while warpgroup 1 multiplies this one). A block's chain in warpgroup 0 holds half of P.V, which pays where
// a CTA runs few blocks (small batches: the chain's latency is the time); where it runs many, the one-warpgroup
// kernel (mla_decode_narrow_fp8.cuh) moves more blocks a second (kernels/PERF_NOTES.md, v42). Since each part's first
// block is copied alone (v98) this kernel is the faster one for a single request only (mla_params.h). The stages, the
// producer and the products are mla_fp8_stages.cuh's.
//
// Barrier counts: raw_empty takes the 4 producer warps and warpgroup 0's 4 warps (after Q.K^T), vt_empty the 8
// consumer warps (after P.V); p_full warpgroup 0's 128 threads (after writing P and the rescale factors),
// p_empty warpgroup 1's 4 warps (after P.V).
#pragma once

#include "mla_fp8_stages.cuh"

namespace mla {
namespace narrow_fp8 {
namespace column_split {

constexpr int kConsumerGroups = 2;              // warpgroup 0: scores + O dims 0-255; 1: O dims 256-511
constexpr int kHalfTiles = kDTiles / kConsumerGroups;
constexpr int kThreads = kConsumerGroups * kWarpgroupThreads + kProducerThreads;   // consumers first, then producer
// setmaxnreg budgets: the pool is what the launch allocated, 168 a thread at 384 threads (kernels/mla_decode.cuh
// says what a larger sum does). The producer's transpose holds 16 x 16 bytes a thread: at 120 registers it cost
// 4% at b128/s4096 against 152 (v42's register probe); the consumers spill below 176.
constexpr int kProducerRegisters = 152;
constexpr int kConsumerRegisters = 176;
constexpr int kLaunchRegisters = 64 * 1024 / kThreads / 8 * 8;   // 168
static_assert(kProducerRegisters + kConsumerGroups * kConsumerRegisters <= (kConsumerGroups + 1) * kLaunchRegisters,
              "setmaxnreg budgets exceed the registers allocated at launch");
constexpr int kProbBuffers = 2;                 // P (and its rescale factors) of blocks n and n + 1

// Named barriers of both consumer warpgroups (warpgroup 0's own are narrow::Barrier 1-5).
enum SharedBarrier : int { kOutputScaleReady = 6, kRequestDone = 7 };
static_assert(kOutputScaleReady > narrow::kRequestDone, "the two-warpgroup barriers follow warpgroup 0's own");

// P^T of one block: kCols rows of high parts, then kCols rows of low parts (VtLayout rows, contiguous: row
// kCols + n has row n's swizzle phase since kCols is a multiple of 8), and each column's rescale factor for O.
struct ProbBuffer {
  alignas(1024) char p[2 * kCols * VtLayout::kRowBytes];
  float rescale[kCols];
};

// Three raw stages: with two, the long runs of blocks lost 3% (PERF_NOTES.md, v47).
constexpr int kRawStages = 3;
constexpr int kVtStages = 2;

struct SharedStorage : StageRing<kRawStages, kVtStages> {
  alignas(1024) char q[kRawSubTiles][kCols * 128];       // Q8: kCols rows x 576 e4m3, 128-column sub-tiles
  ProbBuffer probs[kProbBuffers];
  float block_max[2][kConsumerWarps][kCols];
  float column_sum[kConsumerWarps][kCols];
  float q_inv_scale[kCols];                              // 1 / q_scale of each query row
  float output_scale[kCols];                             // descale_k / 2^8 / row sum (0 for a row without keys)
  uint64_t p_full[kProbBuffers], p_empty[kProbBuffers];
};

// A per-column value of warpgroup 0 (a rescale factor, an output scale) written for warpgroup 1 by lanes 0-3 of
// warp 0, which own every column once.
__device__ __forceinline__ void share_columns(const Fragment& f, const float (&values)[kCols / 4],
                                              float (&shared)[kCols]) {
  if (f.warp == 0 && f.lane < 4) {
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) shared[f.column(c)] = values[c];
  }
}

__device__ __forceinline__ void rescale_half(float (&o)[kHalfTiles][kCols / 2], const float (&rescale)[kCols / 4]) {
#pragma unroll
  for (int d = 0; d < kHalfTiles; ++d) {
#pragma unroll
    for (int i = 0; i < kCols / 2; ++i) o[d][i] *= rescale[(i / 4) * 2 + i % 2];
  }
}

// Warpgroup 0: Q.K^T, the online softmax and P for every row, then O^T's dims 0-255.
template <typename Element>
__device__ void score_and_accumulate(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                     SharedStorage& smem) {
  const float descale = __ldg(p.descale_k);
  int consumed = 0;
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    RequestRows rows;
    start_request<Element>(p, f, req, piece, descale, smem, rows);
    float o[kHalfTiles][kCols / 2];
    zero_output(o);

    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      const int vt_stage = consumed % kVtStages, vt_parity = (consumed / kVtStages) & 1;
      const int buffer = consumed % kProbBuffers, uses = consumed / kProbBuffers;
      const uint32_t vt = smem_addr(smem.vt[vt_stage]);
      float s[kCols / 2], rescale[kCols / 4];
      score_block(p, f, piece, block, consumed, smem, smem, rows, s, rescale);

      // Warpgroup 1 is done with the block that last used this P buffer.
      if (uses > 0) mbar_wait(smem_addr(&smem.p_empty[buffer]), (uses - 1) & 1);
      store_probs_fp8(f, s, smem_addr(smem.probs[buffer].p));
      share_columns(f, rescale, smem.probs[buffer].rescale);
      fence_async_proxy();   // P is read by wgmma, here and in warpgroup 1
      mbar_arrive(smem_addr(&smem.p_full[buffer]));
      mbar_wait(smem_addr(&smem.p_full[buffer]), uses & 1);   // every thread's P stored
      mbar_wait(smem_addr(&smem.vt_full[vt_stage]), vt_parity);
      fence_async_proxy();   // the producers' Vt is read by wgmma

      rescale_half(o, rescale);
      accumulate_tiles<kHalfTiles>(vt, smem_addr(smem.probs[buffer].p), 0, 0, o);   // O^T's dims 0-255
      if (f.lane == 0) mbar_arrive(smem_addr(&smem.vt_empty[vt_stage]));
    }
    if (req == entry.end_req) allow_next_grid_launch();
    // Warpgroup 0's end of a request: its row sums give each column's output scale (shared with warpgroup 1).
    float scale[kCols / 4], lse_log2[kCols / 4];
    narrow::row_scales<kCols>(f, rows.stats, descale / kProbScale, smem, scale, lse_log2);
    share_columns(f, scale, smem.output_scale);
    narrow::store_lse<kCols>(p, f, req, slot, lse_log2);
    named_barrier_sync<2 * kWarpgroupThreads>(kOutputScaleReady);
    narrow::store_output_tiles<Element, kCols>(p, f, req, slot, 0, o, scale);
    named_barrier_sync<2 * kWarpgroupThreads>(kRequestDone);   // the next request reuses Q, the sums and scales
  }
}

// Warpgroup 1: O^T's dims 256-511 with warpgroup 0's P and rescale factors.
template <typename Element>
__device__ void accumulate_second_half(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                       SharedStorage& smem) {
  int consumed = 0;
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    float o[kHalfTiles][kCols / 2];
    zero_output(o);
    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      const int vt_stage = consumed % kVtStages, vt_parity = (consumed / kVtStages) & 1;
      const int buffer = consumed % kProbBuffers, uses = consumed / kProbBuffers;
      const ProbBuffer& probs = smem.probs[buffer];
      mbar_wait(smem_addr(&smem.p_full[buffer]), uses & 1);
      mbar_wait(smem_addr(&smem.vt_full[vt_stage]), vt_parity);
      fence_async_proxy();   // the producers' Vt and warpgroup 0's P are read by wgmma
      float rescale[kCols / 4];
#pragma unroll
      for (int c = 0; c < kCols / 4; ++c) rescale[c] = probs.rescale[f.column(c)];
      rescale_half(o, rescale);
      accumulate_tiles<kHalfTiles>(smem_addr(smem.vt[vt_stage]), smem_addr(probs.p), kHalfTiles, 0, o);   // 256-511
      __syncwarp();   // every lane's reads of the buffer's rescale factors come before lane 0 releases it
      if (f.lane == 0) {
        mbar_arrive(smem_addr(&smem.vt_empty[vt_stage]));
        mbar_arrive(smem_addr(&smem.p_empty[buffer]));
      }
    }
    if (req == entry.end_req) allow_next_grid_launch();
    named_barrier_sync<2 * kWarpgroupThreads>(kOutputScaleReady);
    float scale[kCols / 4];
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) scale[c] = smem.output_scale[f.column(c)];
    narrow::store_output_tiles<Element, kCols>(p, f, req, slot, kHalfTiles, o, scale);
    named_barrier_sync<2 * kWarpgroupThreads>(kRequestDone);
  }
}

template <typename Element>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_narrow_fp8_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage*>(smem_bytes);
  if (threadIdx.x == 0) {
    SchedEntry::prefetch(p.sched, blockIdx.y);   // its load follows the wait below
    smem.init_barriers(kConsumerWarps, kConsumerGroups * kConsumerWarps);
    for (int b = 0; b < kProbBuffers; ++b) {
      mbar_init(smem_addr(&smem.p_full[b]), kWarpgroupThreads);
      mbar_init(smem_addr(&smem.p_empty[b]), kConsumerWarps);
    }
    mbar_fence_init();
  }
  __syncthreads();

  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const SchedEntry entry = SchedEntry::load(p.sched, blockIdx.y);
  const int warpgroup = warp_uniform_group(kWarpgroupThreads);
  if (warpgroup >= kConsumerGroups) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    produce_kv_blocks(p, entry, smem, threadIdx.x - kConsumerGroups * kWarpgroupThreads);
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegisters));
  const Fragment f(0, 0);   // both warpgroups' accumulator columns are query rows 0..kCols-1
  if (warpgroup == 0) {
    score_and_accumulate<Element>(p, f, entry, smem);
  } else {
    accumulate_second_half<Element>(p, f, entry, smem);
  }
}

template <typename Element>
cudaError_t launch(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(SharedStorage) <= 227 * 1024, "shared memory over the sm_90 limit");
  return launch_with_pdl(mla_decode_narrow_fp8_kernel<Element>, dim3(1, p.num_parts), dim3(kThreads),
                         sizeof(SharedStorage), stream, p);
}

}  // namespace column_split
}  // namespace narrow_fp8

template <typename Element>
cudaError_t launch_decode_narrow_fp8_split(const DecodeParams& p, cudaStream_t stream) {
  return narrow_fp8::column_split::launch<Element>(p, stream);
}

}  // namespace mla

// Swap-AB decode on an fp8 (e4m3) KV cache for up to 32 query rows, split between consumer warpgroups by query
// row (v40; v41: 17-32 rows). The stages, the producer and the products are mla_fp8_stages.cuh's; here, each
// consumer warpgroup runs Q.K^T, the online softmax, P and all of O^T = V8^T P8^T for its 16 rows, one block
// after the other.
//
// 17-32 rows (kGroups = 2): a second consumer warpgroup takes rows 16-31 with its own Q, P and softmax, on the
// same raw and Vt stages (one copy and one transpose a block for both); its O^T is another 64 registers a thread,
// which is why the rows are split by warpgroup (32 columns in one would be 128 registers of O). 384 threads: the
// producer gives registers to the consumers with setmaxnreg.
//
// Barrier counts: raw_empty takes the 4 producer warps and the 4 warps of each consumer warpgroup (after Q.K^T),
// vt_empty the 4 warps of each consumer warpgroup (after P.V).
#pragma once

#include "mla_fp8_stages.cuh"

namespace mla {
namespace narrow_fp8 {
namespace row_split {

constexpr int kMaxGroups = 2;                   // consumer warpgroups: rows 0-15, 16-31
template <int kGroups>
constexpr int kThreads = kGroups * kWarpgroupThreads + kProducerThreads;   // consumers first, then the producer
// setmaxnreg budgets of the two-group kernel (256 threads need none: each may use 255): the pool is what the
// launch allocated, 168 a thread at 384 threads (kernels/mla_decode.cuh says what a larger sum does).
constexpr int kProducerRegisters = 112;         // the transpose holds 16 x 16 bytes a thread in registers
constexpr int kConsumerRegisters = 192;
constexpr int kLaunchRegisters = 64 * 1024 / kThreads<kMaxGroups> / 8 * 8;   // 168
static_assert(kProducerRegisters + kMaxGroups * kConsumerRegisters <= (kMaxGroups + 1) * kLaunchRegisters,
              "setmaxnreg budgets exceed the registers allocated at launch");

// What one consumer warpgroup keeps for its kCols query rows.
struct GroupStorage {
  alignas(1024) char q[kRawSubTiles][kCols * 128];       // Q8: kCols rows x 576 e4m3, 128-column sub-tiles
  alignas(1024) char p[2][kCols * VtLayout::kRowBytes];   // P^T high and low parts (e4m3), VtLayout
  float block_max[2][kConsumerWarps][kCols];
  float column_sum[kConsumerWarps][kCols];
  float q_inv_scale[kCols];                              // 1 / q_scale of each query row
};

// Two raw stages: the producer transposes block n - 1 right after copying block n, so each Vt is ready a copy
// earlier than with three, and no row lost for the bytes no longer in flight (PERF_NOTES.md, v47: 1-3% faster).
constexpr int kRawStages = 2;
constexpr int kVtStages = 2;

template <int kGroups>
struct SharedStorage : StageRing<kRawStages, kVtStages> {
  GroupStorage group[kGroups];
};

// O^T += V8^T P8^T for the Vt stage at shared address vt. P's high and low parts are the 32 rows of one B operand
// (smem.p is contiguous), so each m64n32k32 reads its Vt tile once and returns column c's two parts in
// accumulator columns c and c + 16, added into O in fp32: each block's sum is formed in fp8 wgmma's accumulator
// (fewer bits than fp32), O across blocks in registers. Four of the eight V tiles a batch (64 registers).
__device__ __forceinline__ void accumulate_block(uint32_t vt, const GroupStorage& smem,
                                                 float (&o)[kDTiles][kCols / 2]) {
  constexpr int kBatch = kDTiles / 2;
  const uint32_t p = smem_addr(smem.p[0]);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float ob[kBatch][kCols];
    cute::warpgroup_arrive();
#pragma unroll
    for (int d = 0; d < kBatch; ++d) {
#pragma unroll
      for (int t = 0; t < kPvKSteps; ++t) {
        wgmma_ss<PV>(desc_k_major_sw64(vt + (half * kBatch + d) * 64 * VtLayout::kRowBytes + t * 32),
                     desc_k_major_sw64(p + t * 32), ob[d], t > 0, std::make_index_sequence<kCols>{});
      }
    }
    cute::warpgroup_commit_batch();
    cute::warpgroup_wait<0>();
#pragma unroll
    for (int d = 0; d < kBatch; ++d) {
      fence_operands(ob[d]);
#pragma unroll
      for (int i = 0; i < kCols / 2; ++i) o[half * kBatch + d][i] += ob[d][i] + ob[d][i + kCols / 2];
    }
  }
}


template <typename Element, int kGroups>
__device__ void consume_kv_blocks(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                  SharedStorage<kGroups>& smem) {
  GroupStorage& mine = smem.group[f.group];
  const float descale = __ldg(p.descale_k);
  int consumed = 0;
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    RequestRows rows;
    start_request<Element>(p, f, req, piece, descale, mine, rows);
    float o[kDTiles][kCols / 2];
    zero_output(o);

    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      const int vt_stage = consumed % kVtStages, vt_parity = (consumed / kVtStages) & 1;
      const uint32_t vt = smem_addr(smem.vt[vt_stage]);
      float s[kCols / 2], rescale[kCols / 4];
      score_block(p, f, piece, block, consumed, smem, mine, rows, s, rescale);

      store_probs_fp8(f, s, smem_addr(mine.p[0]));
      mbar_wait(smem_addr(&smem.vt_full[vt_stage]), vt_parity);
      fence_async_proxy();   // the producers' Vt and this warpgroup's P are read by wgmma
      named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kProbsReady));

      narrow::rescale_output<kCols>(o, rescale);
      accumulate_block(vt, mine, o);
      if (f.lane == 0) mbar_arrive(smem_addr(&smem.vt_empty[vt_stage]));
    }
    if (req == entry.end_req) allow_next_grid_launch();
    narrow::write_output<Element, kCols>(p, f, req, slot, rows.stats, o, descale / kProbScale, mine);
    named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kRequestDone));   // the next request reuses Q, its scales
  }
}

template <typename Element, int kGroups>
__global__ void __launch_bounds__(kThreads<kGroups>, 1)
    mla_decode_narrow_fp8_kernel(const __grid_constant__ DecodeParams p) {
  constexpr int kConsumerThreads = kGroups * kWarpgroupThreads;
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage<kGroups>*>(smem_bytes);
  if (threadIdx.x == 0) {
    smem.init_barriers(kGroups * kConsumerWarps, kGroups * kConsumerWarps);
    mbar_fence_init();
  }
  __syncthreads();

  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const SchedEntry entry = SchedEntry::load(p.sched, blockIdx.y);
  if (threadIdx.x >= kConsumerThreads) {
    if constexpr (kGroups > 1) asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    produce_kv_blocks(p, entry, smem, threadIdx.x - kConsumerThreads);
    return;
  }
  if constexpr (kGroups > 1) asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegisters));
  const int group = kGroups > 1 ? threadIdx.x / kWarpgroupThreads : 0;
  consume_kv_blocks<Element>(p, Fragment(group, group * kCols), entry, smem);
}

template <typename Element, int kGroups>
cudaError_t launch(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(SharedStorage<kGroups>) <= 227 * 1024, "shared memory over the sm_90 limit");
  return launch_with_pdl(mla_decode_narrow_fp8_kernel<Element, kGroups>, dim3(1, p.num_parts),
                         dim3(kThreads<kGroups>), sizeof(SharedStorage<kGroups>), stream, p);
}

}  // namespace row_split
}  // namespace narrow_fp8

template <typename Element>
cudaError_t launch_decode_narrow_fp8(const DecodeParams& p, cudaStream_t stream) {
  if (p.rows <= narrow_fp8::kCols) return narrow_fp8::row_split::launch<Element, 1>(p, stream);
  return narrow_fp8::row_split::launch<Element, narrow_fp8::row_split::kMaxGroups>(p, stream);
}

}  // namespace mla

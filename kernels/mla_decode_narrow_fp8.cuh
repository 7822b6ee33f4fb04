// Swap-AB decode on an fp8 (e4m3) KV cache for up to 32 query rows on two consumer warpgroups (the row split; v40,
// v41, v49-v50). The stages, the producer and the products are mla_fp8_stages.cuh's; here, each consumer warpgroup
// runs Q.K^T, the online softmax, P and all of O^T = V8^T P8^T for 16 rows of a block, one block after the other.
// O^T for 16 rows is 64 registers a thread (32 columns in one warpgroup would be 128), so the work is split by
// warpgroup (Split):
//
// 17-32 rows (Split::kRows, 384 threads): warpgroup 1 takes rows 16-31 with its own Q, P and softmax, on the same
// raw and Vt stages (one copy and one transpose a block for both); one producer warpgroup copies and transposes.
//
// Up to 16 rows (Split::kBlocks, 384 threads): the two consumer warpgroups take every other block of the CTA's
// sequence, each with its own online softmax over all 16 rows; a request's two partial states are merged through
// shared memory at its end (warpgroup 1 hands its O^T and statistics to warpgroup 0, which writes the output).
// 17-32 rows in "row halves" (a plan made for them, DecodeParams::row_halves) run this kernel twice a part: CTA
// (h, part) on rows 16h..16h+15, both reading the same blocks (the second read mostly from L2). One
// warpgroup's chain a block (Q.K^T, softmax, P, P.V: ~3,000 cycles) is longer than the block's HBM time (~2,000).
// There is no Vt stage: each consumer reads its block's V from the raw stage into registers, transposed there into
// P.V's A operand (the register-V layout below), and P.V accumulates straight into O^T, left running until the
// consumer's next Q.K^T; the third warpgroup only copies.
//
// Barrier counts: Split::kRows' raw_empty takes the 4 producer warps and the 8 consumer warps (after Q.K^T),
// vt_empty the 8 consumer warps (after P.V); Split::kBlocks' raw_empty the 4 warps of the stage's consumer (after
// Q.K^T and its V loads). setmaxnreg moves the producer's registers to the consumers.
#pragma once

#include <type_traits>

#include "mla_fp8_register_v.cuh"

namespace mla {
namespace narrow_fp8 {
namespace row_split {

// What each of the two consumer warpgroups takes: its 16 rows of every block (17-32 rows), or all 16 rows of every
// other block (up to 16 rows).
enum class Split { kRows, kBlocks };
constexpr int kGroups = 2;                      // consumer warpgroups
constexpr int kConsumerThreads = kGroups * kWarpgroupThreads;
// Consumers first, then the producer warpgroup (Split::kRows: it copies and transposes; Split::kBlocks: it copies).
constexpr int kThreads = kConsumerThreads + kProducerThreads;
// setmaxnreg budgets: the pool is what the launch allocated (65536 / kThreads a thread, kernels/mla_decode.cuh says
// what a larger sum does). Split::kRows: the transpose holds 16 x 16 bytes a thread in registers and runs slower
// below ~150 (PERF_NOTES.md, v42), its consumers need 192 (two O^T batches of 64); Split::kBlocks: a consumer holds
// O^T (64) and two blocks' V fragments (64 each: one block's P.V still reads its own while the next one loads).
constexpr int kLaunchRegisters = 64 * 1024 / kThreads / 8 * 8;   // 168
template <Split kSplit>
constexpr int kConsumerRegisters = kSplit == Split::kRows ? 192 : 240;
template <Split kSplit>
constexpr int kProducerRegisters = kSplit == Split::kRows ? 112 : 24;
static_assert(kProducerRegisters<Split::kRows> + kGroups * kConsumerRegisters<Split::kRows> <=
                      (kGroups + 1) * kLaunchRegisters &&
                  kProducerRegisters<Split::kBlocks> + kGroups * kConsumerRegisters<Split::kBlocks> <=
                      (kGroups + 1) * kLaunchRegisters,
              "setmaxnreg budgets exceed the registers allocated at launch");
// Named barriers of the two warpgroups together (each one's own are 1-10, Fragment::barrier).
enum ExchangeBarrier : int { kExchangeFull = 11, kExchangeFree = 12 };

// What one consumer warpgroup keeps for its kCols query rows.
struct GroupStorage {
  alignas(1024) char q[kRawSubTiles][kCols * 128];       // Q8: kCols rows x 576 e4m3, 128-column sub-tiles
  alignas(1024) char p[2][kCols * VtLayout::kRowBytes];   // P^T high and low parts (e4m3), VtLayout
  float block_max[2][kConsumerWarps][kCols];
  float column_sum[kConsumerWarps][kCols];
  float q_inv_scale[kCols];                              // 1 / q_scale of each query row
};

// Split::kRows: two raw stages; its producer transposes block n - 1 right after copying block n, so each Vt is ready
// a copy earlier than with three, and no row lost for the bytes no longer in flight (PERF_NOTES.md, v47: 1-3%
// faster). Split::kBlocks: three raw stages (four measured the same, v52), no Vt stage.
template <Split kSplit>
using Stages = std::conditional_t<kSplit == Split::kRows, StageRing<2, 2>, RawRing<3>>;

// Warpgroup 1's state of a request under Split::kBlocks, a value per thread ([value][thread]: conflict-free).
// Both warpgroups hold the same fragment of O^T and the statistics, so thread t of warpgroup 0 merges slot t.
struct Exchange {
  float o[kDTiles * kCols / 2][kWarpgroupThreads];
  float max[kCols / 4][kWarpgroupThreads];
  float sum[kCols / 4][kWarpgroupThreads];
};
struct NoExchange {};

template <Split kSplit>
struct SharedStorage : Stages<kSplit> {
  GroupStorage group[kGroups];
  std::conditional_t<kSplit == Split::kBlocks, Exchange, NoExchange> exchange;
};

// O^T += V8^T P8^T for the Vt stage at shared address vt. P's high and low parts are the 32 rows of one B operand
// (smem.p is contiguous), so each m64n32k32 reads its Vt tile once and returns column c's two parts in
// accumulator columns c and c + 16, added into O in fp32: each block's sum is formed in fp8 wgmma's accumulator
// (fewer bits than fp32), O across blocks in registers. Four of the eight V tiles a batch (64 registers).
// The same batches as narrow_fp8::accumulate_tiles, written out: two calls of it compiled to other instruction
// scheduling here and ran 3% slower on the H200 (b128/s4096/h16 96.2 -> 99.2 µs, h32 135.1 -> 139.1; PERF_NOTES.md).
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

// Split::kBlocks' consumers take V through registers (mla_fp8_register_v.cuh), a thread 16 columns of all 512.
using RV = RegisterV<16>;

// Warpgroup 1 (Split::kBlocks) at a request's end: its O^T and statistics into smem.exchange, once warpgroup 0 has
// read the previous request's.
__device__ __forceinline__ void hand_over(Exchange& x, const ColumnStats<kCols>& stats,
                                          const float (&o)[kDTiles][kCols / 2], bool& handed_before) {
  const int t = threadIdx.x % kWarpgroupThreads;
  if (handed_before) named_barrier_sync<kConsumerThreads>(kExchangeFree);
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
    for (int i = 0; i < kCols / 2; ++i) x.o[d * (kCols / 2) + i][t] = o[d][i];
  }
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) x.max[c][t] = stats.max[c], x.sum[c][t] = stats.sum[c];
  named_barrier_arrive<kConsumerThreads>(kExchangeFull);
  handed_before = true;
}

// Warpgroup 0 (Split::kBlocks): warpgroup 1's state of the request merged into its own (the two online softmax
// states over disjoint blocks, rescaled to the larger max).
__device__ __forceinline__ void take_over(Exchange& x, ColumnStats<kCols>& stats, float (&o)[kDTiles][kCols / 2]) {
  const int t = threadIdx.x % kWarpgroupThreads;
  named_barrier_sync<kConsumerThreads>(kExchangeFull);
  float mine[kCols / 4], theirs[kCols / 4];
#pragma unroll
  for (int c = 0; c < kCols / 4; ++c) {
    const float other_max = x.max[c][t];
    const float merged = fmaxf(stats.max[c], other_max);
    mine[c] = stats.max[c] == -INFINITY ? 0.f : exp2f(stats.max[c] - merged);
    theirs[c] = other_max == -INFINITY ? 0.f : exp2f(other_max - merged);
    stats.sum[c] = stats.sum[c] * mine[c] + x.sum[c][t] * theirs[c];
    stats.max[c] = merged;
  }
#pragma unroll
  for (int d = 0; d < kDTiles; ++d) {
#pragma unroll
    for (int i = 0; i < kCols / 2; ++i) {
      const int c = (i / 4) * 2 + i % 2;
      o[d][i] = o[d][i] * mine[c] + x.o[d * (kCols / 2) + i][t] * theirs[c];
    }
  }
  named_barrier_arrive<kConsumerThreads>(kExchangeFree);
}

template <typename Element, Split kSplit>
__device__ void consume_kv_blocks(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                  SharedStorage<kSplit>& smem) {
  using Storage = SharedStorage<kSplit>;
  GroupStorage& mine = smem.group[f.group];
  const float descale = __ldg(p.descale_k);
  bool handed_before = false;
  int consumed = 0;   // the CTA's blocks so far (under Split::kBlocks, this warpgroup's are every other one)
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    RequestRows rows;
    start_request<Element>(p, f, req, piece, descale, mine, rows);
    float o[kDTiles][kCols / 2];
    zero_output(o);

    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      float s[kCols / 2], rescale[kCols / 4];
      if constexpr (kSplit == Split::kBlocks) {
        if (consumed % kGroups != f.group) continue;
        RV::Fragments v;
        score_block_and_load_v<RV>(p, f, piece, block, consumed, smem, mine, rows, 0, s, rescale, v);
        RV::wait_products(o);   // the previous block's P.V finished with Q.K^T's wait (in order): O^T is ready
        store_probs_fp8<TokenOrder::kRegisterV>(f, s, smem_addr(mine.p[0]));
        fence_async_proxy();   // P is read by wgmma
        named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kProbsReady));
        narrow::rescale_output<kCols>(o, rescale);
        RV::issue_products(v, smem_addr(mine.p[0]), smem_addr(mine.p[1]), o);   // waited for by the next Q.K^T
      } else {
        const int vt_stage = consumed % Storage::kVtStages, vt_parity = (consumed / Storage::kVtStages) & 1;
        const uint32_t vt = smem_addr(smem.vt[vt_stage]);
        // Both warpgroups take every block here, so the vote's saving is on each one's chain (PERF_NOTES.md, vote).
        score_block<true>(p, f, piece, block, consumed, smem, mine, rows, s, rescale);

        store_probs_fp8(f, s, smem_addr(mine.p[0]));
        mbar_wait(smem_addr(&smem.vt_full[vt_stage]), vt_parity);
        fence_async_proxy();   // the producer's Vt and this warpgroup's P are read by wgmma
        named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kProbsReady));

        narrow::rescale_output<kCols>(o, rescale);
        accumulate_block(vt, mine, o);
        if (f.lane == 0) mbar_arrive(smem_addr(&smem.vt_empty[vt_stage]));
      }
    }
    if (req == entry.end_req) allow_next_grid_launch();
    if constexpr (kSplit == Split::kBlocks) {
      RV::wait_products(o);   // or at the request's end
      if (f.group == 1) {
        hand_over(smem.exchange, rows.stats, o, handed_before);
      } else {
        take_over(smem.exchange, rows.stats, o);
        float scale[kCols / 4], lse_log2[kCols / 4];
        narrow::row_scales<kCols>(f, rows.stats, descale / kProbScale, mine, scale, lse_log2);
        RV::store_output_columns<Element>(p, f, req, slot, 0, o, scale);
        narrow::store_lse<kCols>(p, f, req, slot, lse_log2);
      }
    } else {
      narrow::write_output<Element, kCols>(p, f, req, slot, rows.stats, o, descale / kProbScale, mine);
    }
    named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kRequestDone));   // the next request reuses Q, its scales
  }
  // The last request's kExchangeFree arrival (every bar.arrive is matched before the CTA exits).
  if (kSplit == Split::kBlocks && f.group == 1 && handed_before) named_barrier_sync<kConsumerThreads>(kExchangeFree);
}

// kRowHalves (Split::kBlocks only): the CTA takes the 16 rows from 16 * blockIdx.x on; a separate instantiation, so
// that the 16-row kernel's machine code stays its own.
template <typename Element, Split kSplit, bool kRowHalves = false>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_narrow_fp8_kernel(const __grid_constant__ DecodeParams p) {
  static_assert(!kRowHalves || kSplit == Split::kBlocks, "row halves run the block split");
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage<kSplit>*>(smem_bytes);
  if (threadIdx.x == 0) {
    if constexpr (kSplit == Split::kRows) {
      smem.init_barriers(kGroups * kConsumerWarps, kGroups * kConsumerWarps);
    } else {
      smem.init_barriers(kConsumerWarps);   // each stage is one warpgroup's
    }
    mbar_fence_init();
  }
  __syncthreads();

  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  // Each role reads its schedule entry after its setmaxnreg: nothing live across it (ptxas spills what is).
  const int tid = threadIdx.x - kConsumerThreads;
  if (tid >= 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters<kSplit>));
    if constexpr (kSplit == Split::kRows) {
      produce_kv_blocks(p, SchedEntry::load(p.sched, blockIdx.y), smem, tid);
    } else {
      copy_kv_blocks(p, SchedEntry::load(p.sched, blockIdx.y), smem, tid);
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegisters<kSplit>));
  const int group = threadIdx.x / kWarpgroupThreads;
  const int first_row = kSplit == Split::kRows ? group * kCols : kRowHalves ? blockIdx.x * kCols : 0;
  consume_kv_blocks<Element>(p, Fragment(group, first_row), SchedEntry::load(p.sched, blockIdx.y), smem);
}

// Grid (row tiles, parts): the two CTAs of a part neighbours in launch order (so they read its blocks at about the
// same time, the second from L2).
template <typename Element, Split kSplit, bool kRowHalves = false>
cudaError_t launch(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(SharedStorage<kSplit>) <= 227 * 1024, "shared memory over the sm_90 limit");
  const int row_tiles = kRowHalves ? (p.rows + kCols - 1) / kCols : 1;
  return launch_with_pdl(mla_decode_narrow_fp8_kernel<Element, kSplit, kRowHalves>, dim3(row_tiles, p.num_parts),
                         dim3(kThreads), sizeof(SharedStorage<kSplit>), stream, p);
}

}  // namespace row_split
}  // namespace narrow_fp8

template <typename Element>
cudaError_t launch_decode_narrow_fp8(const DecodeParams& p, cudaStream_t stream) {
  using narrow_fp8::row_split::Split;
  if (p.rows <= narrow_fp8::kCols) return narrow_fp8::row_split::launch<Element, Split::kBlocks>(p, stream);
  if (p.row_halves) return narrow_fp8::row_split::launch<Element, Split::kBlocks, true>(p, stream);
  return narrow_fp8::row_split::launch<Element, Split::kRows>(p, stream);
}

}  // namespace mla

// Swap-AB decode on an fp8 (e4m3) KV cache for up to 16 query rows on two consumer warpgroups (the block split; v40,
// v41, v49-v52). The raw stages, the producer and Q.K^T are mla_fp8_stages.cuh's; here, each consumer warpgroup
// runs Q.K^T, the online softmax, P and all of O^T = V8^T P8^T for the 16 rows of a block. The two consumer
// warpgroups take every other block of the CTA's sequence (384 threads), each with its own online softmax over all
// 16 rows; a request's two partial states are merged through shared memory at its end (warpgroup 1 hands its O^T
// and statistics to warpgroup 0, which writes the output).
// 17-32 rows in "row halves" (a plan made for them, DecodeParams::row_halves) run this kernel twice a part: CTA
// (h, part) on rows 16h..16h+15, both reading the same blocks (the second read mostly from L2). One
// warpgroup's chain a block (Q.K^T, softmax, P, P.V: ~3,000 cycles) is longer than the block's HBM time (~2,000).
// There is no Vt stage: each consumer reads its block's V from the raw stage into registers, transposed there into
// P.V's A operand (the register-V layout below), and P.V accumulates straight into O^T, left running until the
// consumer's next Q.K^T; the third warpgroup only copies.
//
// Barrier counts: raw_empty takes the 4 warps of the stage's consumer (after Q.K^T and its V loads). setmaxnreg
// moves the producer's registers to the consumers.
#pragma once

#include "mla_fp8_register_v.cuh"

namespace mla {
namespace narrow_fp8 {
namespace block_split {

constexpr int kGroups = 2;                      // consumer warpgroups
constexpr int kConsumerThreads = kGroups * kWarpgroupThreads;
// Consumers first, then the producer warpgroup (it only copies).
constexpr int kThreads = kConsumerThreads + kProducerThreads;
// setmaxnreg budgets: the pool is what the launch allocated (65536 / kThreads a thread, kernels/mla_decode.cuh says
// what a larger sum does). A consumer holds O^T (64) and two blocks' V fragments (64 each: one block's P.V still
// reads its own while the next one loads).
constexpr int kLaunchRegisters = 64 * 1024 / kThreads / 8 * 8;   // 168
constexpr int kConsumerRegisters = 240;
constexpr int kProducerRegisters = 24;
static_assert(kProducerRegisters + kGroups * kConsumerRegisters <= (kGroups + 1) * kLaunchRegisters,
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

// Warpgroup 1's state of a request, a value per thread ([value][thread]: conflict-free).
// Both warpgroups hold the same fragment of O^T and the statistics, so thread t of warpgroup 0 merges slot t.
struct Exchange {
  float o[kDTiles * kCols / 2][kWarpgroupThreads];
  float max[kCols / 4][kWarpgroupThreads];
  float sum[kCols / 4][kWarpgroupThreads];
};

// Three raw stages (four measured the same, v52), no Vt stage.
struct SharedStorage : RawRing<3> {
  GroupStorage group[kGroups];
  Exchange exchange;
};

// The consumers take V through registers (mla_fp8_register_v.cuh), a thread 16 columns of all 512.
using RV = RegisterV<16>;

// Warpgroup 1 at a request's end: its O^T and statistics into smem.exchange, once warpgroup 0 has
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

// Warpgroup 0: warpgroup 1's state of the request merged into its own (the two online softmax
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

template <typename Element>
__device__ void consume_kv_blocks(const DecodeParams& p, const Fragment& f, const SchedEntry& entry,
                                  SharedStorage& smem) {
  GroupStorage& mine = smem.group[f.group];
  const float descale = __ldg(p.descale_k);
  bool handed_before = false;
  int consumed = 0;   // the CTA's blocks so far (this warpgroup's are every other one)
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const OutputSlot slot = output_slot(p, entry, req);
    RequestRows rows;
    start_request<Element>(p, f, req, piece, descale, mine, rows);
    float o[kDTiles][kCols / 2];
    zero_output(o);

    for (int block = piece.first; block < piece.last; ++block, ++consumed) {
      float s[kCols / 2], rescale[kCols / 4];
      if (consumed % kGroups != f.group) continue;
      RV::Fragments v;
      score_block_and_load_v<RV>(p, f, piece, block, consumed, smem, mine, rows, 0, s, rescale, v);
      RV::wait_products(o);   // the previous block's P.V finished with Q.K^T's wait (in order): O^T is ready
      store_probs_fp8<TokenOrder::kRegisterV>(f, s, smem_addr(mine.p[0]));
      fence_async_proxy();   // P is read by wgmma
      named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kProbsReady));
      narrow::rescale_output<kCols>(o, rescale);
      RV::issue_products(v, smem_addr(mine.p[0]), smem_addr(mine.p[1]), o);   // waited for by the next Q.K^T
    }
    if (req == entry.end_req) allow_next_grid_launch();
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
    named_barrier_sync<kWarpgroupThreads>(f.barrier(narrow::kRequestDone));   // the next request reuses Q, its scales
  }
  // The last request's kExchangeFree arrival (every bar.arrive is matched before the CTA exits).
  if (f.group == 1 && handed_before) named_barrier_sync<kConsumerThreads>(kExchangeFree);
}

// kRowHalves: the CTA takes the 16 rows from 16 * blockIdx.x on; a separate instantiation, so that the 16-row
// kernel's machine code stays its own.
template <typename Element, bool kRowHalves = false>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_narrow_fp8_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<SharedStorage*>(smem_bytes);
  if (threadIdx.x == 0) {
    SchedEntry::prefetch(p.sched, blockIdx.y);   // its load follows the wait below
    smem.init_barriers(kConsumerWarps);   // each stage is one warpgroup's
    mbar_fence_init();
  }
  __syncthreads();

  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  // Each role reads its schedule entry after its setmaxnreg: nothing live across it (ptxas spills what is).
  const int tid = threadIdx.x - kConsumerThreads;
  if (tid >= 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    copy_kv_blocks(p, SchedEntry::load(p.sched, blockIdx.y), smem, tid);
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegisters));
  const int group = threadIdx.x / kWarpgroupThreads;
  const int first_row = kRowHalves ? blockIdx.x * kCols : 0;
  consume_kv_blocks<Element>(p, Fragment(group, first_row), SchedEntry::load(p.sched, blockIdx.y), smem);
}

// Grid (row tiles, parts): the two CTAs of a part neighbours in launch order (so they read its blocks at about the
// same time, the second from L2).
template <typename Element, bool kRowHalves = false>
cudaError_t launch(const DecodeParams& p, cudaStream_t stream) {
  static_assert(sizeof(SharedStorage) <= 227 * 1024, "shared memory over the sm_90 limit");
  const int row_tiles = kRowHalves ? (p.rows + kCols - 1) / kCols : 1;
  return launch_with_pdl(mla_decode_narrow_fp8_kernel<Element, kRowHalves>, dim3(row_tiles, p.num_parts),
                         dim3(kThreads), sizeof(SharedStorage), stream, p);
}

}  // namespace block_split
}  // namespace narrow_fp8

// Up to 16 rows, or 17-32 in row halves (launch_decode sends the others to the 64-row fp8 kernel).
template <typename Element>
cudaError_t launch_decode_narrow_fp8(const DecodeParams& p, cudaStream_t stream) {
  if (p.row_halves) return narrow_fp8::block_split::launch<Element, true>(p, stream);
  return narrow_fp8::block_split::launch<Element>(p, stream);
}

}  // namespace mla

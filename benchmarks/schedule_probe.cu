// Cycles a 64-token block of the 16-bit 64-row decode tile (128 heads) under three consumer schedules, without
// loads: the KV block and Q sit in shared memory, so only the schedule is timed (what a kernel's loads add is the
// difference to its measured cycles a block).
//   kernel: warpgroup 0 Q.K^T, softmax, its half of P.V from registers; warpgroup 1 the other half after P's
//           hand-over (kernels/mla_decode.cuh: its softmax, warpgroup 0's P.V, P's store and O's lazy rescale are
//           the kernel's functions; the P.V from shared memory is issued here with offset descriptors, desc_plus);
//   split:  a scores warpgroup (Q.K^T, softmax, P to shared memory) and two values warpgroups (a half of O each);
//           "deferred": block i's P.V starts only once block i + 1's Q.K^T is done, so that it runs beside block
//           i + 1's softmax; "at once": as soon as P is written;
//   seesaw: FlashMLA's dense decode order (blocks in pairs, each warpgroup the scores, softmax and its own P.V of
//           one block of the pair and the other's P.V from shared memory), with the kernel's lazy running max.
// A split scores warpgroup holding Q's 512 latent columns in registers (RS Q.K^T) does not fit beside two values
// warpgroups: at 184 / 160 / 160 registers ptxas spills and serializes the wgmmas (C7512), at 200 / 152 / 152 it
// ignores the setmaxnreg (C7507).
//
//   nvcc -gencode arch=compute_90a,code=sm_90a -std=c++20 -O3 --use_fast_math --expt-relaxed-constexpr -Ikernels \
//        -I<cutlass>/include benchmarks/schedule_probe.cu -o /tmp/schedule_probe && /tmp/schedule_probe
//
// One CTA an SM on every SM; cycles are clock64 of each warpgroup's thread 0 around its loop, averaged over the CTAs.
// The operands are fixed bf16 values in [-1, 1): every block's scores are the same and no block moves a row's lazy
// running max, the kernel's common path.
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "launch_timing.cuh"
#include "mla_decode.cuh"

namespace {

using namespace mla;
using Element = __nv_bfloat16;
using Ops = GmmaOps<Element>;

constexpr int kThreads = 3 * kWarpgroupThreads;
constexpr int kBuffers = 3;   // P buffers (and the hand-over's mbarriers) a schedule cycles through
// The split schedule's setmaxnreg budgets (the launch's 168 a thread, 504 for three warpgroups).
constexpr int kScoresRegisters = 184, kValuesRegisters = 160;
static_assert(kScoresRegisters + 2 * kValuesRegisters <= 504, "budgets over the launch's registers");

struct Smem {
  alignas(1024) char q[kTileBytes];
  alignas(1024) char kv[kTileBytes];
  alignas(1024) char probs[kBuffers][kSubTileBytes];
  float rescale[kBuffers][64];
  uint64_t ready[kBuffers];   // P (and its rescale factors) written; in "split, deferred" also the next Q.K^T done
  uint64_t freed[kBuffers];   // P read by its readers
  struct {
    float max[64], scale[64];
  } pair[2];   // the seesaw's running max hand-over: pair[0] after block A's softmax, pair[1] after block B's
};

enum class Plan { kMain, kSplitDeferred, kSplitAtOnce, kSeesaw };

// The phase of the i-th use of one of kUses mbarriers used in turn (use i of mbarrier i % kUses).
template <int kUses = kBuffers>
__device__ __forceinline__ int phase_of(int i) {
  return (i / kUses) & 1;
}

// An address the compiler cannot treat as loop-invariant (a real KV block's stage changes every block): without it
// ptxas may hoist the 36 descriptors out of the loop and spill them.
__device__ __forceinline__ uint32_t opaque(uint32_t x) {
  asm volatile("mov.b32 %0, %0;" : "+r"(x));
  return x;
}

// P into buffer b, as the kernel stores it into a stage.
__device__ __forceinline__ void store_p(const wide::Fragment& f, const uint32_t (&probs)[wide::kTokenSteps][4],
                                        const float (&rescale)[2], int b, Smem& smem) {
  wide::store_probs_to(f, probs, rescale, smem_addr(smem.probs[b]), smem.rescale[b]);
}

__device__ __forceinline__ void issue_scores_ss(const Smem& smem, float (&s)[32]) {
  const uint64_t q_desc = desc_k_major(opaque(smem_addr(smem.q))), kv_desc = desc_k_major(opaque(smem_addr(smem.kv)));
#pragma unroll
  for (int k = 0; k < wide::kKSteps; ++k) {
    const int offset = (k / 4) * kSubTileBytes + (k % 4) * 32;
    wgmma_ss<Ops::QK>(desc_plus(q_desc, offset), desc_plus(kv_desc, offset), s, k > 0, std::make_index_sequence<32>{});
  }
}

// S = Q K^T, both operands from shared memory, waited for.
__device__ __forceinline__ void scores(const Smem& smem, float (&s)[32]) {
  cute::warpgroup_arrive();
  issue_scores_ss(smem, s);
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(s);
}

__device__ __forceinline__ void issue_values_ss(int half, int b, const Smem& smem, float (&o)[128]) {
  const uint64_t v_desc = wide::v_desc(smem_addr(smem.kv) + half * 4 * kSubTileBytes, 0);
  const uint64_t p_desc = desc_k_major(smem_addr(smem.probs[b]));
#pragma unroll
  for (int t = 0; t < wide::kTokenSteps; ++t) {
    wgmma_ss<Ops::PV_SS>(desc_plus(p_desc, t * 32), desc_plus(v_desc, t * 16 * 128), o, true,
                         std::make_index_sequence<128>{});
  }
}

// O[:, half] = O * rescale + P V[:, half], P from buffer b, waited for.
__device__ __forceinline__ void values_ss(const wide::Fragment& f, int half, int b, const Smem& smem, float (&o)[128]) {
  wide::rescale_rows_lazily(o, smem.rescale[b][f.r0], smem.rescale[b][f.r0 + 8]);
  fence_operands(o);
  cute::warpgroup_arrive();
  issue_values_ss(half, b, smem, o);
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(o);
}

// The softmax calls' row arguments here: no key limit (no block is masked) and no padding rows.
struct Unmasked {
  int key_limit[2] = {1 << 30, 1 << 30};
  bool padding[2] = {false, false};
};

// Rows whose running max starts at 0: the fixed operands' scores never move it by more than the lazy slack.
__device__ __forceinline__ wide::RowStats start_stats() {
  wide::RowStats stats;
  stats.max[0] = stats.max[1] = 0.f;
  return stats;
}

struct Result {
  long long cycles[3];
  float sink;
};

// Warpgroup 0 of the kernel's schedule: Q.K^T (SS), softmax, P to buffer i % 2 for warpgroup 1, its P.V from
// registers.
__device__ void main_scores_warpgroup(const DecodeParams& p, const wide::Fragment& f, int blocks, Smem& smem,
                                      float (&o)[128]) {
  wide::RowStats stats = start_stats();
  const Unmasked rows;
  float s[32];
  for (int i = 0; i < blocks; ++i) {
    const int b = i % 2;
    if (i >= 2 && threadIdx.x == 0) mbar_wait(smem_addr(&smem.freed[b]), phase_of<2>(i - 2));
    scores(smem, s);
    float rescale[2];
    uint32_t probs[wide::kTokenSteps][4];
    wide::online_softmax_speculative<Element>(p, f, i + 1, false, rows.key_limit, s, stats, rescale, rows.padding,
                                              probs);
    named_barrier_sync<kWarpgroupThreads>(wide::kWarpgroup0);
    wide::issue_v0<Element>(smem_addr(smem.kv), probs, rescale, o);
    store_p(f, probs, rescale, b, smem);
    fence_async_proxy();
    named_barrier_sync<kWarpgroupThreads>(wide::kWarpgroup0);
    if (threadIdx.x == 0) mbar_arrive(smem_addr(&smem.ready[b]));
    cute::warpgroup_wait<0>();
    fence_operands(o);
  }
}

__device__ void main_values_warpgroup(const wide::Fragment& f, int blocks, Smem& smem, float (&o)[128]) {
  for (int i = 0; i < blocks; ++i) {
    const int b = i % 2;
    mbar_wait(smem_addr(&smem.ready[b]), phase_of<2>(i));
    values_ss(f, 1, b, smem, o);
    if (threadIdx.x == kWarpgroupThreads) mbar_arrive(smem_addr(&smem.freed[b]));
  }
}

// The scores warpgroup of the split schedule: Q.K^T, softmax, P to buffer i % 3. kDeferred: the values warpgroups
// may start block i's P.V only once block i + 1's Q.K^T is done (ready[i % 3] is arrived then), so that it runs
// beside block i + 1's softmax.
template <bool kDeferred>
__device__ void split_scores_warpgroup(const DecodeParams& p, const wide::Fragment& f, int blocks, Smem& smem) {
  wide::RowStats stats = start_stats();
  const Unmasked rows;
  float s[32];
  for (int i = 0; i < blocks; ++i) {
    const int b = i % kBuffers;
    if (i >= kBuffers && threadIdx.x == 0) mbar_wait(smem_addr(&smem.freed[b]), phase_of(i - kBuffers));
    scores(smem, s);
    if (kDeferred && i > 0 && threadIdx.x == 0) mbar_arrive(smem_addr(&smem.ready[(i - 1) % kBuffers]));
    float rescale[2];
    uint32_t probs[wide::kTokenSteps][4];
    wide::online_softmax_speculative<Element>(p, f, i + 1, false, rows.key_limit, s, stats, rescale, rows.padding,
                                              probs);
    // The buffer's last readers released it (thread 0 waited above): all of this warpgroup may write it.
    named_barrier_sync<kWarpgroupThreads>(wide::kWarpgroup0);
    store_p(f, probs, rescale, b, smem);
    fence_async_proxy();
    named_barrier_sync<kWarpgroupThreads>(wide::kWarpgroup0);
    if (!kDeferred && threadIdx.x == 0) mbar_arrive(smem_addr(&smem.ready[b]));
  }
  if (kDeferred && threadIdx.x == 0) mbar_arrive(smem_addr(&smem.ready[(blocks - 1) % kBuffers]));
}

__device__ void split_values_warpgroup(const wide::Fragment& f, int half, int blocks, Smem& smem, float (&o)[128]) {
  for (int i = 0; i < blocks; ++i) {
    const int b = i % kBuffers;
    mbar_wait(smem_addr(&smem.ready[b]), phase_of(i));
    values_ss(f, half, b, smem, o);
    if (threadIdx.x % kWarpgroupThreads == 0) mbar_arrive(smem_addr(&smem.freed[b]));
  }
}

// The seesaw (FlashMLA's dense decode schedule, with this project's lazy max): blocks in pairs (A, B); warpgroup 0
// owns O[:, 0:256] and block A, warpgroup 1 O[:, 256:512] and block B. Each computes its block's scores and
// softmax (B's against A's running max), multiplies its own P into its half of O from registers, and the other's
// P from shared memory; each issues its next block's Q.K^T behind its last P.V. Named barriers of both warpgroups.
enum SeesawBarrier : int { kScaleAReady = 5, kScaleBReady = 6, kProbsAReady = 7, kProbsBIssued = 8 };
constexpr int kPairThreads = 2 * kWarpgroupThreads;

__device__ __forceinline__ void issue_values_rs(int half, const Smem& smem, const uint32_t (&probs)[wide::kTokenSteps][4],
                                                float (&o)[128]) {
  const uint64_t v_desc = wide::v_desc(smem_addr(smem.kv) + half * 4 * kSubTileBytes, 0);
#pragma unroll
  for (int t = 0; t < wide::kTokenSteps; ++t) {
    wgmma_rs<Ops::PV_RS>(probs[t], desc_plus(v_desc, t * 16 * 128), o, std::make_index_sequence<128>{});
  }
}

// The seesaw's hand-over of the running max: `block` (0 = A, 1 = B) of the pair publishes its rows' running max and
// rescale factors; the other warpgroup takes them as its running max and returns the factors.
__device__ __forceinline__ void publish_max(const wide::Fragment& f, const wide::RowStats& stats,
                                            const float (&scale)[2], int block, Smem& smem) {
  if (f.lane % 4 == 0) {
    smem.pair[block].max[f.r0] = stats.max[0], smem.pair[block].max[f.r0 + 8] = stats.max[1];
    smem.pair[block].scale[f.r0] = scale[0], smem.pair[block].scale[f.r0 + 8] = scale[1];
  }
}
__device__ __forceinline__ void take_max(const wide::Fragment& f, int block, const Smem& smem, wide::RowStats& stats,
                                         float (&scale)[2]) {
  stats.max[0] = smem.pair[block].max[f.r0], stats.max[1] = smem.pair[block].max[f.r0 + 8];
  scale[0] = smem.pair[block].scale[f.r0], scale[1] = smem.pair[block].scale[f.r0 + 8];
}

template <bool is_a>
__device__ void seesaw_warpgroup(const DecodeParams& p, const wide::Fragment& f, int blocks, Smem& smem,
                                 float (&o)[128]) {
  const Unmasked rows;
  wide::RowStats stats = start_stats();
  float s[32];
  fence_operands(s);
  cute::warpgroup_arrive();
  issue_scores_ss(smem, s);
  cute::warpgroup_commit_batch();
  cute::warpgroup_wait<0>();
  fence_operands(s);
  for (int pair = 0; pair < blocks / 2; ++pair) {
    float own[2];
    uint32_t probs[wide::kTokenSteps][4];
    if constexpr (is_a) {
      wide::online_softmax_speculative<Element>(p, f, 2 * pair + 1, false, rows.key_limit, s, stats, own,
                                                rows.padding, probs);
      publish_max(f, stats, own, 0, smem);
      named_barrier_arrive<kPairThreads>(kScaleAReady);
      wide::rescale_rows_lazily(o, own[0], own[1]);
      fence_operands(o);
      cute::warpgroup_arrive();
      issue_values_rs(0, smem, probs, o);
      cute::warpgroup_commit_batch();
      cute::warpgroup_wait<0>();
      fence_operands(o);
      named_barrier_sync<kPairThreads>(kScaleBReady);
      float other[2];
      take_max(f, 1, smem, stats, other);
      if (__any_sync(0xffffffff, other[0] != 1.f || other[1] != 1.f)) {
#pragma unroll
        for (int t = 0; t < wide::kTokenSteps; ++t) {
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const float2 v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&probs[t][r]));
            probs[t][r] = Ops::pack(v.x * other[r % 2], v.y * other[r % 2]);
          }
        }
      }
      stats.sum[0] *= other[0], stats.sum[1] *= other[1];
      store_p(f, probs, other, 0, smem);
      fence_async_proxy();
      named_barrier_arrive<kPairThreads>(kProbsAReady);
      named_barrier_sync<kPairThreads>(kProbsBIssued);
      wide::rescale_rows_lazily(o, other[0], other[1]);
      fence_operands(o);
      cute::warpgroup_arrive();
      issue_values_ss(0, 1, smem, o);
      issue_scores_ss(smem, s);
      cute::warpgroup_commit_batch();
      cute::warpgroup_wait<0>();
      fence_operands(o);
      fence_operands(s);
    } else {
      named_barrier_sync<kPairThreads>(kScaleAReady);
      float first[2];
      take_max(f, 0, smem, stats, first);
      stats.sum[0] *= first[0], stats.sum[1] *= first[1];
      wide::online_softmax_speculative<Element>(p, f, 2 * pair + 2, false, rows.key_limit, s, stats, own,
                                                rows.padding, probs);
      publish_max(f, stats, own, 1, smem);
      named_barrier_arrive<kPairThreads>(kScaleBReady);
      store_p(f, probs, own, 1, smem);
      wide::rescale_rows_lazily(o, first[0] * own[0], first[1] * own[1]);
      fence_operands(o);
      cute::warpgroup_arrive();
      issue_values_rs(1, smem, probs, o);
      cute::warpgroup_commit_batch();
      fence_async_proxy();
      named_barrier_sync<kPairThreads>(kProbsAReady);
      cute::warpgroup_arrive();
      issue_values_ss(1, 0, smem, o);
      cute::warpgroup_commit_batch();
      named_barrier_arrive<kPairThreads>(kProbsBIssued);
      cute::warpgroup_wait<0>();
      fence_operands(o);
      cute::warpgroup_arrive();
      issue_scores_ss(smem, s);
      cute::warpgroup_commit_batch();
      cute::warpgroup_wait<0>();
      fence_operands(s);
    }
  }
}

// Runs body(o) with 128 floats of O (zeroed) in this warpgroup, then record(their sum), which keeps the products live.
template <typename Record, typename Body>
__device__ __forceinline__ void with_o(const Record& record, Body&& body) {
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.f;
  body(o);
  float total = 0.f;
#pragma unroll
  for (int i = 0; i < 128; ++i) total += o[i];
  record(total);
}

template <Plan kPlan>
__global__ void __launch_bounds__(kThreads, 1) schedule_kernel(int blocks, float scale_log2, Result* results) {
  extern __shared__ __align__(1024) char smem_bytes[];
  auto& smem = *reinterpret_cast<Smem*>(smem_bytes);
  // bf16 values in [-1, 1) from a hash: scores of O(1) data, as the benchmark draws them.
  for (int i = threadIdx.x; i < int(offsetof(Smem, probs)) / 2; i += blockDim.x) {
    const uint32_t h = (uint32_t(i) * 2654435761u) >> 16;
    reinterpret_cast<Element*>(smem_bytes)[i] = __float2bfloat16((int(h % 2048) - 1024) / 1024.f);
  }
  if (threadIdx.x == 0) {
    for (int b = 0; b < kBuffers; ++b) {
      mbar_init(smem_addr(&smem.ready[b]), 1);
      mbar_init(smem_addr(&smem.freed[b]), kPlan == Plan::kMain ? 1 : 2);
    }
    mbar_fence_init();
  }
  fence_async_proxy();
  __syncthreads();
  DecodeParams p{};
  p.scale_log2 = scale_log2;
  const wide::Fragment f;
  const long long start = clock64();
  // Every path records its own cycles and returns: no code after the warpgroups' budgets diverge is shared.
  const auto record = [&](float total) {
    const long long stop = clock64();
    if (threadIdx.x % kWarpgroupThreads == 0) results[blockIdx.x].cycles[f.warpgroup] = stop - start;
    if (total == 1234.5f) results[blockIdx.x].sink = total;   // keeps the products live
  };
  if constexpr (kPlan == Plan::kMain || kPlan == Plan::kSeesaw) {
    if (f.warpgroup == 2) {
      asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
      return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");
    with_o(record, [&](float (&o)[128]) {
      if constexpr (kPlan == Plan::kSeesaw) {
        if (f.warpgroup == 0) {
          seesaw_warpgroup<true>(p, f, blocks, smem, o);
        } else {
          seesaw_warpgroup<false>(p, f, blocks, smem, o);
        }
      } else if (f.warpgroup == 0) {
        main_scores_warpgroup(p, f, blocks, smem, o);
      } else {
        main_values_warpgroup(f, blocks, smem, o);
      }
    });
  } else if (f.warpgroup == 0) {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kScoresRegisters));
    split_scores_warpgroup<kPlan == Plan::kSplitDeferred>(p, f, blocks, smem);
    record(0.f);
  } else {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kValuesRegisters));
    with_o(record, [&](float (&o)[128]) { split_values_warpgroup(f, f.warpgroup - 1, blocks, smem, o); });
  }
}

template <Plan kPlan>
void measure(const char* name, int sms, int blocks) {
  Result* results;
  cudaMalloc(&results, sizeof(Result) * sms);
  cudaMemset(results, 0, sizeof(Result) * sms);
  const auto kernel = schedule_kernel<kPlan>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, sizeof(Smem));
  const float scale_log2 = 0.0416667f * 1.4426950f;   // 1/sqrt(576) in the log2 domain
  const auto [ms, err] = time_after_warm_up([&](bool warm_up) {
    kernel<<<sms, kThreads, sizeof(Smem)>>>(warm_up ? blocks / 10 : blocks, scale_log2, results);
  });
  std::vector<Result> host(sms);
  cudaMemcpy(host.data(), results, sizeof(Result) * sms, cudaMemcpyDeviceToHost);
  double per_wg[3] = {0, 0, 0};
  for (int c = 0; c < sms; ++c) {
    for (int g = 0; g < 3; ++g) per_wg[g] += double(host[c].cycles[g]) / sms / blocks;
  }
  double slowest = 0;
  for (double c : per_wg) slowest = c > slowest ? c : slowest;
  printf("| %-26s | %7.0f | %7.0f | %7.0f | %6.3f | %s\n", name, per_wg[0], per_wg[1], per_wg[2],
         slowest * blocks / (ms * 1e6), err == cudaSuccess ? "ok" : cudaGetErrorString(err));
  cudaFree(results);
}

}  // namespace

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  printf("%s, %d SMs; cycles a 64-token block of a 64-row bf16 tile (no loads) per warpgroup and the SM clock (GHz;\n"
         "clock64 over the kernel's event time). The tensor pipe's work a block: 2,176 cycles\n\n", prop.name, sms);
  printf("| schedule                   | wg0     | wg1     | wg2     | GHz    |\n|---|---|---|---|---|\n");
  constexpr int kBlocks = 20000;
  for (int round = 0; round < 2; ++round) {
    measure<Plan::kMain>("kernel (wg0 QK+softmax+PV0)", sms, kBlocks);
    measure<Plan::kSplitDeferred>("split, P.V deferred", sms, kBlocks);
    measure<Plan::kSplitAtOnce>("split, P.V at once", sms, kBlocks);
    measure<Plan::kSeesaw>("seesaw (FlashMLA's order)", sms, kBlocks);
  }
  return 0;
}

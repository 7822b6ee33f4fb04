// What one e4m3 wgmma costs the SM, by shape and operand source: cycles a wgmma for one warpgroup issuing a chain
// (as a Q.K^T or P.V of the decode kernels: arrive, the chain, commit, wait), and for two warpgroups issuing at once.
// It answers the design question a new 17-32-row fp8 tile turns on: does an RS wgmma (A from registers) escape the
// ~32-cycle floor that an SS wgmma shows at N <= 32, and does N = 32 then cost half of N = 64? Its last rows time the
// 64-row kernel's softmax math (and its MUFU and FFMA parts) alone and beside a wgmma chain: what an MMA in flight
// costs the math that a schedule overlaps with it.
//
//   nvcc -gencode arch=compute_90a,code=sm_90a -std=c++20 -O3 --expt-relaxed-constexpr -Ikernels \
//        -I<cutlass>/include benchmarks/wgmma_rates.cu -o /tmp/wgmma_rates && /tmp/wgmma_rates
//
// One CTA an SM on every SM (the card's clock under a full load), operands of constant e4m3 values in shared memory
// (128-byte swizzled K-major tiles) and, for RS, in registers. Cycles are clock64 of each warpgroup's thread 0 around
// its loop, averaged over the CTAs.
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "launch_timing.cuh"
#include "mla_pipeline.cuh"
#include "mla_softmax.cuh"
#include "mla_wgmma.cuh"

namespace {

using namespace mla;

constexpr int kThreads = 2 * kWarpgroupThreads;
constexpr int kATileBytes = 64 * 128;    // 64 rows of 128 bytes: an A operand's four k32 steps
constexpr int kBTileBytes = 256 * 128;   // up to 256 rows (N)
constexpr int kSmemBytes = kATileBytes + kBTileBytes;

// A chain of kChain wgmma of shape 64 x kN x 32 into one accumulator.
template <int kN, bool kRS, int kChain> struct Chain;

#define MLA_RATE_CHAIN(N)                                                                                   \
  template <bool kRS, int kChain> struct Chain<N, kRS, kChain> {                                            \
    using SS = gmma::MMA_64x##N##x32_F32E4M3E4M3_SS_TN<>;                                                   \
    using RS = gmma::MMA_64x##N##x32_F32E4M3E4M3_RS_TN<>;                                                   \
    static constexpr int kN_ = N, kChain_ = kChain, kAcc = N / 2;                               \
    static constexpr const char* kName = kRS ? "RS m64n" #N "k32" : "SS m64n" #N "k32";                    \
    __device__ static void issue(uint64_t a_desc, uint64_t b_desc, const uint32_t (&a)[4], float (&acc)[N / 2]) { \
      _Pragma("unroll") for (int k = 0; k < kChain; ++k) {                                                  \
        const uint32_t step = (k % 4) * 32;                                                                 \
        if constexpr (kRS) {                                                                                \
          wgmma_rs<RS>(a, desc_plus(b_desc, step), acc, std::make_index_sequence<N / 2>{});                 \
        } else {                                                                                            \
          wgmma_ss<SS>(desc_plus(a_desc, step), desc_plus(b_desc, step), acc, true,                         \
                       std::make_index_sequence<N / 2>{});                                                  \
        }                                                                                                   \
      }                                                                                                     \
    }                                                                                                       \
  };
MLA_RATE_CHAIN(16)
MLA_RATE_CHAIN(32)
MLA_RATE_CHAIN(64)
MLA_RATE_CHAIN(256)
#undef MLA_RATE_CHAIN

// A swap-AB Q.K^T with K from registers (S^T = K Q^T, m64n32k32 RS): each thread loads its A fragments from a
// 64-token tile of 576-byte rows (640 apart, 16-byte chunks swizzled by row % 8), 16 bytes a load holding two k-steps
// of one token (the k order permuted alike in Q's layout). kAllFirst: every load, then one fence and the 18 wgmmas
// (72 registers); otherwise each pair of k-steps is fenced and issued as soon as it has loaded.
template <bool kAllFirst>
struct LoadedKq {
  using RS = gmma::MMA_64x32x32_F32E4M3E4M3_RS_TN<>;
  static constexpr int kN_ = 32, kChain_ = 18, kAcc = 16;
  static constexpr const char* kName = kAllFirst ? "RS n32 LDS first" : "RS n32 LDS pairs";
  __device__ static void issue(uint64_t a_desc, uint64_t b_desc, const uint32_t (&)[4], float (&acc)[16]) {
    const uint32_t base = uint32_t(a_desc & 0x3FFF) << 4;   // the K tile spans all of shared memory (40 KB)
    const int lane = threadIdx.x % 32, warp = (threadIdx.x / 32) % 4, q = lane % 4;
    uint32_t a[18][4];
#pragma unroll
    for (int pair = 0; pair < 9; ++pair) {
      uint4 rows[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = 16 * warp + lane / 4 + 8 * h, chunk = pair * 4 + q;
        const uint32_t at = base + row * 640 + (chunk / 8) * 128 + ((chunk % 8) ^ (row % 8)) * 16;
        rows[h] = load_shared_16(at);
      }
      const uint32_t first[4] = {rows[0].x, rows[1].x, rows[0].y, rows[1].y};
      const uint32_t second[4] = {rows[0].z, rows[1].z, rows[0].w, rows[1].w};
#pragma unroll
      for (int r = 0; r < 4; ++r) a[2 * pair][r] = first[r], a[2 * pair + 1][r] = second[r];
      if constexpr (!kAllFirst) {
        fence_operands(a[2 * pair]);
        fence_operands(a[2 * pair + 1]);
        cute::warpgroup_arrive();   // wgmma.fence: these A registers were just written
        issue_pair(pair, b_desc, a, acc);
      }
    }
    if constexpr (kAllFirst) {
#pragma unroll
      for (int k = 0; k < 18; ++k) fence_operands(a[k]);
      cute::warpgroup_arrive();
#pragma unroll
      for (int pair = 0; pair < 9; ++pair) issue_pair(pair, b_desc, a, acc);
    }
  }
  __device__ static void issue_pair(int pair, uint64_t b_desc, const uint32_t (&a)[18][4], float (&acc)[16]) {
#pragma unroll
    for (int k = 2 * pair; k < 2 * pair + 2; ++k) {
      wgmma_rs<RS>(a[k], desc_plus(b_desc, (k % 4) * 32), acc, std::make_index_sequence<16>{});
    }
  }
};

// The 64-row kernel's softmax of one block as a thread runs it (32 scores: the row maxima through two shuffles, 32
// FFMA, 24 MUFU.EX2 and 8 exp2_on_fma_pipe, the sums), each iteration seeded by the last: no wgmma. Its cycles an
// iteration, alone or beside another warpgroup's wgmma chain, say what an MMA in flight costs the softmax.
struct SoftmaxMath {
  static constexpr int kN_ = 0, kChain_ = 1, kAcc = 4;
  static constexpr const char* kName = "softmax math";
  __device__ static void math(float (&acc)[4]) {
    float x[32], m = -INFINITY;
#pragma unroll
    for (int i = 0; i < 32; ++i) x[i] = acc[i % 4] * (1.f + i * 0.0625f), m = fmaxf(m, x[i]);
    m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 2));
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const float e = fmaf(x[i], 0.0625f, -m * 0.0625f);
      sum += i % 8 >= 6 ? exp2_on_fma_pipe(e) : exp2f(e);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[i] = acc[i] * 0.5f + sum * 0.015625f;
  }
  __device__ static void issue(uint64_t, uint64_t, const uint32_t (&)[4], float (&acc)[4]) { math(acc); }
};

// Parts of that math alone: 32 exponentials all on MUFU.EX2 (each after its FFMA, summed), and 128 FFMA in eight
// independent chains: which of them a wgmma in flight slows.
struct MufuMath {
  static constexpr int kN_ = 0, kChain_ = 1, kAcc = 4;
  static constexpr const char* kName = "32 exp2 (MUFU)";
  __device__ static void issue(uint64_t, uint64_t, const uint32_t (&)[4], float (&acc)[4]) {
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 32; ++i) sum += exp2f(fmaf(acc[i % 4], 0.0625f, -0.015625f * i));
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[i] = acc[i] * 0.5f + sum * 0.015625f;
  }
};
struct FmaMath {
  static constexpr int kN_ = 0, kChain_ = 1, kAcc = 8;
  static constexpr const char* kName = "128 FFMA";
  __device__ static void issue(uint64_t, uint64_t, const uint32_t (&)[4], float (&acc)[8]) {
#pragma unroll
    for (int k = 0; k < 16; ++k) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] = fmaf(acc[i], 0.999f, 0.001f * i);
    }
  }
};

__device__ float softmax_sink;

// A warpgroup's own P.V (RS m64n256k32 x2) in flight while it runs the softmax math, as v152 did.
struct PvThenSoftmaxMath {
  static constexpr int kN_ = 512, kChain_ = 1, kAcc = 128;   // one iteration: both wgmmas (MACs of an n512 one)
  static constexpr const char* kName = "PV x2 + softmax";
  __device__ static void issue(uint64_t a_desc, uint64_t b_desc, const uint32_t (&a)[4], float (&acc)[128]) {
    float seed[4] = {acc[0], acc[1], acc[2], acc[3]};   // the last iteration's products: nothing to hoist
    Chain<256, true, 2>::issue(a_desc, b_desc, a, acc);
    SoftmaxMath::math(seed);
    if (seed[0] == 1234.5f) softmax_sink = seed[1];   // keeps the math live (never true)
  }
};

struct Idle {
  static constexpr const char* kName = "idle";
};

template <typename W>
__device__ __forceinline__ void run(int iters, const char* smem, long long* cycles, float* sink) {
  if constexpr (std::is_same_v<W, Idle>) {
    return;
  } else {
    const uint32_t base = smem_addr(smem);
    const uint64_t a_desc = desc_k_major(base);
    const uint64_t b_desc = desc_k_major(base + kATileBytes);
    uint32_t a[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) a[r] = reinterpret_cast<const uint32_t*>(smem)[(threadIdx.x * 4 + r) % 2048];
    float acc[W::kAcc];
#pragma unroll
    for (int i = 0; i < W::kAcc; ++i) acc[i] = 0.f;
    __syncwarp();
    const long long start = clock64();
#pragma unroll 1
    for (int it = 0; it < iters; ++it) {
      fence_operands(a);
      cute::warpgroup_arrive();
      W::issue(a_desc, b_desc, a, acc);
      cute::warpgroup_commit_batch();
      cute::warpgroup_wait<0>();
      fence_operands(acc);
    }
    const long long stop = clock64();
    float total = 0.f;
#pragma unroll
    for (int i = 0; i < W::kAcc; ++i) total += acc[i];
    if (threadIdx.x % kWarpgroupThreads == 0) cycles[blockIdx.x * 2 + threadIdx.x / kWarpgroupThreads] = stop - start;
    if (total == 1234.5f) sink[threadIdx.x] = total;   // keeps the products live
  }
}

template <typename W0, typename W1>
__global__ void __launch_bounds__(kThreads, 1) rates_kernel(int iters, long long* cycles, float* sink) {
  extern __shared__ __align__(1024) char smem[];
  // e4m3 values 2^-4 .. 2^-1 (no NaN, no overflow over any run here).
  for (int i = threadIdx.x; i < kSmemBytes / 4; i += blockDim.x) {
    reinterpret_cast<uint32_t*>(smem)[i] = 0x18181818u + ((i * 2654435761u) & 0x07070707u);
  }
  fence_async_proxy();   // the generic stores above, before wgmma reads them
  __syncthreads();
  if (threadIdx.x < kWarpgroupThreads) {
    run<W0>(iters, smem, cycles, sink);
  } else {
    run<W1>(iters, smem, cycles, sink);
  }
}

template <typename W>
constexpr double macs() {
  if constexpr (std::is_same_v<W, Idle>) {
    return 0.0;
  } else {
    return 64.0 * W::kN_ * 32.0;
  }
}
template <typename W>
constexpr int chain() {
  if constexpr (std::is_same_v<W, Idle>) {
    return 0;
  } else {
    return W::kChain_;
  }
}

template <typename W0, typename W1 = Idle>
void measure(int sms, int iters) {
  long long* cycles;
  float* sink;
  cudaMalloc(&cycles, sizeof(long long) * sms * 2);
  cudaMalloc(&sink, sizeof(float) * kThreads);
  cudaMemset(cycles, 0, sizeof(long long) * sms * 2);
  const auto kernel = rates_kernel<W0, W1>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  const auto [ms, err] = time_after_warm_up([&](bool warm_up) {
    kernel<<<sms, kThreads, kSmemBytes>>>(warm_up ? iters / 10 : iters, cycles, sink);
  });
  std::vector<long long> host(sms * 2);
  cudaMemcpy(host.data(), cycles, sizeof(long long) * sms * 2, cudaMemcpyDeviceToHost);
  double per_group[2] = {0.0, 0.0};
  for (int b = 0; b < sms; ++b) {
    for (int g = 0; g < 2; ++g) per_group[g] += double(host[b * 2 + g]) / sms;
  }
  const int chains[2] = {chain<W0>(), chain<W1>()};
  double cyc[2] = {0.0, 0.0}, mac_rate = 0.0;
  for (int g = 0; g < 2; ++g) {
    if (chains[g] == 0) continue;
    cyc[g] = per_group[g] / (double(iters) * chains[g]);
  }
  if (cyc[0] > 0) mac_rate += macs<W0>() / cyc[0];
  if (cyc[1] > 0) mac_rate += macs<W1>() / cyc[1];
  const double max_cycles = per_group[0] > per_group[1] ? per_group[0] : per_group[1];
  printf("| %-15s x%-3d | %-15s x%-3d | %7.1f | %7.1f | %7.0f | %6.3f | %s\n", W0::kName, chains[0], W1::kName,
         chains[1], cyc[0], cyc[1], mac_rate, max_cycles / (ms * 1e6), err == cudaSuccess ? "ok" : cudaGetErrorString(err));
  cudaFree(cycles);
  cudaFree(sink);
}

}  // namespace

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  printf("%s, %d SMs; cycles a wgmma (e4m3, fp32 accumulators), MACs a cycle an SM (dense e4m3 peak: 4096),\n"
         "and the SM clock in GHz (clock64 cycles over the kernel's event time)\n\n", prop.name, sms);
  printf("| warpgroup 0         | warpgroup 1         | cyc/wg0 | cyc/wg1 | MAC/cyc | GHz    |\n");
  printf("|---|---|---|---|---|---|\n");
  constexpr int kIters = 20000;
  // Q.K^T shapes, one warpgroup: the folded tile's SS m64n64, a swap-AB SS m64n32 / m64n16, and the same from registers.
  measure<Chain<64, false, 18>>(sms, kIters);
  measure<Chain<64, true, 18>>(sms, kIters);
  measure<Chain<32, false, 18>>(sms, kIters);
  measure<Chain<32, true, 18>>(sms, kIters);
  measure<Chain<16, false, 18>>(sms, kIters);
  measure<Chain<16, true, 18>>(sms, kIters);
  measure<LoadedKq<false>>(sms, kIters);
  measure<LoadedKq<true>>(sms, kIters);
  // P.V shapes.
  measure<Chain<256, true, 2>>(sms, kIters);
  measure<Chain<256, true, 4>>(sms, kIters);
  measure<Chain<256, false, 4>>(sms, kIters);
  // Two warpgroups at once: does the pipe split evenly, and what does a P.V beside a Q.K^T cost it?
  measure<Chain<64, false, 18>, Chain<64, false, 18>>(sms, kIters);
  measure<Chain<32, false, 18>, Chain<32, false, 18>>(sms, kIters);
  measure<Chain<32, true, 18>, Chain<32, true, 18>>(sms, kIters);
  measure<Chain<64, true, 18>, Chain<64, true, 18>>(sms, kIters);
  measure<Chain<64, false, 18>, Chain<256, true, 2>>(sms, kIters);
  measure<Chain<32, true, 18>, Chain<256, true, 2>>(sms, kIters);
  measure<LoadedKq<false>, LoadedKq<false>>(sms, kIters);
  measure<LoadedKq<false>, Chain<256, true, 2>>(sms, kIters);
  measure<LoadedKq<true>, LoadedKq<true>>(sms, kIters);
  measure<LoadedKq<true>, Chain<256, true, 2>>(sms, kIters);
  // The softmax's math beside a wgmma chain (cyc/wg0: cycles an iteration of 32 scores).
  measure<SoftmaxMath>(sms, kIters);
  measure<SoftmaxMath, Chain<64, false, 18>>(sms, kIters);
  measure<SoftmaxMath, Chain<64, true, 18>>(sms, kIters);
  measure<SoftmaxMath, Chain<256, true, 4>>(sms, kIters);
  measure<SoftmaxMath, Chain<256, false, 4>>(sms, kIters);
  measure<PvThenSoftmaxMath>(sms, kIters);
  measure<Chain<256, true, 2>, SoftmaxMath>(sms, kIters);
  measure<MufuMath>(sms, kIters);
  measure<MufuMath, Chain<64, false, 18>>(sms, kIters);
  measure<MufuMath, Chain<256, true, 4>>(sms, kIters);
  measure<FmaMath>(sms, kIters);
  measure<FmaMath, Chain<64, false, 18>>(sms, kIters);
  measure<FmaMath, Chain<256, true, 4>>(sms, kIters);
  return 0;
}

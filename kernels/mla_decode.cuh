// Split-KV MLA decode for Hopper (sm_90a).
//
// One persistent CTA per (64-row query tile, SM part); a part walks its slice of (request, KV block)
// pairs from the tile scheduler. Per KV block of 64 tokens:
//   warpgroup 0: S = Q K^T (wgmma 64x64x576) -> mask -> online softmax -> P
//                O[:, 0:256]   = O * rescale + P V[:, 0:256]   (P from registers)
//   warpgroup 1: O[:, 256:512] = O * rescale + P V[:, 256:512] (P through shared memory)
// The 64x512 fp32 O tile is split by columns because it is half the register file. KV pages arrive by
// TMA into two stages; a producer warpgroup refills each group of sub-tiles of a stage as soon as its
// readers release it, walking the part's blocks across request boundaries. V rows past seqlen are
// zeroed in shared memory so NaN in unused page slots never reaches O. A request split over several
// parts writes fp32 partials + LSE that the combine kernel merges.
#pragma once

#include "mla_launch.h"
#include "mla_params.h"
#include "mla_pipeline.cuh"
#include "mla_schedule.cuh"
#include "mla_wgmma.cuh"

namespace mla {

constexpr int kConsumerThreads = 256;                       // warpgroups 0 and 1: MMA and softmax
constexpr int kThreads = kConsumerThreads + kWarpgroupThreads;   // warpgroup 2: TMA producer

// A KV stage is loaded and released in three groups of 64-column sub-tiles, each as soon as its
// readers are done: V0 = columns 0-255 (read by Q K^T and warpgroup 0's P V), V1 = 256-511 (Q K^T and
// warpgroup 1's P V), RoPE = 512-575 (Q K^T only).
enum SubTileGroup : int { kGroupV0 = 0, kGroupV1 = 1, kGroupRope = 2 };
constexpr int group_first_sub_tile(int g) { return g == kGroupV0 ? 0 : g == kGroupV1 ? 4 : 8; }
constexpr int group_sub_tiles(int g) { return g == kGroupRope ? 1 : 4; }
constexpr int group_releases(int g) { return g == kGroupV1 ? 2 : 1; }   // V1 is freed by both warpgroups

struct SharedPlan {
  static constexpr int q = 0;
  static constexpr int k0 = q + kTileBytes;                  // two KV stages
  static constexpr int p = k0 + 2 * kTileBytes;              // 64 x 64 probabilities for warpgroup 1
  static constexpr int rescale = p + kSubTileBytes;          // [64] float: per-row O rescale of this block
  static constexpr int row_sum = rescale + 64 * 4;           // [64] float: final softmax denominators
  static constexpr int row_max = row_sum + 64 * 4;           // [64] float: final max (log2 domain)
  static constexpr int full = row_max + 64 * 4;              // [2 stages][3 groups] mbarrier: landed
  static constexpr int empty = full + 6 * 8;                 // [2 stages][3 groups] mbarrier: released
  static constexpr int bytes = empty + 6 * 8;
};
static_assert(SharedPlan::bytes <= 227 * 1024, "shared memory plan exceeds the sm_90 limit");

enum NamedBarrier : int {
  kProbsReady = 1, kProbsFree = 2, kRowStatsReady = 3, kWarpgroup0 = 4, kWarpgroup1 = 5, kConsumers = 6
};

__device__ __forceinline__ void issue_kv_group(const DecodeParams& p, int page, int group, uint32_t stage_addr,
                                               uint32_t full_bar) {
  mbar_arrive_expect_tx(full_bar, group_sub_tiles(group) * kSubTileBytes);
  // Out-of-range pages fall outside the tensor map and arrive as zeros.
  for (int t = group_first_sub_tile(group); t < group_first_sub_tile(group) + group_sub_tiles(group); ++t) {
    tma_load_3d(stage_addr + t * kSubTileBytes, &p.k_map, t * 64, 0, page, full_bar);
  }
}

// Copies rows [0, num_rows) of a 64 x 576 tile into the swizzled layout with all threads. Rows past
// num_rows are left as they are: wgmma rows are independent and those outputs are never stored.
template <typename RowPtr>
__device__ __forceinline__ void load_rows(uint32_t smem_tile, int num_rows, RowPtr row_ptr) {
  constexpr int kChunksPerRow = kHeadDim / 8;
  for (int i = threadIdx.x; i < num_rows * kChunksPerRow; i += kConsumerThreads) {
    const int row = i / kChunksPerRow, chunk = i % kChunksPerRow;
    cp_async_16(smem_tile + swizzled_offset(row, chunk * 8), row_ptr(row) + chunk * 16);
  }
}

// Zeroes V rows [valid_tokens, 64) of four 64-column sub-tiles, by one warpgroup.
__device__ __forceinline__ void zero_tail_rows(uint32_t first_sub_tile, int valid_tokens) {
  const int chunks = (kBlockSize - valid_tokens) * 8 * 4;
  for (int i = threadIdx.x % kWarpgroupThreads; i < chunks; i += kWarpgroupThreads) {
    const int row = valid_tokens + i / 32, sub = (i % 32) / 8, chunk = i % 8;
    store_zero_16(first_sub_tile + sub * kSubTileBytes + row * 128 + chunk * 16);
  }
}

// Multiplies this thread's two rows (r0 and r0 + 8) of an m64n256 accumulator.
__device__ __forceinline__ void scale_rows(float (&o)[128], float row0, float row1) {
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    o[j * 4 + 0] *= row0;
    o[j * 4 + 1] *= row0;
    o[j * 4 + 2] *= row1;
    o[j * 4 + 3] *= row1;
  }
}

template <typename Element>
__global__ void __launch_bounds__(kThreads, 1) mla_decode_kernel(const __grid_constant__ DecodeParams p) {
  using Ops = GmmaOps<Element>;
  extern __shared__ __align__(1024) char smem[];
  const uint32_t smem_base = smem_addr(smem);
  float* s_rescale = reinterpret_cast<float*>(smem + SharedPlan::rescale);
  float* s_row_sum = reinterpret_cast<float*>(smem + SharedPlan::row_sum);
  float* s_row_max = reinterpret_cast<float*>(smem + SharedPlan::row_max);
  auto stage_addr = [&](int stage) { return smem_base + SharedPlan::k0 + stage * kTileBytes; };
  auto full_bar = [&](int stage, int group) { return smem_base + SharedPlan::full + (stage * 3 + group) * 8; };
  auto empty_bar = [&](int stage, int group) { return smem_base + SharedPlan::empty + (stage * 3 + group) * 8; };

  const int m_block = blockIdx.x;
  const int warpgroup = threadIdx.x / kWarpgroupThreads;
  const int lane = threadIdx.x % 32;
  const int warp_in_wg = (threadIdx.x % kWarpgroupThreads) / 32;
  // Accumulator layout of wgmma m64nN: this thread owns rows r0 and r0 + 8 of the tile, and in every
  // 8-column group j the columns 8j + 2*(lane%4) + {0, 1}.
  const int r0 = warp_in_wg * 16 + lane / 4;
  const int col_in_group = 2 * (lane % 4);

  if (threadIdx.x == 0) {
    for (int s = 0; s < 2; ++s) {
      for (int g = 0; g < 3; ++g) {
        mbar_init(full_bar(s, g), 1);
        mbar_init(empty_bar(s, g), group_releases(g));
      }
    }
    mbar_fence_init();
  }
  __syncthreads();
  wait_for_previous_grid();   // the plan and seqlens may come from the kernel before this one
  const SchedEntry entry = SchedEntry::load(p.sched, blockIdx.y);

  if (warpgroup == 2) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
    if (threadIdx.x == 2 * kWarpgroupThreads) {
      tma_prefetch_descriptor(&p.k_map);
      BlockCursor cursor{entry.begin_req, entry.begin_block};
      cursor.settle(p, entry);
      for (int produced = 0; cursor.valid(entry); ++produced) {
        const int stage = produced & 1, phase = (produced >> 1) & 1;
        const int page = cursor.page(p);
        for (int g = 0; g < 3; ++g) {
          if (produced >= 2) mbar_wait(empty_bar(stage, g), phase ^ 1);
          issue_kv_group(p, page, g, stage_addr(stage), full_bar(stage, g));
        }
        ++cursor.block;
        cursor.settle(p, entry);
      }
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;");

  int consumed = 0;   // blocks this CTA has processed: selects stage and mbarrier phase
  for (int req = entry.begin_req; req <= entry.end_req; ++req) {
    const Piece piece = piece_of(p, entry, req);
    const int num_blocks = piece.num_blocks();
    const OutputSlot slot = output_slot(p, entry, req);
    const bool is_split = slot.is_split;
    const int split_row = slot.split_row;

    int row_key_limit[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) row_key_limit[h] = key_limit(p, piece.seqlen, m_block * kRowsPerTile + r0 + 8 * h);
    const int unmasked_keys = min_key_limit(p, piece.seqlen);

    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.f;
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.f, 0.f};

    if (num_blocks > 0) {
      const char* q_base = static_cast<const char*>(p.q);
      const int q_rows = min(p.rows - m_block * kRowsPerTile, kRowsPerTile);
      load_rows(smem_base + SharedPlan::q, q_rows, [&](int r) -> const char* {
        const int row = m_block * kRowsPerTile + r;
        const int s_idx = row / p.h_q, head = row % p.h_q;
        return q_base + (int64_t(req) * p.q_stride_b + int64_t(s_idx) * p.q_stride_s + int64_t(head) * p.q_stride_h) * 2;
      });
      cp_async_wait_all();
      fence_async_proxy();
      named_barrier_sync<kConsumerThreads>(kConsumers);
    }

    float s[32];   // scores of the block warpgroup 0 works on
    auto issue_qk = [&](uint32_t k_tile) {
#pragma unroll
      for (int k = 0; k < kHeadDim / 16; ++k) {
        const int offset = (k / 4) * kSubTileBytes + (k % 4) * 32;
        wgmma_ss<typename Ops::QK>(desc_k_major(smem_base + SharedPlan::q + offset), desc_k_major(k_tile + offset), s,
                                   k > 0, std::make_index_sequence<32>{});
      }
    };

    for (int i = 0; i < num_blocks; ++i, ++consumed) {
      const int block = piece.first + i;
      const int stage = consumed & 1;
      const int phase = (consumed >> 1) & 1;
      const uint32_t k_tile = stage_addr(stage);
      const int valid_tokens = min(piece.seqlen - block * kBlockSize, kBlockSize);

      if (warpgroup == 0) {
        // All waits come before the first wgmma: a wait between them would make ptxas serialize them.
        for (int g = 0; g < 3; ++g) mbar_wait(full_bar(stage, g), phase);
        cute::warpgroup_arrive();
        issue_qk(k_tile);
        cute::warpgroup_commit_batch();
        cute::warpgroup_wait<0>();
        fence_operands(s);
        if (threadIdx.x == 0) {
          mbar_arrive(empty_bar(stage, kGroupRope));
          mbar_arrive(empty_bar(stage, kGroupV1));
        }

        // Masked scores become -inf, which also discards NaN read from page slots past seqlen.
        const bool needs_mask = (block + 1) * kBlockSize > unmasked_keys;
        float rescale[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float block_max = -INFINITY;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              float& x = s[j * 4 + h * 2 + e];
              x *= p.scale_log2;
              if (needs_mask && block * kBlockSize + j * 8 + col_in_group + e >= row_key_limit[h]) x = -INFINITY;
              block_max = fmaxf(block_max, x);
            }
          }
          block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffff, block_max, 1));
          block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffff, block_max, 2));
          const float new_max = fmaxf(row_max[h], block_max);
          const float base = new_max == -INFINITY ? 0.f : new_max;
          rescale[h] = exp2f(row_max[h] - base);
          row_max[h] = new_max;
          float sum = 0.f;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              float& x = s[j * 4 + h * 2 + e];
              x = exp2f(x - base);
              sum += x;
            }
          }
          row_sum[h] = row_sum[h] * rescale[h] + sum;
        }

        // P as the A operand of m64n256k16: for k-step t, registers hold columns 16t..16t+15.
        uint32_t probs[4][4];
#pragma unroll
        for (int t = 0; t < 4; ++t) {
#pragma unroll
          for (int r = 0; r < 4; ++r) probs[t][r] = Ops::pack(s[t * 8 + r * 2], s[t * 8 + r * 2 + 1]);
        }
        if (i > 0) named_barrier_sync<kConsumerThreads>(kProbsFree);
        char* s_p = smem + SharedPlan::p;
#pragma unroll
        for (int t = 0; t < 4; ++t) {
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const int row = r0 + 8 * (r % 2);
            const int col = t * 16 + 8 * (r / 2) + col_in_group;
            *reinterpret_cast<uint32_t*>(s_p + swizzled_offset(row, col)) = probs[t][r];
          }
        }
        if (lane % 4 == 0) {
          s_rescale[r0] = rescale[0];
          s_rescale[r0 + 8] = rescale[1];
        }
        fence_async_proxy();
        named_barrier_arrive<kConsumerThreads>(kProbsReady);
        if (valid_tokens < kBlockSize) {
          zero_tail_rows(k_tile, valid_tokens);
          fence_async_proxy();
          named_barrier_sync<kWarpgroupThreads>(kWarpgroup0);
        }

        scale_rows(o, rescale[0], rescale[1]);
        fence_operands(o);
        cute::warpgroup_arrive();
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          wgmma_rs<typename Ops::PV_RS>(probs[t], desc_mn_major(k_tile + t * 16 * 128), o,
                                        std::make_index_sequence<128>{});
        }
        cute::warpgroup_commit_batch();
        cute::warpgroup_wait<0>();
        fence_operands(o);
        if (threadIdx.x == 0) mbar_arrive(empty_bar(stage, kGroupV0));
      } else {
        mbar_wait(full_bar(stage, kGroupV1), phase);
        if (valid_tokens < kBlockSize) {
          zero_tail_rows(k_tile + 4 * kSubTileBytes, valid_tokens);
          fence_async_proxy();
          named_barrier_sync<kWarpgroupThreads>(kWarpgroup1);
        }
        named_barrier_sync<kConsumerThreads>(kProbsReady);
        scale_rows(o, s_rescale[r0], s_rescale[r0 + 8]);
        fence_operands(o);
        cute::warpgroup_arrive();
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          wgmma_ss<typename Ops::PV_SS>(desc_k_major(smem_base + SharedPlan::p + t * 32),
                                        desc_mn_major(k_tile + 4 * kSubTileBytes + t * 16 * 128), o, true,
                                        std::make_index_sequence<128>{});
        }
        cute::warpgroup_commit_batch();
        cute::warpgroup_wait<0>();
        fence_operands(o);
        if (i + 1 < num_blocks) named_barrier_arrive<kConsumerThreads>(kProbsFree);
        if (threadIdx.x == kWarpgroupThreads) mbar_arrive(empty_bar(stage, kGroupV1));
      }
    }

    if (req == entry.end_req) allow_next_grid_launch();
    // Epilogue: warpgroup 0 owns the softmax statistics; share them, then each warpgroup writes its half.
    if (warpgroup == 0) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_sum[h] += __shfl_xor_sync(0xffffffff, row_sum[h], 1);
        row_sum[h] += __shfl_xor_sync(0xffffffff, row_sum[h], 2);
      }
      if (lane % 4 == 0) {
        s_row_sum[r0] = row_sum[0];
        s_row_sum[r0 + 8] = row_sum[1];
        s_row_max[r0] = row_max[0];
        s_row_max[r0 + 8] = row_max[1];
      }
      named_barrier_arrive<kConsumerThreads>(kRowStatsReady);
    } else {
      named_barrier_sync<kConsumerThreads>(kRowStatsReady);
      row_sum[0] = s_row_sum[r0];
      row_sum[1] = s_row_sum[r0 + 8];
      row_max[0] = s_row_max[r0];
      row_max[1] = s_row_max[r0 + 8];
    }

    const int col_base = warpgroup * 256 + col_in_group;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = m_block * kRowsPerTile + r0 + 8 * h;
      if (row >= p.rows) continue;
      const bool empty = row_sum[h] == 0.f;
      const float inv_sum = empty ? 0.f : 1.f / row_sum[h];
      const float lse_log2 = row_max[h] + __log2f(row_sum[h]);
      if (is_split) {
        float* dst = p.out_accum + (int64_t(split_row) * p.rows + row) * kHeadDimV + col_base;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          *reinterpret_cast<float2*>(dst + j * 8) = make_float2(o[j * 4 + h * 2] * inv_sum, o[j * 4 + h * 2 + 1] * inv_sum);
        }
        if (warpgroup == 0 && lane % 4 == 0) p.lse_accum[int64_t(split_row) * p.rows + row] = empty ? -INFINITY : lse_log2;
      } else {
        Element* dst = static_cast<Element*>(p.out) + (int64_t(req) * p.rows + row) * kHeadDimV + col_base;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          *reinterpret_cast<uint32_t*>(dst + j * 8) = Ops::pack(o[j * 4 + h * 2] * inv_sum, o[j * 4 + h * 2 + 1] * inv_sum);
        }
        if (warpgroup == 0 && lane % 4 == 0) {
          const int s_idx = row / p.h_q, head = row % p.h_q;
          p.lse[(int64_t(req) * p.h_q + head) * p.s_q + s_idx] = empty ? INFINITY : lse_log2 * kLn2;
        }
      }
    }
    named_barrier_sync<kConsumerThreads>(kConsumers);   // the next request reuses the Q tile and row statistics
  }
}

template <typename Element>
cudaError_t launch_decode_wide(const DecodeParams& p, cudaStream_t stream) {
  const dim3 grid((p.rows + kRowsPerTile - 1) / kRowsPerTile, p.num_parts);
  return launch_with_pdl(mla_decode_kernel<Element>, grid, dim3(kThreads), SharedPlan::bytes, stream, p);
}

}  // namespace mla

// Split-KV MLA decode for Hopper (sm_90a).
//
// One persistent CTA per (64-row query tile, SM part). A part walks its slice of (request, KV block)
// pairs from the tile scheduler. Per KV block of 64 tokens:
//   warpgroup 0: S = Q K^T (wgmma, 64x64x576) -> mask -> online softmax -> P (bf16/fp16)
//                O[:, 0:256]   = O * rescale + P V[:, 0:256]   (P from registers)
//   warpgroup 1: O[:, 256:512] = O * rescale + P V[:, 256:512] (P through shared memory)
// The 64x512 fp32 O tile is split by columns because it is half the register file.
// KV pages stream in with cp.async, two stages; tokens past seqlen are zero-filled so NaN in unused
// pages never reaches O. A request split over several parts writes fp32 partials + LSE that the
// combine kernel merges.
#pragma once

#include "mla_params.h"
#include "mla_wgmma.cuh"

namespace mla {

constexpr int kThreads = 256;
constexpr int kTileBytes = kHeadDim / 64 * kSubTileBytes;   // 64 x 576 16-bit elements

struct SharedPlan {
  static constexpr int q = 0;
  static constexpr int k0 = q + kTileBytes;
  static constexpr int k1 = k0 + kTileBytes;
  static constexpr int p = k1 + kTileBytes;                  // 64 x 64 probabilities
  static constexpr int rescale = p + kSubTileBytes;          // [64] float: per-row O rescale of this block
  static constexpr int row_sum = rescale + 64 * 4;           // [64] float: final softmax denominators
  static constexpr int row_max = row_sum + 64 * 4;           // [64] float: final max (log2 domain)
  static constexpr int bytes = row_max + 64 * 4;
};
static_assert(SharedPlan::bytes <= 227 * 1024, "shared memory plan exceeds the sm_90 limit");

enum NamedBarrier : int { kProbsReady = 1, kRowStatsReady = 2 };

__device__ __forceinline__ void named_barrier_sync(int id) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "n"(kThreads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "n"(kThreads) : "memory");
}
__device__ __forceinline__ void fence_async_proxy() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// 16-byte async copy; src_bytes = 0 writes zeros without reading src.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_one() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }

// Copies a 64-row x 576 tile into the swizzled layout. Row r comes from row_ptr(r); rows it
// reports as nullptr are zero-filled.
template <typename RowPtr>
__device__ __forceinline__ void load_tile(uint32_t smem_tile, RowPtr row_ptr) {
  constexpr int kChunksPerRow = kHeadDim / 8;
  static_assert(64 * kChunksPerRow % kThreads == 0);
#pragma unroll 6
  for (int i = threadIdx.x; i < 64 * kChunksPerRow; i += kThreads) {
    const int row = i / kChunksPerRow, chunk = i % kChunksPerRow;
    const char* src = row_ptr(row);
    cp_async_16(smem_tile + swizzled_offset(row, chunk * 8), src ? src + chunk * 16 : nullptr, src != nullptr);
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

  const int m_block = blockIdx.x;
  const int part = blockIdx.y;
  const int warpgroup = threadIdx.x / 128;
  const int lane = threadIdx.x % 32;
  const int warp_in_wg = (threadIdx.x % 128) / 32;
  // Accumulator layout of wgmma m64nN: this thread owns rows r0 and r0 + 8 of the tile, and in every
  // 8-column group j the columns 8j + 2*(lane%4) + {0, 1}.
  const int r0 = warp_in_wg * 16 + lane / 4;
  const int col_in_group = 2 * (lane % 4);

  const int* entry = p.sched + part * kSchedFields;
  const int begin_req = entry[kBeginReq], end_req = entry[kEndReq];
  const int begin_block = entry[kBeginBlock], end_block_last = entry[kEndBlock];
  const int begin_split = entry[kBeginSplit];

  for (int req = begin_req; req <= end_req; ++req) {
    const int seqlen = max(p.seqlens[req], 0);
    const int req_blocks = min((seqlen + kBlockSize - 1) / kBlockSize, p.max_blocks);
    const int first_block = req == begin_req ? begin_block : 0;
    const int last_block = min(req == end_req ? end_block_last : req_blocks, req_blocks);
    const int num_blocks = max(last_block - first_block, 0);
    const int split_base = p.num_splits[req];
    const bool is_split = p.num_splits[req + 1] - split_base > 1;
    const int split_row = split_base + (req == begin_req ? begin_split : 0);

    // Keys visible to a row: [0, seqlen - (s_q - 1 - s_idx)) when causal (bottom-right aligned).
    int key_limit[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = m_block * kRowsPerTile + r0 + 8 * h;
      key_limit[h] = p.causal ? seqlen - (p.s_q - 1 - min(row / p.h_q, p.s_q - 1)) : seqlen;
    }
    const int min_key_limit = p.causal ? seqlen - (p.s_q - 1) : seqlen;

    const int* table_row = p.block_table + int64_t(req) * p.block_table_stride;
    const char* k_base = static_cast<const char*>(p.k_cache);
    auto load_kv_block = [&](int block, int stage) {
      const int page = table_row[block];
      const bool page_ok = page >= 0 && page < p.num_blocks;
      const int valid_tokens = min(seqlen - block * kBlockSize, kBlockSize);
      load_tile(smem_base + (stage ? SharedPlan::k1 : SharedPlan::k0), [&](int token) -> const char* {
        if (!page_ok || token >= valid_tokens) return nullptr;
        return k_base + (int64_t(page) * p.k_stride_block + int64_t(token) * p.k_stride_token) * 2;
      });
    };

    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.f;
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.f, 0.f};

    if (num_blocks > 0) {
      const char* q_base = static_cast<const char*>(p.q);
      load_tile(smem_base + SharedPlan::q, [&](int r) -> const char* {
        const int row = m_block * kRowsPerTile + r;
        if (row >= p.rows) return nullptr;
        const int s_idx = row / p.h_q, head = row % p.h_q;
        return q_base + (int64_t(req) * p.q_stride_b + int64_t(s_idx) * p.q_stride_s + int64_t(head) * p.q_stride_h) * 2;
      });
      load_kv_block(first_block, 0);
      cp_async_commit();
      if (num_blocks > 1) load_kv_block(first_block + 1, 1);
      cp_async_commit();
    }

    for (int i = 0; i < num_blocks; ++i) {
      const int block = first_block + i;
      const int stage = i & 1;
      const uint32_t k_tile = smem_base + (stage ? SharedPlan::k1 : SharedPlan::k0);
      cp_async_wait_one();
      fence_async_proxy();
      __syncthreads();

      if (warpgroup == 0) {
        float s[32];
        cute::warpgroup_arrive();
#pragma unroll
        for (int k = 0; k < kHeadDim / 16; ++k) {
          const int offset = (k / 4) * kSubTileBytes + (k % 4) * 32;
          wgmma_ss<typename Ops::QK>(desc_k_major(smem_base + SharedPlan::q + offset), desc_k_major(k_tile + offset), s,
                                     k > 0, std::make_index_sequence<32>{});
        }
        cute::warpgroup_commit_batch();
        cute::warpgroup_wait<0>();
        fence_operands(s);

        const bool needs_mask = (block + 1) * kBlockSize > min_key_limit;
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
              if (needs_mask && block * kBlockSize + j * 8 + col_in_group + e >= key_limit[h]) x = -INFINITY;
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
        named_barrier_arrive(kProbsReady);

#pragma unroll
        for (int j = 0; j < 32; ++j) {
          o[j * 4 + 0] *= rescale[0];
          o[j * 4 + 1] *= rescale[0];
          o[j * 4 + 2] *= rescale[1];
          o[j * 4 + 3] *= rescale[1];
        }
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
      } else {
        named_barrier_sync(kProbsReady);
        const float rescale0 = s_rescale[r0], rescale1 = s_rescale[r0 + 8];
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          o[j * 4 + 0] *= rescale0;
          o[j * 4 + 1] *= rescale0;
          o[j * 4 + 2] *= rescale1;
          o[j * 4 + 3] *= rescale1;
        }
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
      }
      __syncthreads();   // both warpgroups are done with this stage and with the P tile
      if (i + 2 < num_blocks) load_kv_block(block + 2, stage);
      cp_async_commit();
    }

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
      named_barrier_arrive(kRowStatsReady);
    } else {
      named_barrier_sync(kRowStatsReady);
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
          p.lse[(int64_t(req) * p.h_q + head) * p.s_q + s_idx] = empty ? INFINITY : lse_log2 * 0.69314718055994530942f;
        }
      }
    }
    __syncthreads();   // the next request reuses Q, K stages and row statistics
  }
}

template <typename Element>
void launch_decode(const DecodeParams& p, cudaStream_t stream) {
  auto kernel = mla_decode_kernel<Element>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SharedPlan::bytes);
  const dim3 grid((p.rows + kRowsPerTile - 1) / kRowsPerTile, p.num_parts);
  kernel<<<grid, kThreads, SharedPlan::bytes, stream>>>(p);
}

}  // namespace mla

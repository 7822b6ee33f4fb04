// V^T as P.V's A operand straight from a raw fp8 stage through registers (the register-V layout), for the consumer
// warpgroups that take V without a Vt stage: each thread loads its share of a block's V (16 loads of kColumns bytes)
// and transposes it with PRMT into wgmma RS fragments, and P.V accumulates straight into O^T.
//
// A warpgroup covers V columns first .. first + 32 kColumns - 1 (kColumns 16: all 512; 8: a half). Thread (warp w,
// lane l) holds columns first + kColumns o .., o = 8 w + l / 4, of the 16 tokens of its A fragments: k position
// 32 t + 16 h + 4 q + e (q = l % 4, e the byte) holds token 8 (4 t + 2 h + e / 2) + 2 q + e % 2 (pv_position,
// TokenOrder::kRegisterV, the order P^T is stored in), so the loads of a quarter warp (16-byte) or half warp (8-byte)
// hit distinct banks and each 4 x 4 byte transpose of four tokens' words gives one A register. O^T's rows follow: row
// l / 4 + 8 r of tile i is V column first + kColumns o + 2 i + r, so each thread ends with kColumns consecutive output
// columns of its query rows (store_output_columns). P's high and low parts are two k halves of one product on the
// same A registers (m64n16k32, 4 a tile), so O^T sums across blocks in fp8 wgmma's accumulator (the fp32 reference's
// tolerances hold, PERF_NOTES.md v53w).
#pragma once

#include "mla_fp8_stages.cuh"

namespace mla {
namespace narrow_fp8 {

template <int kColumns>
struct RegisterV {
  static_assert(kColumns == 16 || kColumns == 8, "a thread holds 16 or 8 V columns");
  static constexpr int kTiles = kColumns / 2;                  // O^T tiles of 64 columns
  static constexpr int kWords = kColumns / 4;                  // 32-bit words of a load
  static constexpr int kLoads = 16;                            // loads a thread a block: one a token
  using Words = uint32_t[kLoads][kWords];                      // load j = 8 t + 4 h + e
  using Fragments = uint32_t[kTiles][kPvKSteps][4];            // [tile][t][A register]
  using Output = float[kTiles][kCols / 2];

  // The token of load j of a thread in lane quad position q.
  __device__ static constexpr int token(int load, int q) { return 8 * (load / 2) + 2 * q + load % 2; }

  __device__ static int first_column_of_thread(const Fragment& f, int first) {
    return first + kColumns * (8 * f.warp + f.lane / 4);
  }

  // Issues the 16 loads of this thread's V words from the raw stage at shared address raw; tokens from valid_tokens
  // on read as zeros (0 * NaN would poison P.V: unused page tails may hold anything).
  __device__ static void load(uint32_t raw, const Fragment& f, int first, int valid_tokens, Words& words) {
    // A warp's 8 kColumns columns lie in one raw sub-tile (first is a multiple of 128).
    constexpr int kWarpsPerSubTile = kRawSubTileColumns / (8 * kColumns);
    const int q = f.lane % 4, sub_tile = first / kRawSubTileColumns + f.warp / kWarpsPerSubTile;
    const int byte = (f.warp % kWarpsPerSubTile) * 8 * kColumns + kColumns * (f.lane / 4);
    const int chunk = byte / 16, byte_in_chunk = byte % 16;
#pragma unroll
    for (int j = 0; j < kLoads; ++j) {
      const int t = token(j, q);
      const uint32_t at = RawLayout::row(raw, sub_tile, t) + ((chunk ^ (t % 8)) * 16) + byte_in_chunk;
      if constexpr (kWords == 4) {
        asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(words[j][0]), "=r"(words[j][1]), "=r"(words[j][2]), "=r"(words[j][3]) : "r"(at));
      } else {
        asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(words[j][0]), "=r"(words[j][1]) : "r"(at));
      }
    }
    // Only a request's last block has tokens to clear: a branch, not a select after every load (which made each
    // word wait for its load before Q.K^T's wait; PERF_NOTES.md, v53a).
    if (valid_tokens >= kBlockSize) return;
#pragma unroll
    for (int j = 0; j < kLoads; ++j) {
      if (token(j, q) >= valid_tokens) {
#pragma unroll
        for (int w = 0; w < kWords; ++w) words[j][w] = 0;
      }
    }
  }

  __device__ static void transpose(const Words& words, Fragments& a) {
#pragma unroll
    for (int t = 0; t < kPvKSteps; ++t) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int word = 0; word < kWords; ++word) {   // columns 4 word .. 4 word + 3 of the thread's
          const int first = 8 * t + 4 * h;            // the loads of tokens e = 0..3 of this k-step half
          uint32_t out[4];
          transpose_4x4(words[first][word], words[first + 1][word], words[first + 2][word], words[first + 3][word],
                        0x5410, 0x7632, out);
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const int column = 4 * word + k;
            a[column / 2][t][2 * h + column % 2] = out[k];
          }
        }
      }
    }
  }

  // O^T += V8^T P8^T, P's high parts at shared address high and the low ones at low. Issued, not waited for: O^T
  // and the fragments are ready after the next warpgroup_wait.
  __device__ static void issue_products(Fragments& v, uint32_t high, uint32_t low, Output& o) {
#pragma unroll
    for (int d = 0; d < kTiles; ++d) {
      fence_operands(o[d]);
#pragma unroll
      for (int t = 0; t < kPvKSteps; ++t) fence_operands(v[d][t]);   // A ready before the wgmma fence
    }
    cute::warpgroup_arrive();
#pragma unroll
    for (int d = 0; d < kTiles; ++d) {
#pragma unroll
      for (int t = 0; t < kPvKSteps; ++t) {
        wgmma_rs<PVFromRegisters>(v[d][t], desc_k_major_sw64(high + t * 32), o[d],
                                  std::make_index_sequence<kCols / 2>{});
        wgmma_rs<PVFromRegisters>(v[d][t], desc_k_major_sw64(low + t * 32), o[d],
                                  std::make_index_sequence<kCols / 2>{});
      }
    }
    cute::warpgroup_commit_batch();
  }

  __device__ static void wait_products(Output& o) {
    cute::warpgroup_wait<0>();
#pragma unroll
    for (int d = 0; d < kTiles; ++d) fence_operands(o[d]);
  }

  // O^T times each column's scale, written to out (or the split's partial): each thread's kColumns consecutive
  // output columns of its 4 query rows.
  template <typename Element>
  __device__ static void store_output_columns(const DecodeParams& p, const Fragment& f, int req, OutputSlot slot,
                                              int first, const Output& o, const float (&scale)[kCols / 4]) {
    Element* const rows_out = output_rows<Element>(p, req, slot);
    const int first_dim = first_column_of_thread(f, first);
#pragma unroll
    for (int c = 0; c < kCols / 4; ++c) {
      const int row = f.query_row(f.column(c));
      if (row >= p.rows) continue;
      float x[kColumns];   // output columns first_dim ..
#pragma unroll
      for (int k = 0; k < kColumns; ++k) x[k] = o[k / 2][(c / 2) * 4 + (k % 2) * 2 + c % 2] * scale[c];
      uint4* out = reinterpret_cast<uint4*>(rows_out + row * kHeadDimV + first_dim);
#pragma unroll
      for (int k = 0; k < kColumns / 8; ++k) {
        const float* y = x + 8 * k;
        out[k] = make_uint4(GmmaOps<Element>::pack(y[0], y[1]), GmmaOps<Element>::pack(y[2], y[3]),
                            GmmaOps<Element>::pack(y[4], y[5]), GmmaOps<Element>::pack(y[6], y[7]));
      }
    }
  }
};

// Block `block` of the piece, the warpgroup's consumed-th: S^T from its raw stage and the block's V fragments of the
// columns from first on, the stage released after both (raw_empty counts this warpgroup's warps); S^T through the
// voted softmax_block (its caller rescales O^T unconditionally: a branch there cost ~5 µs, PERF_NOTES.md, eighteenth
// session). The vote pays on long pieces and costs on short ones (PERF_NOTES.md, twenty-third session).
template <typename RV, typename Stages, typename Rows>
__device__ __forceinline__ void score_block_and_load_v(const DecodeParams& p, const Fragment& f, const Piece& piece,
                                                       int block, int consumed, Stages& smem, Rows& rows,
                                                       RequestRows& r, int first, float (&s)[kCols / 2],
                                                       float (&rescale)[kCols / 4], typename RV::Fragments& v) {
  const int stage = consumed % Stages::kRawStages, parity = (consumed / Stages::kRawStages) & 1;
  mbar_wait(smem_addr(&smem.raw_full[stage]), parity);
  fence_async_proxy();   // cp.async (generic proxy) wrote the stage; wgmma reads it (async proxy)
  const uint32_t raw = smem_addr(smem.raw[stage]);
  issue_scores<true>(raw, rows, s);   // 240-register consumers: room for the descriptor bases
  typename RV::Words words;
  RV::load(raw, f, first, min(piece.seqlen - block * kBlockSize, kBlockSize), words);
  cute::warpgroup_wait<0>();
  fence_operands(s);
  __syncwarp();
  if (f.lane == 0) mbar_arrive(smem_addr(&smem.raw_empty[stage]));
  RV::transpose(words, v);
  softmax_block<true>(p, f, piece, block, consumed, rows, r, s, rescale);
}

}  // namespace narrow_fp8
}  // namespace mla

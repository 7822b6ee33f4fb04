// The tile scheduler's plan as the decode kernels read it: a typed view of one int32 plan row, the
// blocks of a request that a part covers, and a cursor over the part's (request, block) pairs.
#pragma once

#include "mla_params.h"

namespace mla {

// One row of tile_scheduler_metadata (kSchedFields int32, 32 bytes; see SchedField in mla_params.h).
struct SchedEntry {
  int begin_req;     // first request of the part
  int begin_block;   // first KV block of begin_req
  int end_req;       // last request of the part (inclusive)
  int end_block;     // end of end_req's range (exclusive)
  int begin_split;   // index of this piece among begin_req's splits

  __device__ static SchedEntry load(const int* sched, int part) {
    const int4 head = *reinterpret_cast<const int4*>(sched + part * kSchedFields);
    const int begin_split = sched[part * kSchedFields + kBeginSplit];
    return {head.x, head.y, head.z, head.w, begin_split};
  }

  // Warms the part's row in L2 before griddepcontrol.wait, so that load after it, the first of the two dependent
  // loads before the part's first copy, finds the line in L2 or already on its way. A prefetch returns no data, so it
  // reads nothing the previous grid may still be writing: L2 is where global writes become visible.
  __device__ __forceinline__ static void prefetch(const int* sched, int part) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(sched + part * kSchedFields));
  }
};
static_assert(kBeginReq == 0 && kBeginBlock == 1 && kEndReq == 2 && kEndBlock == 3, "SchedEntry::load order");

// The blocks [first, last) of request req that a part covers, and the request's length.
struct Piece {
  int seqlen, first, last;
  __device__ int num_blocks() const { return last - first; }
};

__device__ __forceinline__ Piece piece_of(const DecodeParams& p, const SchedEntry& e, int req) {
  const int seqlen = max(p.seqlens[req], 0);
  const int blocks = min((seqlen + kBlockSize - 1) / kBlockSize, p.max_blocks);
  const int first = req == e.begin_req ? e.begin_block : 0;
  const int last = min(req == e.end_req ? e.end_block : blocks, blocks);
  return {seqlen, first, max(last, first)};
}

// Puts a cursor (BlockCursor, PieceCursor) at the part's first valid pair; returns its page (0 for a part with none).
// The page is read from the table alongside settle's read of the first request's length, not after it (a guess at
// the entry's own first block, which settle leaves in place unless that request has no blocks there): one dependent
// global load fewer before the part's first copy.
template <typename Cursor>
__device__ __forceinline__ int begin_walk(Cursor& c, const DecodeParams& p, const SchedEntry& e) {
  c.req = e.begin_req, c.block = e.begin_block;
  const int guess = e.begin_req < p.b ? p.block_table[int64_t(e.begin_req) * p.block_table_stride +
                                                      min(e.begin_block, p.max_blocks - 1)]
                                      : 0;   // an empty part's begin_req is b
  c.settle(p, e);
  if (!c.valid(e)) return 0;
  return c.req == e.begin_req && c.block == e.begin_block ? guess : c.page(p);
}

// Walks the part's (request, block) pairs in the order the consumers process them.
struct BlockCursor {
  int req, block;
  __device__ int begin(const DecodeParams& p, const SchedEntry& e) { return begin_walk(*this, p, e); }
  // To the part's next valid pair; returns its page (0 past the part's last). Producers call it right after issuing
  // a block's copies, so the block table is read while they are in flight.
  __device__ int next(const DecodeParams& p, const SchedEntry& e) {
    ++block;
    settle(p, e);
    return valid(e) ? page(p) : 0;
  }
  __device__ void settle(const DecodeParams& p, const SchedEntry& e) {
    while (req <= e.end_req && block >= piece_of(p, e, req).last) {
      ++req;
      block = 0;
    }
  }
  __device__ bool valid(const SchedEntry& e) const { return req <= e.end_req; }
  __device__ int page(const DecodeParams& p) const {
    return p.block_table[int64_t(req) * p.block_table_stride + block];
  }
};

// BlockCursor that keeps its request's piece (v114): the next block of the same request costs one global load, its
// page, where BlockCursor::next reads the request's length first (two dependent loads a block), and the page stays
// a per-thread value (v114b). The folded fp8 kernel's producer walks with it: there the producer paces the block,
// while the unfolded kernel, paced by its consumers, got 3.5-4% slower with it (PERF_NOTES.md, s39h).
struct PieceCursor {
  int req, block;
  Piece piece;   // of req, once valid
  __device__ int begin(const DecodeParams& p, const SchedEntry& e) { return begin_walk(*this, p, e); }
  __device__ int next(const DecodeParams& p, const SchedEntry& e) {
    if (++block >= piece.last) {
      ++req;
      block = 0;
      settle(p, e);
    }
    return valid(e) ? page(p) : 0;
  }
  // From req on, to the first request whose piece has a block at or after `block`.
  __device__ void settle(const DecodeParams& p, const SchedEntry& e) {
    for (; req <= e.end_req; ++req, block = 0) {
      piece = piece_of(p, e, req);
      if (block < piece.last) return;
    }
  }
  __device__ bool valid(const SchedEntry& e) const { return req <= e.end_req; }
  // The page as a per-thread value: its index plus threadIdx.x / (max_blocks * 1024 + 1024), always 0, which ptxas
  // cannot prove, so the page stays in a vector register until the next block's copies use it. Read as a uniform
  // value it was moved into a uniform register right after its load, stalling the producer for the whole read
  // (v114b).
  __device__ int page(const DecodeParams& p) const {
    const int zero = threadIdx.x / (uint32_t(p.max_blocks) * 1024u + 1024u);
    return p.block_table[int64_t(req) * p.block_table_stride + block + zero];
  }
  __device__ int valid_tokens() const { return min(piece.seqlen - block * kBlockSize, kBlockSize); }
};

// One producer thread's share of a 64-token page copied by 16-byte cp.async, for a cache of kBytes-byte values: a
// 64-column sub-tile's token row is kChunks 16-byte chunks (8 in 16 bits, 4 in fp8); the lane copies chunk `chunk`
// of tokens `token` + (128 / kChunks) k, and kChunks consecutive threads read one token's row contiguously.
template <int kBytes = 2>
struct PageCopyLane {
  static constexpr int kChunks = 64 * kBytes / 16;
  static constexpr int kTokenStride = 128 / kChunks;   // tokens between this lane's rows
  int chunk, token;
  int64_t token_bytes;
  const char* first;   // this lane's first chunk in page 0
  __device__ PageCopyLane(const DecodeParams& p, int tid)
      : chunk(tid % kChunks), token(tid / kChunks), token_bytes(p.k_stride_token * kBytes),
        first(static_cast<const char*>(p.k_cache) + (tid / kChunks) * token_bytes + (tid % kChunks) * 16) {}
  // This lane's first chunk in `page` and the bytes to read from each of its chunks. A page outside
  // [0, num_blocks) arrives as zeros (src-size 0 reads nothing), as TMA's out-of-bounds fill does; its address
  // falls back to page 0, so no far-off pointer is formed.
  __device__ const char* source(const DecodeParams& p, int page, uint32_t& src_bytes) const {
    const bool in_cache = static_cast<unsigned>(page) < static_cast<unsigned>(p.num_blocks);
    src_bytes = in_cache ? 16 : 0;
    return first + (in_cache ? int64_t(page) * p.k_stride_block * kBytes : 0);
  }
};

// Where a request's piece of output goes: straight to out/lse, or to its split's partial rows (out's dtype, LSE
// fp32), which the combine merges.
struct OutputSlot {
  bool is_split;
  int split_row;   // row block of out_accum / lse_accum when is_split
};

// Row 0 of the piece's output rows: request req's in out, or its split's in out_accum (same layout and dtype).
template <typename Element>
__device__ __forceinline__ Element* output_rows(const DecodeParams& p, int req, OutputSlot slot) {
  return static_cast<Element*>(slot.is_split ? p.out_accum : p.out) +
         int64_t(slot.is_split ? slot.split_row : req) * p.rows * kHeadDimV;
}

__device__ __forceinline__ OutputSlot output_slot(const DecodeParams& p, const SchedEntry& e, int req) {
  const int split_base = p.num_splits[req];
  const bool is_split = p.num_splits[req + 1] - split_base > 1;
  return {is_split, split_base + (req == e.begin_req ? e.begin_split : 0)};
}

// Keys visible to query row `row` (= s_idx * h_q + head): [0, seqlen - (s_q - 1 - s_idx)) when causal,
// i.e. bottom-right aligned; every key otherwise. Padding rows past p.rows get the last query's limit.
__device__ __forceinline__ int key_limit(const DecodeParams& p, int seqlen, int row) {
  return p.causal ? seqlen - (p.s_q - 1 - min(row / p.h_q, p.s_q - 1)) : seqlen;
}
// The smallest key_limit of any row: blocks that end at or before it need no mask.
__device__ __forceinline__ int min_key_limit(const DecodeParams& p, int seqlen) {
  return p.causal ? seqlen - (p.s_q - 1) : seqlen;
}

constexpr float kLn2 = 0.69314718055994530942f;

// Writes query row `row` of request req's log-sum-exp to p.lse ([b, h_q, s_q]; rows are s_idx * h_q + head) in
// the natural log, +inf for a row that saw no key, from its log2 value.
__device__ __forceinline__ void store_final_lse(const DecodeParams& p, int req, int row, bool empty, float lse_log2) {
  const int s_idx = row / p.h_q, head = row % p.h_q;
  p.lse[(int64_t(req) * p.h_q + head) * p.s_q + s_idx] = empty ? INFINITY : lse_log2 * kLn2;
}

}  // namespace mla

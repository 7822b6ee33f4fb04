// Tile scheduler: splits the KV blocks of a batch over num_parts persistent CTAs (one per SM part).
// Runs on the GPU with no host sync; its output shapes depend only on (b, num_parts), so a captured
// CUDA graph can replay it with new seqlens. mla_backend/tile_scheduler.py mirrors it bit for bit and
// explains the cost line it cuts and the equal chunks that replace it when they fit. Every step is parallel (two
// block scans, one warp's binary search for the chunk, then one binary search per part), so the plan costs a few
// microseconds at any batch size.
#include <climits>

#include <cub/block/block_scan.cuh>

#include "mla_launch.h"
#include "mla_params.h"
#include "mla_pipeline.cuh"

namespace mla {

constexpr int kMetadataThreads = 512;
using MetadataScan = cub::BlockScan<int, kMetadataThreads>;

__device__ __forceinline__ int blocks_of(const MetadataParams& p, int req) {
  return (max(p.seqlens[req], 0) + kBlockSize - 1) / kBlockSize;
}

// Exclusive prefix sum of value(i) over i in [0, b) into out[0..b]; each thread sums a contiguous chunk.
template <typename Value>
__device__ void block_exclusive_scan(int b, Value value, int* out, MetadataScan::TempStorage& temp) {
  const int chunk = (b + kMetadataThreads - 1) / kMetadataThreads;
  const int begin = min(int(threadIdx.x) * chunk, b), end = min(begin + chunk, b);
  int local = 0;
  for (int i = begin; i < end; ++i) local += value(i);
  int offset, total;
  MetadataScan(temp).ExclusiveSum(local, offset, total);
  for (int i = begin; i < end; ++i) {
    out[i] = offset;
    offset += value(i);
  }
  if (threadIdx.x == 0) out[b] = total;
  __syncthreads();
}

// The cost line (see mla_backend/tile_scheduler.py): request i starts at unit blocks_before[i] + i * overhead.
struct CostLine {
  const int* blocks_before;   // [b + 1] prefix sums of max(blocks, 1), in shared memory
  int overhead;
  __device__ int operator[](int i) const { return blocks_before[i] + i * overhead; }
};

// The largest i in [0, b] with line[i] <= x (line is increasing and line[0] = 0 <= x).
__device__ __forceinline__ int last_at_or_before(const CostLine& line, int b, int x) {
  int lo = 0, hi = b;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (line[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ void write_entry(const MetadataParams& p, int part, int begin_req, int begin_block,
                                            int end_req, int end_block, int begin_split) {
  int4* entry = reinterpret_cast<int4*>(p.sched + part * kSchedFields);
  entry[0] = make_int4(begin_req, begin_block, end_req, end_block);
  entry[1] = make_int4(begin_split, 0, 0, 0);
}
static_assert(kSchedFields == 8 && kBeginSplit == 4, "write_entry's layout");

// Whole-request mode (uniform costs): part k takes, unsplit, the requests starting in [k * unit, (k+1) * unit).
__device__ void whole_request_plan(const MetadataParams& p, const CostLine& line, int unit) {
  const int total = line[p.b];
  for (int i = threadIdx.x; i <= p.b; i += kMetadataThreads) p.num_splits[i] = i;
  for (int part = threadIdx.x; part < p.num_parts; part += kMetadataThreads) {
    const int lo = part * unit, hi = min(lo + unit, total);
    // The first request starting at or after lo, and the last one starting before hi.
    const int begin_req = lo == 0 ? 0 : last_at_or_before(line, p.b, lo - 1) + 1;
    const int end_req = lo >= total ? -1 : min(last_at_or_before(line, p.b, hi - 1), p.b - 1);
    if (lo >= total || begin_req > end_req) {
      write_entry(p, part, p.b, 0, p.b - 1, 0, 0);
    } else {
      write_entry(p, part, begin_req, 0, end_req, blocks_of(p, end_req), 0);
    }
  }
}

// Equal-chunk mode's chunk length (tile_scheduler.shortest_chunk up to the unit), or 0 where the mode does not
// apply: the shortest length from ceil(total / num_parts) up whose chunks fit in num_parts parts, if it is at most
// `unit`. One warp runs it (b <= num_parts, so a few requests a lane): a binary search, the piece count falling as
// chunks grow.
__device__ int equal_chunk(const MetadataParams& p, const int* blocks_before, int max_blocks, int unit) {
  if (p.b > p.num_parts) return 0;
  const int lane = threadIdx.x % 32;
  auto pieces = [&](int chunk) {
    int n = 0;
    for (int i = lane; i < p.b; i += 32) n += (blocks_before[i + 1] - blocks_before[i] + chunk - 1) / chunk;
    return __reduce_add_sync(0xffffffffu, n);
  };
  int lo = (blocks_before[p.b] + p.num_parts - 1) / p.num_parts, hi = min(max_blocks, unit);
  if (lo > hi || pieces(hi) > p.num_parts) return 0;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (pieces(mid) <= p.num_parts) hi = mid; else lo = mid + 1;
  }
  return lo;
}

// Equal-chunk mode: request i's chunk k is part num_splits[i] + k, blocks [k * chunk, min((k + 1) * chunk, n)).
__device__ void equal_chunk_plan(const MetadataParams& p, int chunk, MetadataScan::TempStorage& temp) {
  auto chunks_of = [&](int req) { return (max(blocks_of(p, req), 1) + chunk - 1) / chunk; };
  block_exclusive_scan(p.b, chunks_of, p.num_splits, temp);
  for (int part = p.num_splits[p.b] + threadIdx.x; part < p.num_parts; part += kMetadataThreads) {
    write_entry(p, part, p.b, 0, p.b - 1, 0, 0);
  }
  for (int req = threadIdx.x; req < p.b; req += kMetadataThreads) {
    const int n = blocks_of(p, req), first_part = p.num_splits[req];
    for (int k = 0; k < chunks_of(req); ++k) {
      write_entry(p, first_part + k, req, k * chunk, req, min((k + 1) * chunk, n), k);
    }
  }
}

// Split mode: part k takes the blocks whose units fall in [k * unit, (k + 1) * unit).
__device__ void split_plan(const MetadataParams& p, const CostLine& line, int unit, MetadataScan::TempStorage& temp) {
  const int total = line[p.b];
  auto first_part = [&](int req) { return (line[req] + line.overhead) / unit; };   // holds block unit 0
  // Parts per request: those holding one of its block units.
  block_exclusive_scan(p.b, [&](int i) { return (line[i + 1] - 1) / unit - first_part(i) + 1; }, p.num_splits, temp);
  for (int part = threadIdx.x; part < p.num_parts; part += kMetadataThreads) {
    const int lo = part * unit;
    if (lo >= total) {
      write_entry(p, part, p.b, 0, p.b - 1, 0, 0);
      continue;
    }
    const int hi = min(lo + unit, total);
    const int begin_req = last_at_or_before(line, p.b, lo);
    int end_req = last_at_or_before(line, p.b, hi - 1), end_block;
    const int end_unit = hi - 1 - line[end_req];
    if (end_unit < line.overhead) {   // the range ends inside end_req's overhead: not taken
      --end_req;
      end_block = blocks_of(p, end_req);
    } else {
      end_block = min(end_unit - line.overhead + 1, blocks_of(p, end_req));
    }
    write_entry(p, part, begin_req, max(lo - line[begin_req] - line.overhead, 0), end_req, end_block,
                part - first_part(begin_req));
  }
}

__global__ void __launch_bounds__(kMetadataThreads) get_metadata_kernel(MetadataParams p) {
  extern __shared__ int blocks_before[];   // [b + 1]
  __shared__ MetadataScan::TempStorage scan_storage;
  __shared__ int min_blocks, max_blocks, chunk;
  wait_for_previous_grid();   // seqlens may come from the kernel before this one
  allow_next_grid_launch();   // the decode kernel's prologue needs nothing from here
  if (threadIdx.x == 0) {
    min_blocks = INT_MAX;
    max_blocks = 0;
  }
  __syncthreads();

  int local_min = INT_MAX, local_max = 0;
  block_exclusive_scan(p.b, [&](int i) {
    const int n = max(blocks_of(p, i), 1);
    local_min = min(local_min, n);
    local_max = max(local_max, n);
    return n;
  }, blocks_before, scan_storage);
  atomicMin(&min_blocks, local_min);
  atomicMax(&max_blocks, local_max);
  const int natural_unit = (blocks_before[p.b] + p.b * p.split_overhead + p.num_parts - 1) / p.num_parts;
  const CostLine line{blocks_before, min(p.split_overhead, max(natural_unit - 1, 0))};
  const int ideal_unit = (line[p.b] + p.num_parts - 1) / p.num_parts;
  __syncthreads();
  const int min_cost = min_blocks + line.overhead, max_cost = max_blocks + line.overhead;
  // Uniform costs: splitting buys no balance, only partials and a combine (mla_backend/tile_scheduler.py).
  if (10 * (max_cost - min_cost) <= ideal_unit && 10 * max_cost <= 11 * ideal_unit) {
    whole_request_plan(p, line, max(ideal_unit, max_cost));
    return;
  }
  const int unit = max(ideal_unit, line.overhead + 1);
  if (threadIdx.x < 32) {
    const int found = equal_chunk(p, blocks_before, max_blocks, unit);
    if (threadIdx.x == 0) chunk = found;
  }
  __syncthreads();
  if (chunk > 0) {
    equal_chunk_plan(p, chunk, scan_storage);
  } else {
    split_plan(p, line, unit, scan_storage);
  }
}

cudaError_t launch_get_metadata(const MetadataParams& p, cudaStream_t stream) {
  const size_t smem_bytes = size_t(p.b + 1) * sizeof(int);
  return launch_with_pdl(get_metadata_kernel, dim3(1), dim3(kMetadataThreads), smem_bytes, stream, p);
}

}  // namespace mla

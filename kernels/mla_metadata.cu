// Tile scheduler: splits the KV blocks of a batch over num_parts persistent CTAs (one per SM part).
// Runs on the GPU with no host sync; its output shapes depend only on (b, num_parts), so a captured
// CUDA graph can replay it with new seqlens. mla_backend/scheduler.py mirrors it bit for bit.
#include "mla_params.h"

namespace mla {

constexpr int kMetadataThreads = 256;

__global__ void __launch_bounds__(kMetadataThreads) get_metadata_kernel(MetadataParams p) {
  extern __shared__ int smem[];
  int* blocks = smem;              // [b] KV blocks per request
  int* splits = smem + p.b;        // [b] splits per request
  __shared__ int total_cost;
  if (threadIdx.x == 0) total_cost = 0;
  __syncthreads();

  int cost = 0;
  for (int i = threadIdx.x; i < p.b; i += blockDim.x) {
    int n = (max(p.seqlens[i], 0) + kBlockSize - 1) / kBlockSize;
    blocks[i] = n;
    splits[i] = 0;
    cost += max(n, 1) + kSplitOverhead;
  }
  atomicAdd(&total_cost, cost);
  __syncthreads();
  if (threadIdx.x != 0) return;

  const int payload = (total_cost + p.num_parts - 1) / p.num_parts + kSplitOverhead;
  int req = 0, block = 0, split = 0;
  for (int part = 0; part < p.num_parts; ++part) {
    int* entry = p.sched + part * kSchedFields;
    int begin_req = req, begin_block = block, begin_split = split;
    int end_req = p.b - 1, end_block = 0;
    // The last part takes whatever is left, so the plan always covers every block.
    int budget = part + 1 == p.num_parts ? 0x7fffffff : payload;
    while (req < p.b) {
      const int unit = max(blocks[req] - block, 1);   // a zero-length request still costs one block
      if (budget - kSplitOverhead >= unit) {
        budget -= unit + kSplitOverhead;
        end_req = req;
        end_block = blocks[req];
        splits[req] = split + 1;
        ++req;
        block = 0;
        split = 0;
      } else {
        const int take = budget - kSplitOverhead;
        if (take > 0) {
          block += take;
          end_req = req;
          end_block = block;
          ++split;
        }
        break;
      }
    }
    entry[kBeginReq] = begin_req;
    entry[kBeginBlock] = begin_block;
    entry[kEndReq] = end_req;
    entry[kEndBlock] = end_block;
    entry[kBeginSplit] = begin_split;
    entry[5] = entry[6] = entry[7] = 0;
  }
  int prefix = 0;
  for (int i = 0; i < p.b; ++i) {
    p.num_splits[i] = prefix;
    prefix += splits[i];
  }
  p.num_splits[p.b] = prefix;
}

void launch_get_metadata(const MetadataParams& p, cudaStream_t stream) {
  const size_t smem_bytes = size_t(2) * p.b * sizeof(int);
  if (smem_bytes > 48 * 1024) {
    cudaFuncSetAttribute(get_metadata_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_bytes));
  }
  get_metadata_kernel<<<1, kMetadataThreads, smem_bytes, stream>>>(p);
}

}  // namespace mla

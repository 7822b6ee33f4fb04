// Host-side TMA descriptor for the paged KV cache. The driver entry point is looked up at run time so
// the extension links against the CUDA runtime only.
#include <cudaTypedefs.h>

#include "mla_params.h"

namespace mla {

bool make_kv_tensor_map(DecodeParams& p, bool bf16) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult status;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &status) !=
            cudaSuccess || status != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (encode == nullptr) return false;
  const CUtensorMapDataType type = bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const cuuint64_t token_bytes = cuuint64_t(p.k_stride_token) * 2, block_bytes = cuuint64_t(p.k_stride_block) * 2;
  const cuuint32_t unit_strides[3] = {1, 1, 1};

  const cuuint64_t dims[3] = {cuuint64_t(kHeadDim), cuuint64_t(kBlockSize), cuuint64_t(p.num_blocks)};
  const cuuint64_t strides[2] = {token_bytes, block_bytes};
  const cuuint32_t box[3] = {64, kBlockSize, 1};
  return encode(&p.k_map, type, 3, const_cast<void*>(p.k_cache), dims, strides, box, unit_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace mla

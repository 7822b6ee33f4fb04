// Host-side TMA descriptor for the paged KV cache. The driver entry point is looked up at run time so
// the extension links against the CUDA runtime only.
#include <cudaTypedefs.h>

#include "mla_params.h"
#include "mla_wgmma.cuh"

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
  const cuuint32_t unit_strides[5] = {1, 1, 1, 1, 1};

  const cuuint64_t dims[3] = {cuuint64_t(kHeadDim), cuuint64_t(kBlockSize), cuuint64_t(p.num_blocks)};
  const cuuint64_t strides[2] = {token_bytes, block_bytes};
  const cuuint32_t box[3] = {64, kBlockSize, 1};
  if (encode(&p.k_map, type, 3, const_cast<void*>(p.k_cache), dims, strides, box, unit_strides,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
    return false;
  }
  // Element (e, token 8g + r, sub-tile t) of a block lands at shared byte g * 9216 + t * 1024 + r * 128 + 2e
  // (swizzled): each sub-tile's 8-row atoms stay whole for wgmma, while the box walks the block 8 whole
  // token rows at a time instead of nine strided sweeps of the page.
  constexpr int kGroupRows = 8;
  const cuuint64_t block_dims[5] = {64, kGroupRows, cuuint64_t(kSubTiles), kBlockSize / kGroupRows, cuuint64_t(p.num_blocks)};
  const cuuint64_t block_strides[4] = {token_bytes, 128, token_bytes * kGroupRows, block_bytes};
  const cuuint32_t block_box[5] = {64, kGroupRows, cuuint32_t(kSubTiles), kBlockSize / kGroupRows, 1};
  return encode(&p.kv_block_map, type, 5, const_cast<void*>(p.k_cache), block_dims, block_strides, block_box,
                unit_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace mla

// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
// An fp8 (e4m3) k_cache with a bf16 query, up to 16 rows, O^T split by V's columns (mla_decode_narrow_fp8_split.cuh).
#include "mla_decode_narrow_fp8_split.cuh"

namespace mla {
template cudaError_t launch_decode_narrow_fp8_split<__nv_bfloat16>(const DecodeParams&, cudaStream_t);
}  // namespace mla

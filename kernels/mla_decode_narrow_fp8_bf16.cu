// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
// An fp8 (e4m3) k_cache with a bf16 query: up to 16 rows: Q.K^T and P.V in fp8 (mla_decode_narrow_fp8.cuh);
// 17-32 rows: the cache converted to bf16 by the producers.
#include "mla_decode_narrow_fp8.cuh"

namespace mla {
template cudaError_t launch_decode_narrow_fp8<__nv_bfloat16>(const DecodeParams&, cudaStream_t);
template cudaError_t launch_decode_narrow<__nv_bfloat16, 32, Fp8E4M3>(const DecodeParams&, cudaStream_t);
}  // namespace mla

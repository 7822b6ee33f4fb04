// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
// An fp8 (e4m3) k_cache with a fp16 query: up to 16 rows: Q.K^T and P.V in fp8 (mla_decode_narrow_fp8.cuh);
// 17-32 rows: the cache converted to fp16 by the producers.
#include "mla_decode_narrow_fp8.cuh"

namespace mla {
template cudaError_t launch_decode_narrow_fp8<__half>(const DecodeParams&, cudaStream_t);
template cudaError_t launch_decode_narrow<__half, 32, Fp8E4M3>(const DecodeParams&, cudaStream_t);
}  // namespace mla

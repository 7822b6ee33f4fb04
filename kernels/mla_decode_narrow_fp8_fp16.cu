// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
// An fp8 (e4m3) k_cache with a fp16 query, up to 32 rows: Q.K^T and P.V in fp8 (mla_decode_narrow_fp8.cuh).
#include "mla_decode_narrow_fp8.cuh"

namespace mla {
template cudaError_t launch_decode_narrow_fp8<__half>(const DecodeParams&, cudaStream_t);
}  // namespace mla

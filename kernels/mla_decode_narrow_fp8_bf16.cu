// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
// An fp8 (e4m3) k_cache with a bf16 query: the stages and the MMAs are bf16.
#include "mla_decode_narrow.cuh"

namespace mla {
template cudaError_t launch_decode_narrow<__nv_bfloat16, 16, Fp8E4M3>(const DecodeParams&, cudaStream_t);
template cudaError_t launch_decode_narrow<__nv_bfloat16, 32, Fp8E4M3>(const DecodeParams&, cudaStream_t);
}  // namespace mla

// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
#include "mla_decode_wide_fp8.cuh"

namespace mla {
template cudaError_t launch_decode_wide_fp8<__nv_bfloat16>(const DecodeParams&, cudaStream_t);
}  // namespace mla

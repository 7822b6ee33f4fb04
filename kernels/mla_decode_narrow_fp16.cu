// One translation unit per (kernel, dtype) so the decode kernel instantiations build in parallel.
#include "mla_decode_narrow.cuh"

namespace mla {
template cudaError_t launch_decode_narrow<__half, 16>(const DecodeParams&, cudaStream_t);
}  // namespace mla

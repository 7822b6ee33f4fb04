// One translation unit per dtype so the decode kernel instantiations build in parallel.
#include "mla_decode.cuh"

namespace mla {
template void launch_decode<__half>(const DecodeParams&, cudaStream_t);
}  // namespace mla

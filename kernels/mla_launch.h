// Host-side kernel launches: every CUDA call checked, decode and combine launched with programmatic
// dependent launch (PDL) so each starts its prologue while its predecessor in the stream drains.
#pragma once

#include <cuda_runtime.h>

#include <utility>

namespace mla {

// Launches kernel<<<grid, block, smem_bytes, stream>>>(args...) as a PDL dependent of the previous
// kernel in the stream; the kernel must call wait_for_previous_grid() before reading its inputs.
// Returns the first CUDA error (attribute setup or launch).
template <typename... KernelArgs, typename... Args>
cudaError_t launch_with_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
                            cudaStream_t stream, Args&&... args) {
  if (smem_bytes > 48 * 1024) {
    const cudaError_t err =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes));
    if (err != cudaSuccess) return err;
  }
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  config.attrs = attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace mla

// The online softmax step both decode kernels share, in the log2 domain.
#pragma once

#include <cmath>

namespace mla {

// Folds a block's max score into a running max. Returns the base the block's scores subtract before
// exp2 and sets rescale, the factor for the running sum and O. While every score so far is -inf the
// base is 0, so that exp2 gives 0 instead of NaN.
__device__ __forceinline__ float fold_block_max(float& running_max, float block_max, float& rescale) {
  const float new_max = fmaxf(running_max, block_max);
  const float base = new_max == -INFINITY ? 0.f : new_max;
  rescale = exp2f(running_max - base);
  running_max = new_max;
  return base;
}

}  // namespace mla

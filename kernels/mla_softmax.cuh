// The online softmax step both decode kernels share, in the log2 domain.
#pragma once

#include <cmath>

namespace mla {

// The base a block's scores subtract before exp2, given the max they are measured against: while every
// score so far is -inf it is 0, so that exp2 gives 0 instead of NaN.
__device__ __forceinline__ float softmax_base(float max) { return max == -INFINITY ? 0.f : max; }

// Folds a block's max score into a running max. Returns the base the block's scores subtract before
// exp2 (softmax_base) and sets rescale, the factor for the running sum and O.
__device__ __forceinline__ float fold_block_max(float& running_max, float block_max, float& rescale) {
  const float new_max = fmaxf(running_max, block_max);
  const float base = softmax_base(new_max);
  rescale = exp2f(running_max - base);
  running_max = new_max;
  return base;
}

}  // namespace mla

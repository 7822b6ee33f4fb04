// The online softmax step both decode kernels share, in the log2 domain.
#pragma once

#include <cmath>

namespace mla {

// The base a block's scores subtract before exp2, given the max they are measured against: while every
// score so far is -inf it is 0, so that exp2 gives 0 instead of NaN.
__device__ __forceinline__ float softmax_base(float max) { return max == -INFINITY ? 0.f : max; }

// Moves a running max to new_max. Returns the base the block's scores subtract before exp2 (softmax_base) and sets
// rescale, the factor for the running sum and O.
__device__ __forceinline__ float move_running_max(float& running_max, float new_max, float& rescale) {
  const float base = softmax_base(new_max);
  rescale = exp2f(running_max - base);
  running_max = new_max;
  return base;
}

// Folds a block's max score into a running max (move_running_max).
__device__ __forceinline__ float fold_block_max(float& running_max, float block_max, float& rescale) {
  return move_running_max(running_max, fmaxf(running_max, block_max), rescale);
}

// How far (log2) a block's max may exceed a row's running max with that max kept as P's base, where P is 16-bit:
// P up to 2^8, which bf16 and fp16 (and the fp32 sums) hold as exactly as 1.
constexpr float kLazyMaxSlackLog2 = 8.f;

// fold_block_max that moves the running max only when a block's max exceeds it by more than slack_log2: after a
// request's first blocks almost every block's rescale factor is then exactly 1, and the caller can skip O's rescale.
__device__ __forceinline__ float fold_block_max_lazy(float& running_max, float block_max, float& rescale,
                                                     float slack_log2 = kLazyMaxSlackLog2) {
  return move_running_max(running_max, block_max > running_max + slack_log2 ? block_max : running_max, rescale);
}

// 2^x for x <= 127 on the FMA pipe, for a share of a softmax's exponentials (MUFU.EX2 issues at a quarter of the FMA
// rate): x = n + f with n = rint(x) (the 1.5 * 2^23 rounding trick), 2^f by a cubic on [-1/2, 1/2] (relative error
// 1.0e-4, far below bf16's rounding of P; constant term exactly 1), n added to the exponent. x <= -127, -inf
// included, gives exactly 0, as ex2.approx.ftz does for -inf.
__device__ __forceinline__ float exp2_on_fma_pipe(float x) {
  constexpr float kRound = 12582912.f;   // 1.5 * 2^23: x + kRound rounds x to an integer n in the low mantissa bits
  x = fmaxf(x, -127.f);
  const float shifted = x + kRound;
  const float f = x - (shifted - kRound);
  const float p = fmaf(fmaf(fmaf(0.05500893f, f, 0.24221098f), f, 0.69328290f), f, 1.f);
  // shifted's bits are kRound's plus n, and kRound's low 9 bits are zero: shifting left by 23 leaves n << 23.
  return __int_as_float(__float_as_int(p) + (__float_as_int(shifted) << 23));
}

}  // namespace mla

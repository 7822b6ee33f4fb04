// Timing one kernel launch for the device microbenchmarks (benchmarks/*.cu): a warm-up launch first, so that the SM
// clock has ramped, then the timed one between two CUDA events.
#pragma once

#include <cuda_runtime.h>

struct TimedLaunch {
  float ms;
  cudaError_t err;   // what the timed launch's completion reported
};

// launch(true) runs the warm-up, launch(false) the timed launch.
template <typename Launch>
TimedLaunch time_after_warm_up(Launch&& launch) {
  launch(true);
  cudaEvent_t begin, end;
  cudaEventCreate(&begin);
  cudaEventCreate(&end);
  cudaEventRecord(begin);
  launch(false);
  cudaEventRecord(end);
  TimedLaunch timed{0.f, cudaEventSynchronize(end)};
  cudaEventElapsedTime(&timed.ms, begin, end);
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  return timed;
}

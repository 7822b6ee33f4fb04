#!/usr/bin/env bash
# s46f (after s46e, the same kit; LoadedKq<true>: all 18 loads, then one fence and the 18 wgmmas; predicted 22-26 cycles alone, 32-40 beside another, 35-45 beside a P.V): benchmarks/wgmma_rates.cu, the e4m3 wgmma cost table (cycles a wgmma by shape, SS / RS, one or two
# warpgroups). Predicted: SS m64n64k32 ~32 cycles (the pipe's 4096 MACs a cycle); SS m64n32k32 and m64n16k32 ~32 too
# (the floor v30 found for 16-bit SS at N <= 32); RS m64n32k32 16-20 if that floor is operand A's shared-memory read,
# ~32 if it is the instruction's own; RS m64n64k32 ~32; m64n256k32 ~128; two warpgroups of SS m64n64 ~64 each.
# s46e adds LoadedKq (the same RS m64n32k32 with its A fragments loaded from a K tile, LDS.128, a pair of k-steps a
# load): predicted ~20-24 cycles alone, ~32 beside another (the pipe), ~25-35 beside an RS m64n256k32 P.V.
# Carry .variants/s46/wheels (the cutlass wheel).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s46/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
nvcc -gencode arch=compute_90a,code=sm_90a -std=c++20 -O3 --expt-relaxed-constexpr -Ikernels \
    -I/tmp/devsite/cutlass_library/source/include benchmarks/wgmma_rates.cu -o /tmp/wgmma_rates > "$OUT/build.log" 2>&1
echo "build rc=$?"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv,noheader
/tmp/wgmma_rates | tee "$OUT/wgmma_rates.md"
/tmp/wgmma_rates > "$OUT/wgmma_rates_2.md"; tail -n 15 "$OUT/wgmma_rates_2.md"

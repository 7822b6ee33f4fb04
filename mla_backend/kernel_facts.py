"""What the compiled kernel computes on and where it runs, written once for the package, its tests and tools.

HEAD_DIM, HEAD_DIM_V and BLOCK_SIZE mirror kernels/mla_params.h (a test reads the header and compares). The
limits on h_q, s_q and the batch are not constants of the kernel sources: they are what the launchers were
written and tested for. Torch-free, so that the CLI can read it without importing torch.
"""
from __future__ import annotations

import re

HEAD_DIM = 576                       # q and k columns: 512 latent (kv_lora_rank) + 64 RoPE
HEAD_DIM_V = 512                     # V is the first 512 columns of K
ROPE_DIM = HEAD_DIM - HEAD_DIM_V
BLOCK_SIZE = 64                      # tokens per KV-cache page
MAX_H_Q = 128                        # query heads per request (per GPU)
MAX_S_Q = 16                         # query tokens per request (1 + speculative draft tokens)
MAX_BATCH = 16384                    # the scheduler keeps one int per request in shared memory
FP8_MAX_ROWS = 32                    # s_q * h_q up to which an fp8 (e4m3) k_cache may run as row halves, two 16-row
                                     # CTAs of the fp8 swap-AB kernel (kFp8MaxRows in mla_params.h); more rows, and
                                     # 17-32 without row halves, run the 64-row fp8 kernel. Every fp8 kernel runs
                                     # Q.K^T in fp8: each query row is scaled onto e4m3's range (448 / its max
                                     # |value|) and rounded to e4m3 first (reference.quantize_query_rows).
E4M3_MAX = 448.0                     # the largest finite float8_e4m3fn

ARCH = "sm_90a"
HOPPER_MAJOR = 9
HOPPER = "a Hopper GPU (compute capability 9.x, sm_90a: H100, H200, H800, H20)"


def is_hopper(capability: tuple[int, int] | None) -> bool:
    """capability: (major, minor) as torch, vLLM's DeviceCapability or parse_capability give it; None: unknown."""
    return capability is not None and capability[0] == HOPPER_MAJOR


def not_hopper(capability: tuple[int, int], gpu: str = "this GPU") -> str | None:
    """None on Hopper, else the one sentence every refusal of another GPU says (gpu names the device)."""
    if is_hopper(capability):
        return None
    return f"the kernel needs {HOPPER}, but {gpu} has compute capability {capability[0]}.{capability[1]}"


def current_gpu_is_hopper() -> bool:
    """Whether torch sees a CUDA GPU and its current device is Hopper (imports torch)."""
    import torch

    return torch.cuda.is_available() and is_hopper(torch.cuda.get_device_capability())


def parse_capability(text: str) -> tuple[int, int] | None:
    """nvidia-smi's compute_cap ("9.0") as (9, 0); None when it is not of that form."""
    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None

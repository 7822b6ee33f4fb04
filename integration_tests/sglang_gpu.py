"""Which SGLang this GPU machine has: the SGLang GPU tests run with SGLang 0.5.17 (torch 2.11) on a Hopper GPU."""
from __future__ import annotations

import importlib.metadata

import pytest

from mla_backend.kernel_facts import current_gpu_is_hopper

VERIFIED = "0.5.17"


def sglang_version() -> str | None:
    try:
        return importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        return None


requires_hopper_and_sglang = pytest.mark.skipif(
    not current_gpu_is_hopper() or not (sglang_version() or "").startswith(VERIFIED),
    reason=f"needs a Hopper GPU and SGLang {VERIFIED} (here: Hopper {current_gpu_is_hopper()}, "
           f"SGLang {sglang_version()})",
)

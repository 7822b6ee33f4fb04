"""Which SGLang this GPU machine has: the SGLang GPU tests run with SGLang 0.5.17 (torch 2.11) on a Hopper GPU."""
from __future__ import annotations

import importlib.metadata

import pytest
import torch

VERIFIED = "0.5.17"


def sglang_version() -> str | None:
    try:
        return importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        return None


def _hopper() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9


requires_hopper_and_sglang = pytest.mark.skipif(
    not _hopper() or not (sglang_version() or "").startswith(VERIFIED),
    reason=f"needs a Hopper GPU and SGLang {VERIFIED} (here: Hopper {_hopper()}, SGLang {sglang_version()})",
)

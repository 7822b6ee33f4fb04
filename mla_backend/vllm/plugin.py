"""Entry point of group `vllm.general_plugins`, run by vLLM once in every process it starts.

It only records a class path in vLLM's backend registry: no torch.cuda, no mla_backend.ops, no extension
build. The backend module is imported later, by vLLM's selector, when `--attention-backend CUSTOM` is asked for.
"""
from __future__ import annotations

import importlib.metadata
import logging
import re

BACKEND_PATH = "mla_backend.vllm.backend.MLABackend"
VERIFIED_VLLM = {"0.26": "H100, TP 1 and 2", "0.33": "CPU CI"}

logger = logging.getLogger(__name__)


def check_vllm_version(version: str) -> None:
    """Raises RuntimeError unless `version` is a release series this adapter was verified against."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None or f"{match[1]}.{match[2]}" not in VERIFIED_VLLM:
        verified = ", ".join(f"{series}.x ({where})" for series, where in VERIFIED_VLLM.items())
        raise RuntimeError(
            f"mla_backend's vLLM backend is verified with vLLM {verified}; this is vLLM {version}. Install a "
            f"verified vLLM, or uninstall mla-backend (or leave it out of VLLM_PLUGINS) to run vLLM without it."
        )


def register() -> None:
    """Registers our backend as `AttentionBackendEnum.CUSTOM`; safe to call any number of times."""
    check_vllm_version(importlib.metadata.version("vllm"))
    from vllm.v1.attention.backends.registry import AttentionBackendEnum, register_backend

    custom = AttentionBackendEnum.CUSTOM
    if custom.is_overridden() and custom.get_path() != BACKEND_PATH:
        logger.warning("mla_backend replaces the CUSTOM attention backend %s", custom.get_path())
    register_backend(custom, BACKEND_PATH)

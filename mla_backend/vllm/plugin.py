"""Entry point of group `vllm.general_plugins`, run by vLLM once in every process it starts.

It only records a class path in vLLM's backend registry: no torch.cuda, no mla_backend.ops, no extension
build. The backend module is imported later, by vLLM's selector, when `--attention-backend CUSTOM` is asked for.
In a vLLM that is not in mla_backend.engines' table, or when registering fails, it logs one warning that says why
and leaves CUSTOM unregistered: vLLM itself keeps working (see engines.register_plugin).
"""
from __future__ import annotations

import logging

from mla_backend import engines

BACKEND_PATH = "mla_backend.vllm.backend.MLABackend"

logger = logging.getLogger(__name__)


def register() -> None:
    """Registers our backend as `AttentionBackendEnum.CUSTOM` in a verified vLLM; safe to call any number of
    times; never raises."""
    engines.register_plugin("vllm", _register_custom, logger)


def _register_custom() -> None:
    from vllm.v1.attention.backends.registry import AttentionBackendEnum, register_backend

    custom = AttentionBackendEnum.CUSTOM
    if custom.is_overridden() and custom.get_path() != BACKEND_PATH:
        logger.warning("mla_backend replaces the CUSTOM attention backend %s", custom.get_path())
    register_backend(custom, BACKEND_PATH)

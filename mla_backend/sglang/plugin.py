"""Entry point of group `sglang.srt.plugins`, run by SGLang's `load_plugins()` in every process it starts
(before it parses the server arguments).

It makes `--attention-backend mla_backend` a valid choice, registers the factory SGLang calls to build the
backend and lists the name where SGLang keeps the backends that read its chunked prefix cache (our prefill is
FlashMLA's). It imports only the two SGLang modules that hold those lists (server_args, which every SGLang
entry point has imported before it loads plugins, and attention_registry): no torch.cuda, no mla_backend.ops, no
extension build, no model code. (On an NVIDIA machine SGLang 0.5.17's server_args initialises CUDA itself when
imported: server_args.py imports kernels/ops/attention/fla, whose utils.py calls torch.cuda.get_device_name(0) at
import. SGLang's launcher has done that before it loads plugins; 0.5.23's server_args no longer does.)

The factory, run where the model runs when SGLang builds the backend, imports backend.py and registers FlashMLA's
DeepSeek attention handler under our name (without it, DeepSeek models silently take the Triton handler's dispatch
for an unknown name). That is done there and not here because SGLang's DeepSeek handler module pulls in its model
code (~500-800 modules: MoE, quantization, DeepGEMM), some of which query the GPU at import
(deepseek_common/utils.py: get_device_sm(), which initialises CUDA), in every process that loads plugins.

In an SGLang release that is not in mla_backend.engines' table, or when registering fails, it logs one warning
that says why and registers nothing (see engines.register_plugin); the server then refuses the name
(`invalid choice: 'mla_backend'`) and that warning, above it in the log, says why.
"""
from __future__ import annotations

import logging

from mla_backend import engines

BACKEND_NAME = "mla_backend"

logger = logging.getLogger(__name__)


def register_deepseek_handler() -> None:
    """DeepSeek's attention dispatch for our name is FlashMLA's (our prefill is FlashMLA's), and its absorbed MLA
    hands us q and k with their RoPE columns apart, as it does FlashInfer: the kernel reads q's two parts where they
    are and the pool writes k's in one kernel, where FlashMLA's dispatch would concatenate both (two more kernels a
    layer). The backend takes either form, so an SGLang without that list only costs the concatenations (logged).
    Idempotent."""
    from sglang.srt.models.deepseek_common import utils as deepseek_utils
    from sglang.srt.models.deepseek_common.attention_backend_handler import (
        AttentionBackendRegistry,
        handle_attention_flashmla,
    )

    AttentionBackendRegistry.register(BACKEND_NAME, handle_attention_flashmla)
    apart = getattr(deepseek_utils, "FORWARD_ABSORB_CORE_ATTENTION_BACKENDS", None)
    if not isinstance(apart, list):
        logger.warning("mla_backend: this SGLang has no deepseek_common.utils.FORWARD_ABSORB_CORE_ATTENTION_BACKENDS "
                       "list; DeepSeek's dispatch will concatenate q and k for our backend every layer")
    elif BACKEND_NAME not in apart:
        apart.append(BACKEND_NAME)


def create_backend(model_runner):
    """SGLang's factory for `mla_backend`, called in the process that runs the model, before its first forward."""
    register_deepseek_handler()
    from mla_backend.sglang.backend import MLABackend

    return MLABackend(model_runner)


def register() -> None:
    """Registers `mla_backend` with SGLang's argument parser and backend registry in a verified SGLang;
    idempotent; never raises."""
    engines.register_plugin("sglang", _register_backend, logger)


def _register_backend() -> None:
    from sglang.srt import server_args
    from sglang.srt.layers.attention import attention_registry

    existing = attention_registry.ATTENTION_BACKENDS.get(BACKEND_NAME)
    if existing is not None and existing is not create_backend:
        logger.warning("mla_backend replaces the SGLang attention backend registered as %r", BACKEND_NAME)
    attention_registry.register_attention_backend(BACKEND_NAME)(create_backend)
    if BACKEND_NAME not in server_args.CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS:
        server_args.add_chunked_prefix_cache_attention_backend(BACKEND_NAME)
    # Last: the name becomes a valid choice only once the factory behind it is registered.
    if BACKEND_NAME not in server_args.ATTENTION_BACKEND_CHOICES:
        server_args.add_attention_backend_choices([BACKEND_NAME])

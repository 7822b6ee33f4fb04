"""Teacher forcing through vLLM's OpenAI server: a logits processor that makes request i emit the token ids given
in its `vllm_xargs={"force_tokens": [...]}`, one per step.

Load it with `vllm serve ... --logits-processors force_tokens:ForceTokens` (this folder on PYTHONPATH). vLLM's
sampler computes the returned logprobs from the raw logits before any logits processor runs (logprobs mode
`raw_logprobs`, the default), so `logprobs=1` gives the model's own log-probability of each forced token: the
same token sequence scored by every attention backend, decode step by decode step.
"""
from __future__ import annotations

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

KEY = "force_tokens"


class ForceTokens(AdapterLogitsProcessor):
    @classmethod
    def validate_params(cls, sampling_params):
        forced = (sampling_params.extra_args or {}).get(KEY)
        if forced is not None and not (isinstance(forced, list) and all(isinstance(t, int) for t in forced)):
            raise ValueError(f"vllm_xargs.{KEY}: expected a list of token ids, got {forced!r}")

    def is_argmax_invariant(self) -> bool:
        return False

    def new_req_logits_processor(self, params):
        forced = (params.extra_args or {}).get(KEY)
        if not forced:
            return None

        def force(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
            step = len(output_ids)
            if step < len(forced):
                token = forced[step]
                logits.fill_(float("-inf"))
                logits[token] = 0.0
            return logits

        return force

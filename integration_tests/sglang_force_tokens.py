"""Teacher forcing through SGLang's OpenAI server: a custom logit processor that makes a request emit the token
ids in its `custom_params={"force_tokens": [...], "log": PATH, "id": KEY}`, one per step, and appends the model's
own log-probability of each forced token (from the raw logits, before forcing) to PATH.<pid> as JSON lines.

SGLang computes the logprobs it returns after custom logit processors have run (a forced token would read ~0), so
the raw value is recorded here instead; every TP rank samples, so each writes its own identical file. The step
is len(req.output_ids), which is only current with the overlap scheduler off (--disable-overlap-schedule).
Serve with --enable-custom-logit-processor and this folder on PYTHONPATH (the class is pickled by reference).
"""
from __future__ import annotations

import json
import os

import torch
from sglang.srt.sampling.custom_logit_processor import CustomLogitProcessor

KEY = "force_tokens"


class ForceTokens(CustomLogitProcessor):
    def __call__(self, logits: torch.Tensor, custom_param_list=None) -> torch.Tensor:
        for row, params in zip(logits, custom_param_list or []):
            forced = (params or {}).get(KEY)
            if not forced:
                continue
            step = len(params["__req__"].output_ids)
            if step >= len(forced):
                continue
            token = forced[step]
            logprob = torch.log_softmax(row.float(), dim=-1)[token].item()
            with open(f"{params['log']}.{os.getpid()}", "a") as f:
                f.write(json.dumps({"id": params["id"], "step": step, "token": token, "logprob": logprob}) + "\n")
            row.fill_(float("-inf"))
            row[token] = 0.0
        return logits


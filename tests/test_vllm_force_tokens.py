"""The teacher-forcing logits processor of the GPU end-to-end test (integration_tests/force_tokens.py) against
vLLM's own per-request adapter, on CPU: a request with `force_tokens` emits exactly those ids, one per step,
and the others are left alone."""
from __future__ import annotations

import pytest

vllm = pytest.importorskip("vllm", reason="vLLM is not installed")
import torch  # noqa: E402
from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate  # noqa: E402

from force_tokens import ForceTokens  # noqa: E402


def test_forced_request_follows_its_tokens_and_others_are_untouched():
    proc = ForceTokens(None, torch.device("cpu"), False)
    forced, free = [], []
    added = [(0, SamplingParams(extra_args={"force_tokens": [5, 7]}), [1, 2], forced),
             (1, SamplingParams(), [1, 2], free)]
    proc.update_state(BatchUpdate(batch_size=2, removed=[], added=added, moved=[]))
    for step, want in enumerate([5, 7]):
        logits = torch.randn(2, 11)
        before = logits[1].clone()
        out = proc.apply(logits)
        assert out[0].argmax().item() == want and torch.isinf(out[0]).sum().item() == 10
        assert torch.equal(out[1], before)
        forced.append(want)
        free.append(0)
        proc.update_state(None)
    logits = torch.randn(2, 11)
    assert torch.equal(proc.apply(logits.clone()), logits)  # past the forced tokens: untouched


def test_bad_force_tokens_are_refused():
    with pytest.raises(ValueError, match="force_tokens: expected a list of token ids"):
        ForceTokens.validate_params(SamplingParams(extra_args={"force_tokens": "5,7"}))

"""The tiny DeepSeek-V2 checkpoint that the GPU tests start vLLM on (mla_backend/models/tiny_model.py; here two layers,
one dense and one MoE, and 8 heads) is complete on CPU already: every tensor has the HF name and shape, vLLM reads
it as MLA with our head size, and its tokenizer and chat template work offline."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vLLM 0.33.0 in a second venv for these tests)")

from mla_backend.models import tiny_model
from vllm_cpu import vllm_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_model.generate(tmp_path_factory.mktemp("tiny_dsv2"), num_layers=2, num_heads=8)


def test_transformers_loads_every_tensor_and_runs(checkpoint):
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(checkpoint, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    logits = model(torch.tensor([[1, 5, 6, 7]])).logits
    assert logits.shape == (1, 4, model.config.vocab_size) and torch.isfinite(logits).all()


def test_vllm_reads_it_as_mla_with_deepseek_v2_dims(checkpoint):
    model = vllm_config(checkpoint).model_config
    text = model.hf_text_config
    assert model.use_mla and model.get_head_size() == 576
    assert (text.kv_lora_rank, text.qk_rope_head_dim, text.qk_nope_head_dim, text.v_head_dim) == (512, 64, 128, 128)
    assert text.num_hidden_layers == 2 and text.num_attention_heads == 8 and text.q_lora_rank is None


def test_tokenizer_and_chat_template_work_offline(checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    text = "The scheduler splits every page, then returns the answer."
    ids = tok(text).input_ids    # DeepSeek's tokenizers put BOS in front
    assert ids[0] == tok.bos_token_id == tiny_model.BOS_ID and tok.decode(ids[1:]) == text
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == f"{tiny_model.BOS}User: hi\n\nAssistant:"
    assert tok.eos_token_id == tiny_model.EOS_ID
    assert max(tok.get_vocab().values()) < vllm_config(checkpoint).model_config.get_vocab_size()


def test_same_seed_same_weights(tmp_path):
    from safetensors.torch import load_file

    small = dict(num_layers=1, num_heads=2)
    a = load_file(tiny_model.generate(tmp_path / "a", **small) / "model.safetensors")
    b = load_file(tiny_model.generate(tmp_path / "b", **small) / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

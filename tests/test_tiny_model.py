"""The embedded default model of `mla-backend serve`: a DeepSeek-V2-architecture checkpoint generated locally.

The expected tensor shapes are derived here from config.json with DeepSeek-V2's architecture (MLA without
a q LoRA, dense first layer, routed + shared experts after it), independently of the generator's own table.
"""

import json

import pytest
import torch

from mla_backend.models import tiny_model

safetensors = pytest.importorskip("safetensors")
tokenizers = pytest.importorskip("tokenizers")

FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_model.generate(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def config(checkpoint):
    return json.loads((checkpoint / "config.json").read_text())


def test_all_files_are_written(checkpoint):
    assert {p.name for p in checkpoint.iterdir()} >= FILES


def test_config_has_real_deepseek_mla_dimensions(config):
    assert config["architectures"] == ["DeepseekV2ForCausalLM"] and config["model_type"] == "deepseek_v2"
    assert (config["kv_lora_rank"], config["qk_rope_head_dim"], config["qk_nope_head_dim"], config["v_head_dim"]) == \
        (512, 64, 128, 128)
    assert config["num_hidden_layers"] == 2 and config["q_lora_rank"] is None
    assert 1 <= config["num_attention_heads"] <= 128 and config["hidden_size"] <= 512
    # One dense layer, then MoE: both of DeepSeek's MLP kinds are exercised.
    assert config["first_k_dense_replace"] == 1 and config["n_routed_experts"] > config["num_experts_per_tok"]
    assert config["rope_scaling"]["type"] == "yarn"  # vLLM's softmax scale then carries mscale², as for real models
    assert config["torch_dtype"] == "bfloat16"


def expected_shapes(c: dict) -> dict:
    h, n, vocab = c["hidden_size"], c["num_attention_heads"], c["vocab_size"]
    rank, rope, nope, v = c["kv_lora_rank"], c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"]
    shapes = {"model.embed_tokens.weight": (vocab, h), "model.norm.weight": (h,), "lm_head.weight": (vocab, h)}

    def mlp(prefix, inner):
        shapes.update({f"{prefix}.gate_proj.weight": (inner, h), f"{prefix}.up_proj.weight": (inner, h),
                       f"{prefix}.down_proj.weight": (h, inner)})

    for i in range(c["num_hidden_layers"]):
        layer = f"model.layers.{i}"
        shapes[f"{layer}.input_layernorm.weight"] = (h,)
        shapes[f"{layer}.post_attention_layernorm.weight"] = (h,)
        shapes[f"{layer}.self_attn.q_proj.weight"] = (n * (nope + rope), h)  # q: no LoRA (q_lora_rank null)
        shapes[f"{layer}.self_attn.kv_a_proj_with_mqa.weight"] = (rank + rope, h)  # the 576-wide cached latent
        shapes[f"{layer}.self_attn.kv_a_layernorm.weight"] = (rank,)
        shapes[f"{layer}.self_attn.kv_b_proj.weight"] = (n * (nope + v), rank)  # W_UK and W_UV
        shapes[f"{layer}.self_attn.o_proj.weight"] = (h, n * v)
        if i < c["first_k_dense_replace"]:
            mlp(f"{layer}.mlp", c["intermediate_size"])
        else:
            shapes[f"{layer}.mlp.gate.weight"] = (c["n_routed_experts"], h)
            for e in range(c["n_routed_experts"]):
                mlp(f"{layer}.mlp.experts.{e}", c["moe_intermediate_size"])
            mlp(f"{layer}.mlp.shared_experts", c["moe_intermediate_size"] * c["n_shared_experts"])
    return shapes


def test_safetensors_shapes_match_the_config(checkpoint, config):
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as f:
        shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
        norm = f.get_tensor("model.layers.0.self_attn.kv_a_layernorm.weight")
        kv_b = f.get_tensor("model.layers.1.self_attn.kv_b_proj.weight")
    assert shapes == expected_shapes(config)
    assert norm.dtype == torch.bfloat16 and bool((norm == 1).all())
    assert kv_b.dtype == torch.bfloat16 and bool(torch.isfinite(kv_b).all()) and 0.01 < kv_b.float().std() < 0.03


def test_weights_are_reproducible():
    a, b = tiny_model.random_weights(), tiny_model.random_weights()
    assert all(torch.equal(a[name], b[name]) for name in ("lm_head.weight", "model.layers.1.self_attn.q_proj.weight"))


def test_tokenizer_round_trips_any_text_and_prepends_bos(checkpoint, config):
    tok = tokenizers.Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    assert tok.get_vocab_size() == config["vocab_size"]
    for text in ("Hello, world!", "  two spaces\nand a newline\t", "naïve café — 東京 🚀", ""):
        ids = tok.encode(text).ids
        assert ids[0] == config["bos_token_id"] and all(0 <= i < config["vocab_size"] for i in ids)
        assert tok.decode(ids) == text
        assert len(ids) == 1 + len(text.encode())  # one token per UTF-8 byte
    assert tok.id_to_token(config["eos_token_id"]) == tiny_model.EOS


def test_chat_template_renders_the_deepseek_prompt_format(checkpoint):
    jinja2 = pytest.importorskip("jinja2")
    tokenizer_config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    assert tokenizer_config["bos_token"] == tiny_model.BOS and tokenizer_config["eos_token"] == tiny_model.EOS
    template = jinja2.Environment().from_string(tokenizer_config["chat_template"])
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Why?"}]
    text = template.render(messages=messages, add_generation_prompt=True, bos_token=tiny_model.BOS,
                           eos_token=tiny_model.EOS)
    assert text == f"{tiny_model.BOS}Be brief.\n\nUser: Hi\n\nAssistant: Hello{tiny_model.EOS}User: Why?\n\nAssistant:"


def test_ensure_generates_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MLA_BACKEND_CACHE", str(tmp_path))
    directory = tiny_model.default_dir()
    assert directory.parent == tmp_path / "models" and directory.name.startswith(tiny_model.NAME)
    assert tiny_model.ensure() == directory
    assert (directory / "DONE").read_text().strip() == tiny_model.cache_key()
    stamp = (directory / "model.safetensors").stat().st_mtime_ns
    assert tiny_model.ensure() == directory
    assert (directory / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.joinpath("models").iterdir()] == [directory.name]  # no temporary left over


@pytest.mark.parametrize("num_layers,num_heads", [(1, 128), (1, 2), (3, 8)])
def test_layer_and_head_counts_are_parameters(tmp_path, num_layers, num_heads):
    directory = tiny_model.generate(tmp_path, num_layers=num_layers, num_heads=num_heads)
    config = json.loads((directory / "config.json").read_text())
    assert (config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"]) == \
        (num_layers, num_heads, num_heads)
    assert {k: v for k, v in config.items() if k not in ("num_hidden_layers", "num_attention_heads",
                                                         "num_key_value_heads")} == \
        {k: v for k, v in tiny_model.CONFIG.items() if k not in ("num_hidden_layers", "num_attention_heads",
                                                                 "num_key_value_heads")}
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
        shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    assert shapes == expected_shapes(config)
    assert (directory / "DONE").read_text().strip() == tiny_model.cache_key(num_layers=num_layers, num_heads=num_heads)


def test_one_layer_is_dense_only():
    names = tiny_model.random_weights(num_layers=1, num_heads=4)
    assert "model.layers.0.mlp.gate_proj.weight" in names and not any("experts" in n for n in names)


def test_defaults_are_the_serve_model():
    assert tiny_model.config() == tiny_model.CONFIG
    assert tiny_model.cache_key(num_layers=2, num_heads=16) == tiny_model.cache_key()
    assert tiny_model.default_dir(num_heads=8) != tiny_model.default_dir()


@pytest.mark.parametrize("shape", [dict(num_heads=0), dict(num_layers=0), dict(num_heads=2.0),
                                   dict(num_layers=True)])
def test_bad_shapes_are_refused(tmp_path, shape):
    with pytest.raises(ValueError, match="must be a positive int"):
        tiny_model.generate(tmp_path / "x", **shape)
    assert not (tmp_path / "x").exists()


def test_command_line_writes_the_checkpoint(tmp_path, capsys):
    assert tiny_model.main([str(tmp_path / "out"), "--num-heads", "32", "--num-layers", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["num_attention_heads"]) == (1, 32)
    assert {p.name for p in (tmp_path / "out").iterdir()} >= FILES
    with pytest.raises(SystemExit) as exc:
        tiny_model.main([str(tmp_path / "bad"), "--num-heads", "0"])
    assert exc.value.code == 2 and "num_heads must be a positive int" in capsys.readouterr().err


def test_more_query_heads_than_the_kernel_takes_are_refused(tmp_path, capsys):
    from mla_backend.ops import MAX_H_Q

    tiny_model.config(num_heads=MAX_H_Q)
    with pytest.raises(ValueError, match=f"num_heads must be at most {MAX_H_Q}"):
        tiny_model.generate(tmp_path / "x", num_heads=MAX_H_Q + 1)
    with pytest.raises(SystemExit) as exc:
        tiny_model.main([str(tmp_path / "bad"), "--num-heads", str(MAX_H_Q + 1)])
    assert exc.value.code == 2 and f"at most {MAX_H_Q}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "bad").exists()


def test_lm_head_std_scales_only_the_output_head(tmp_path):
    from safetensors.torch import load_file

    base = load_file(str(tiny_model.generate(tmp_path / "base", num_layers=1) / "model.safetensors"))
    peaked = load_file(str(tiny_model.generate(tmp_path / "peaked", num_layers=1, lm_head_std=0.2) /
                           "model.safetensors"))
    assert abs(peaked["lm_head.weight"].float().std().item() - 0.2) < 0.01
    assert all(torch.equal(base[name], peaked[name]) for name in base if name != "lm_head.weight")
    with pytest.raises(ValueError, match="lm_head_std must be positive"):
        tiny_model.generate(tmp_path / "bad", num_layers=1, lm_head_std=0.0)

"""A tiny DeepSeek-V2-architecture checkpoint, generated locally: the default model of `mla-backend serve`, and
the checkpoint the vLLM tests (tests/test_vllm_*.py on CPU, integration_tests/ on a GPU) parse their config from.

The attention is real DeepSeek MLA (kv_lora_rank 512, qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128,
16 heads like DeepSeek-V2-Lite or V3 at TP=8, YaRN RoPE), so vLLM's KV cache and our decode kernel see exactly the
shapes and softmax scale a real DeepSeek model gives them. Everything else is DeepSeek-V2-Lite's layout scaled
down: q_proj without a LoRA, layer 0 a dense MLP, layer 1 a MoE with routed and shared experts, hidden size 256,
a byte-level tokenizer of 256 byte tokens plus BOS/EOS, random weights (~8M parameters, 16 MB in bf16).
Its replies are noise; it exists so the serving path can be exercised with nothing downloaded.

    from mla_backend.models import tiny_model
    path = tiny_model.ensure()          # ~/.cache/mla_backend/models/tiny-deepseek-v2-<hash>, made once
    tiny_model.generate(other_dir)      # or anywhere
    tiny_model.generate(other_dir, num_layers=1, num_heads=32)  # one dense layer, DeepSeek-V3's 128 heads at TP=4

    python -m mla_backend.models.tiny_model OUT_DIR [--num-layers 2] [--num-heads 16] [--seed 0]

num_layers and num_heads are the only shape parameters (defaults: CONFIG's 2 and 16); the MLA dims, the YaRN
RoPE (163840 positions) and the tokenizer are the same for every shape. Layer 0 is always the dense one, so
num_layers=1 is a dense-only checkpoint. Random weights give near-flat logits: compare backends with
teacher-forced logprobs, not by demanding identical greedy text.

Needs torch, safetensors and tokenizers (all three come with vLLM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

NAME = "tiny-deepseek-v2"
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
BOS_ID, EOS_ID = 256, 257  # after the 256 byte tokens
SEED = 0
FORMAT = 1  # bump when the generated files change for the same CONFIG

# config.json, in the field set of deepseek-ai/DeepSeek-V2-Lite's.
CONFIG = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "vocab_size": 258,
    "hidden_size": 256,
    "intermediate_size": 512,
    "moe_intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "q_lora_rank": None,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "scoring_func": "softmax",
    "norm_topk_prob": False,
    "routed_scaling_factor": 1.0,
    "hidden_act": "silu",
    "max_position_embeddings": 163840,
    "rope_theta": 10000,
    "rope_scaling": {
        "type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
        "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707,
    },
    "rms_norm_eps": 1e-6,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
    "bos_token_id": BOS_ID,
    "eos_token_id": EOS_ID,
    "use_cache": True,
    "torch_dtype": "bfloat16",
}

# DeepSeek-V2-Chat's prompt format: "User: ...\n\nAssistant: ...<eos>".
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

TOKENIZER_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": BOS,
    "eos_token": EOS,
    "pad_token": EOS,
    "model_max_length": CONFIG["max_position_embeddings"],
    "clean_up_tokenization_spaces": False,
    "chat_template": CHAT_TEMPLATE,
}

GENERATION_CONFIG = {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID}


NUM_LAYERS = CONFIG["num_hidden_layers"]
NUM_HEADS = CONFIG["num_attention_heads"]


def config(*, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS) -> dict:
    """config.json for this shape: CONFIG with its layer and attention-head counts replaced.

    num_heads is the per-GPU head count vLLM sees (DeepSeek-V3's 128 heads at tensor parallel TP: 128 / TP), at
    most the kernel's h_q limit.
    """
    from ..ops import MAX_H_Q

    for name, value in (("num_layers", num_layers), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if num_heads > MAX_H_Q:
        raise ValueError(f"num_heads must be at most {MAX_H_Q} (the kernel's query heads per GPU), got {num_heads}")
    return {**CONFIG, "num_hidden_layers": num_layers, "num_attention_heads": num_heads,
            "num_key_value_heads": num_heads}


def cache_key(*, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS, seed: int = SEED) -> str:
    """Hash of everything the generated files depend on."""
    cfg = config(num_layers=num_layers, num_heads=num_heads)
    spec = json.dumps([FORMAT, seed, cfg, TOKENIZER_CONFIG, GENERATION_CONFIG], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def default_dir(*, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS) -> Path:
    """`$MLA_BACKEND_CACHE/models/tiny-deepseek-v2-<key>`, default root `~/.cache/mla_backend`."""
    root = os.environ.get("MLA_BACKEND_CACHE") or Path.home() / ".cache" / "mla_backend"
    return Path(root) / "models" / f"{NAME}-{cache_key(num_layers=num_layers, num_heads=num_heads)}"


def ensure(directory: Path | None = None, *, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS) -> Path:
    """The checkpoint directory, generated first if it is not complete there yet."""
    shape = dict(num_layers=num_layers, num_heads=num_heads)
    directory = Path(directory) if directory is not None else default_dir(**shape)
    if (directory / "DONE").is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Generated beside the target and renamed into place, so no process ever sees half a checkpoint.
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        generate(tmp, **shape)
        try:
            tmp.rename(directory)
        except OSError:
            if not (directory / "DONE").is_file():  # not a concurrent generator winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def generate(directory: Path, seed: int = SEED, *, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS,
             lm_head_std: float | None = None) -> Path:
    """Write config.json, model.safetensors, tokenizer.json, tokenizer_config.json and generation_config.json
    into `directory` (created), and return it.

    lm_head_std (default: initializer_range, 0.02) sets how peaked the logits are: at 0.02 they are nearly flat,
    so greedy text flips on rounding noise; ~0.2 gives a test model whose greedy continuations mean something.
    """
    shape = dict(num_layers=num_layers, num_heads=num_heads)
    return write_checkpoint(directory, config(**shape), seed, lm_head_std=lm_head_std,
                            key=cache_key(seed=seed, **shape))


def write_checkpoint(directory: Path, cfg: dict, seed: int = SEED, *, lm_head_std: float | None = None,
                     key: str | None = None, tokenizer=None) -> Path:
    """The checkpoint files for any config in this module's field set (CONFIG's, with a q LoRA or without), random
    weights from `seed`, `tokenizer` (default build_tokenizer()'s); DONE (holding `key`, default a hash of cfg and
    seed) last."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = weights_for(cfg, seed)
    if lm_head_std is not None:
        if not lm_head_std > 0:
            raise ValueError(f"lm_head_std must be positive, got {lm_head_std!r}")
        weights["lm_head.weight"] = (weights["lm_head.weight"].float() * (lm_head_std / cfg["initializer_range"])
                                     ).bfloat16()
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (tokenizer or build_tokenizer()).save(str(directory / "tokenizer.json"))
    for name, content in (("config.json", cfg), ("tokenizer_config.json", TOKENIZER_CONFIG),
                          ("generation_config.json", GENERATION_CONFIG)):
        (directory / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    if key is None:
        spec = json.dumps([FORMAT, seed, cfg, TOKENIZER_CONFIG, GENERATION_CONFIG], sort_keys=True)
        key = hashlib.sha256(spec.encode()).hexdigest()[:12]
    (directory / "DONE").write_text(key + "\n")
    return directory


def random_weights(seed: int = SEED, *, num_layers: int = NUM_LAYERS, num_heads: int = NUM_HEADS) -> dict:
    """Every tensor of the checkpoint, by its Hugging Face name: norms 1, the rest N(0, initializer_range)."""
    return weights_for(config(num_layers=num_layers, num_heads=num_heads), seed)


def weights_for(cfg: dict, seed: int = SEED) -> dict:
    """random_weights for any config in this module's field set."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    std = cfg["initializer_range"]
    weights = {}
    for name, shape in _shapes(cfg).items():
        if name.endswith("norm.weight"):
            tensor = torch.ones(shape)
        else:
            tensor = torch.randn(shape, generator=gen) * std
        weights[name] = tensor.to(torch.bfloat16)
    return weights


def _shapes(c: dict) -> dict[str, tuple[int, ...]]:
    hidden, heads = c["hidden_size"], c["num_attention_heads"]
    qk_head = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], hidden)}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes.update({p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,)})
        if c["q_lora_rank"] is None:
            shapes[p + "self_attn.q_proj.weight"] = (heads * qk_head, hidden)
        else:  # DeepSeek-V2 / V3's q LoRA: hidden -> q_lora_rank (normed) -> heads * qk_head
            shapes.update({p + "self_attn.q_a_proj.weight": (c["q_lora_rank"], hidden),
                           p + "self_attn.q_a_layernorm.weight": (c["q_lora_rank"],),
                           p + "self_attn.q_b_proj.weight": (heads * qk_head, c["q_lora_rank"])})
        shapes.update({
            p + "self_attn.kv_a_proj_with_mqa.weight": (c["kv_lora_rank"] + c["qk_rope_head_dim"], hidden),
            p + "self_attn.kv_a_layernorm.weight": (c["kv_lora_rank"],),
            p + "self_attn.kv_b_proj.weight": (heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]),
            p + "self_attn.o_proj.weight": (hidden, heads * c["v_head_dim"]),
        })
        if layer < c["first_k_dense_replace"]:
            shapes.update(_mlp(p + "mlp.", hidden, c["intermediate_size"]))
            continue
        shapes[p + "mlp.gate.weight"] = (c["n_routed_experts"], hidden)
        for expert in range(c["n_routed_experts"]):
            shapes.update(_mlp(f"{p}mlp.experts.{expert}.", hidden, c["moe_intermediate_size"]))
        shapes.update(_mlp(p + "mlp.shared_experts.", hidden, c["moe_intermediate_size"] * c["n_shared_experts"]))
    shapes["model.norm.weight"] = (hidden,)
    shapes["lm_head.weight"] = (c["vocab_size"], hidden)
    return shapes


def _mlp(prefix: str, hidden: int, inner: int) -> dict[str, tuple[int, int]]:
    return {prefix + "gate_proj.weight": (inner, hidden), prefix + "up_proj.weight": (inner, hidden),
            prefix + "down_proj.weight": (hidden, inner)}


def build_tokenizer():
    """Byte-level BPE without merges: one token per UTF-8 byte (ids 0-255 in byte order), then BOS and EOS.

    Any text round-trips; encoding adds BOS in front, as DeepSeek's tokenizer does.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: byte for byte, char in _byte_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return _with_bos_and_eos(tokenizer)


def build_character_tokenizer():
    """The same 258 ids, but token i < 256 is the one character U+0100 + i (Latin Extended letters), then BOS and EOS.

    For checkpoints whose output is random token ids (serving benchmarks): any sequence of them is valid text of
    one character a token, as a real vocabulary's pieces are. Random bytes from build_tokenizer() are mostly invalid
    UTF-8, and an engine's incremental detokenizer then re-decodes the growing undecodable tail every step (vLLM
    0.26: 0.7 ms a request a step on the H200's host). Encodes only those 256 characters.
    """
    from tokenizers import Tokenizer, decoders, models

    vocab = {chr(0x100 + i): i for i in range(256)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.decoder = decoders.Fuse()
    return _with_bos_and_eos(tokenizer)


def _with_bos_and_eos(tokenizer):
    """BOS and EOS as ids 256 and 257, and BOS in front of every encoding, as DeepSeek's tokenizer does."""
    from tokenizers import AddedToken, processors

    tokenizer.add_special_tokens([AddedToken(BOS, special=True, normalized=False),
                                  AddedToken(EOS, special=True, normalized=False)])
    assert tokenizer.token_to_id(BOS) == BOS_ID and tokenizer.token_to_id(EOS) == EOS_ID
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, BOS_ID)])
    return tokenizer


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the rest are shifted past 255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, shift = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shift)
            shift += 1
    return mapping


def main(argv: list[str] | None = None) -> int:
    from ..ops import MAX_H_Q

    parser = argparse.ArgumentParser(
        prog="python -m mla_backend.models.tiny_model",
        description="Write a tiny DeepSeek-V2-architecture checkpoint (real MLA dims, random weights, local "
                    "tokenizer and chat template) into OUT_DIR: everything `vllm serve OUT_DIR` needs, offline.")
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument("--num-layers", type=int, default=NUM_LAYERS,
                        help=f"decoder layers; layer 0 is dense, the rest MoE (default {NUM_LAYERS})")
    parser.add_argument("--num-heads", type=int, default=NUM_HEADS,
                        help=f"attention heads, 1..{MAX_H_Q}, e.g. 128 / TP for DeepSeek-V3 at tensor parallel TP "
                             f"(default {NUM_HEADS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"weights' random seed (default {SEED})")
    parser.add_argument("--lm-head-std", type=float,
                        help="std of lm_head's weights (default 0.02: near-flat logits; 0.2: peaked)")
    args = parser.parse_args(argv)
    try:
        directory = generate(Path(args.out_dir), args.seed, num_layers=args.num_layers, num_heads=args.num_heads,
                             lm_head_std=args.lm_head_std)
    except ValueError as exc:
        parser.error(str(exc))
    print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

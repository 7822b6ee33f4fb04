"""What we hand to vLLM: the YAML configs in configs/, the command lines of `mla-backend serve`, its default
tiny model, and the Databricks / SageMaker recipes in docs/.

Without vLLM: config keys, the memory math of each header recomputed, the docs' scripts (bash -n, shellcheck
where installed, the SageMaker entrypoint run against stand-ins), the Dockerfile's structure and the docs'
Python snippets. With vLLM installed (CI's vLLM step): every config and the wrapper's command lines go through
vLLM's own `vllm serve` argument parser, which must read attention backend CUSTOM and block size 64; vLLM's
ModelConfig must accept the tiny checkpoint as an MLA model with head size 576; the notebook's `LLM(...)`
keywords must be EngineArgs fields.
"""

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from mla_backend.cli import serve
from mla_backend.models import tiny_model

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
GIB = 2**30
MLA_BYTES_PER_TOKEN_PER_LAYER = (512 + 64) * 2
LAYERS = {"deepseek-ai/DeepSeek-V2-Lite-Chat": 27, "deepseek-ai/DeepSeek-V2-Chat": 60, "deepseek-ai/DeepSeek-V3": 61}
NUMBER = r"[\d,.]+"


def num(text: str) -> float:
    return float(text.replace(",", ""))


def load(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    return yaml.safe_load(text), header


def test_the_four_p5_deployments_are_there():
    found = set()
    for path in CONFIGS:
        config, _ = load(path)
        found.add((path.name.split("-")[0], config["model"], config["tensor-parallel-size"],
                   config.get("pipeline-parallel-size", 1), config.get("distributed-executor-backend")))
    assert found == {
        ("p5", "deepseek-ai/DeepSeek-V2-Lite-Chat", 1, 1, None),
        ("p5", "deepseek-ai/DeepSeek-V2-Chat", 8, 1, None),
        ("p5en", "deepseek-ai/DeepSeek-V3", 8, 1, None),
        ("p5x2", "deepseek-ai/DeepSeek-V3", 8, 2, "ray"),
    }


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_selects_our_backend_and_block_size(path):
    config, header = load(path)
    assert config["attention-backend"] == "CUSTOM" and config["block-size"] == 64
    assert config.get("kv-cache-dtype", "auto") == "auto"  # bf16/fp16 until the fp8 KV path has run on a GPU
    assert f"--config configs/{path.name}" in header


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_says_whether_it_was_served_on_a_gpu(path):
    _, header = load(path)
    assert re.search(r"^# Served on a GPU: (yes|not yet)\b", header, flags=re.MULTILINE), path.name


@pytest.mark.parametrize("path", [p for p in CONFIGS if "deepseek-v3" in p.name], ids=lambda p: p.name)
def test_deepseek_v3_configs_say_the_disk_and_the_start_timeout_they_need(path):
    _, header = load(path)
    assert "~690 GB on disk (163 safetensors files, 642 GiB)" in header and "HF_HOME on the instance NVMe" in header
    assert f"VLLM_ENGINE_READY_TIMEOUT_S={serve.DEFAULT_READY_TIMEOUT_S}" in header
    assert f"waits up to {serve.DEFAULT_READY_TIMEOUT_S} s" in header
    assert "docs/p5en-deepseek-v3.md" in header and (REPO / "docs" / "p5en-deepseek-v3.md").is_file()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_header_memory_math_adds_up(path):
    config, header = load(path)
    assert "Memory math" in header

    usable = re.search(rf"usable memory:\s+({NUMBER}) GiB x gpu-memory-utilization ({NUMBER}) = ({NUMBER}) GiB", header)
    assert usable, "usable memory line"
    assert num(usable[2]) == config["gpu-memory-utilization"]
    assert num(usable[1]) * num(usable[2]) == pytest.approx(num(usable[3]), abs=0.05)

    kv = re.search(rf"KV cache:\s+({NUMBER}) - ({NUMBER}) - ({NUMBER}) = ({NUMBER}) GiB", header)
    assert kv, "KV cache line"
    assert num(kv[1]) == num(usable[3])
    assert num(kv[1]) - num(kv[2]) - num(kv[3]) == pytest.approx(num(kv[4]), abs=0.05)

    per_token = re.search(rf"KV cache per token:\s+(\d+) layers x \(512 \+ 64\) x 2 B = ({NUMBER}) B", header)
    assert per_token, "KV cache per token line"
    layers = math.ceil(LAYERS[config["model"]] / config.get("pipeline-parallel-size", 1))
    assert int(per_token[1]) == layers
    assert num(per_token[2]) == layers * MLA_BYTES_PER_TOKEN_PER_LAYER

    fit = re.search(rf"tokens that fit:\s+({NUMBER}) GiB / ({NUMBER}) B = ({NUMBER}) tokens = (\d+) requests of "
                    rf"max-model-len ({NUMBER})", header)
    assert fit, "tokens that fit line"
    assert num(fit[1]) == num(kv[4]) and num(fit[2]) == num(per_token[2])
    tokens = num(fit[3])
    assert tokens == pytest.approx(num(fit[1]) * GIB / num(fit[2]), rel=0.01)
    assert num(fit[5]) == config["max-model-len"]
    assert int(fit[4]) == int(tokens // config["max-model-len"]) >= 1


def test_p5en_fp8_kv_memory_math_halves_the_bytes_per_token():
    """DeepSeek-V3 at TP 8 has 16 query heads per GPU: fp8 KV is allowed there, at 576 bytes a token and layer."""
    path = REPO / "configs" / "p5en-h200-deepseek-v3-fp8-tp8.yaml"
    config, header = load(path)
    from mla_backend.engine_limits import unsupported_reasons

    heads = 128 // config["tensor-parallel-size"]
    assert unsupported_reasons(page_flag="--block-size", kv_cache_dtype="fp8", num_q_heads=heads, q_len=2) == []
    fp8 = re.search(rf"with fp8 KV:\s+(\d+) layers x \(512 \+ 64\) x 1 B = ({NUMBER}) B per token \(576 bytes per "
                    rf"layer instead of 1152\),\s*#\s+({NUMBER}) GiB / ({NUMBER}) B = ({NUMBER}) tokens = (\d+) "
                    rf"requests of max-model-len ({NUMBER})", header)
    assert fp8, "fp8 KV line"
    layers = LAYERS[config["model"]]
    assert int(fp8[1]) == layers and num(fp8[2]) == num(fp8[4]) == layers * MLA_BYTES_PER_TOKEN_PER_LAYER / 2
    kv = re.search(rf"KV cache:\s+{NUMBER} - {NUMBER} - {NUMBER} = ({NUMBER}) GiB", header)
    assert num(fp8[3]) == num(kv[1])
    assert num(fp8[5]) == pytest.approx(num(fp8[3]) * GIB / num(fp8[4]), rel=0.01)
    assert int(fp8[6]) == int(num(fp8[5]) // config["max-model-len"]) and num(fp8[7]) == config["max-model-len"]


# --- docs/: Databricks and SageMaker ----------------------------------------------------------------------------

DOCS = REPO / "docs"
SCRIPTS = [DOCS / "databricks" / "init-mla-backend.sh", DOCS / "sagemaker" / "serve"]
DOCKERFILE = DOCS / "sagemaker" / "Dockerfile"
DOCKER_INSTRUCTIONS = {"FROM", "ARG", "RUN", "COPY", "ADD", "ENV", "WORKDIR", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL",
                       "USER", "VOLUME", "SHELL", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD"}


def fenced_blocks(markdown: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", markdown.read_text(), flags=re.MULTILINE | re.DOTALL)


def notebook_llm_kwargs() -> dict:
    """The keyword arguments of the `LLM(...)` call in the Databricks notebook snippet."""
    tree = ast.parse(fenced_blocks(DOCS / "databricks.md", "python")[0])
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LLM")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_doc_scripts_are_valid_bash(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)
    if shutil.which("shellcheck"):
        result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout


def test_doc_python_snippets_parse():
    for doc in ("databricks.md", "sagemaker.md"):
        blocks = fenced_blocks(DOCS / doc, "python")
        assert blocks, doc
        for block in blocks:
            compile(block, doc, "exec")


def test_databricks_notebook_selects_our_backend():
    kwargs = notebook_llm_kwargs()
    assert kwargs["attention_backend"] == "CUSTOM" and kwargs["block_size"] == 64


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    assert not current, "a continuation line at the end"
    return [tuple(re.split(r"\s+", line, maxsplit=1)) for line in logical]


def test_sagemaker_dockerfile_parses():
    instructions = dockerfile_instructions(DOCKERFILE)
    assert all(name in DOCKER_INSTRUCTIONS for name, _ in instructions), instructions
    names = [name for name, _ in instructions]
    assert set(names[:names.index("FROM")]) <= {"ARG"}  # only ARGs before the first stage
    stages = [args.split()[-1] for name, args in instructions if name == "FROM" and " AS " in args]
    for name, args in instructions:
        if name == "RUN":
            subprocess.run(["bash", "-n", "-c", args], check=True)
        if name == "COPY":
            parts = args.split()
            if parts[0].startswith("--from="):
                assert parts[0].split("=", 1)[1] in stages
            else:
                assert all((REPO / source).exists() for source in parts[:-1]), args
        if name == "ENTRYPOINT":
            assert json.loads(args) == ["/usr/local/bin/serve"]


@pytest.fixture
def stand_ins(tmp_path):
    """`mla-backend` (doctor passes) and `vllm` (prints its arguments as JSON) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mla-backend").write_text("#!/bin/sh\necho doctor-table\n")
    (bin_dir / "vllm").write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("env, model", [
    ({}, ["/opt/ml/model"]),
    ({"MODEL_ID": "deepseek-ai/DeepSeek-V2-Lite-Chat"}, ["deepseek-ai/DeepSeek-V2-Lite-Chat"]),
    ({"MLA_CONFIG": str(REPO / "configs" / "p5-h100-deepseek-v2-lite-chat-tp1.yaml")}, []),
])
def test_sagemaker_entrypoint_serves_on_8080_with_our_backend(stand_ins, env, model):
    result = subprocess.run([str(DOCS / "sagemaker" / "serve"), "serve"], env={**stand_ins, **env,
                            "VLLM_ARGS": "--max-model-len 4096 -tp 1"}, capture_output=True, text=True, check=True)
    doctor_line, vllm_line = result.stdout.splitlines()
    assert doctor_line == "doctor-table"
    args = json.loads(vllm_line)
    config = ["--config", env["MLA_CONFIG"]] if "MLA_CONFIG" in env else []
    assert args == ["serve", *model, "--host", "0.0.0.0", "--port", "8080", "--attention-backend", "CUSTOM",
                    "--block-size", "64", *config, "--max-model-len", "4096", "-tp", "1"]


@pytest.mark.parametrize("env, expected", [({}, str(serve.DEFAULT_READY_TIMEOUT_S)),
                                           ({"VLLM_ENGINE_READY_TIMEOUT_S": "1200"}, "1200")])
def test_sagemaker_entrypoint_gives_vllms_engine_time_to_load_deepseek_v3(stand_ins, tmp_path, env, expected):
    (tmp_path / "bin" / "vllm").write_text("#!/bin/sh\necho \"$VLLM_ENGINE_READY_TIMEOUT_S\"\n")
    base = {k: v for k, v in stand_ins.items() if k != "VLLM_ENGINE_READY_TIMEOUT_S"}
    result = subprocess.run([str(DOCS / "sagemaker" / "serve"), "serve"], env={**base, **env},
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == expected


def test_sagemaker_entrypoint_stops_when_doctor_fails(stand_ins, tmp_path):
    (tmp_path / "bin" / "mla-backend").write_text("#!/bin/sh\necho 'GPU FAIL'\nexit 1\n")
    result = subprocess.run([str(DOCS / "sagemaker" / "serve"), "serve"], env=stand_ins, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 1 and result.stdout.strip() == "GPU FAIL"


# --- through vLLM's own parser ----------------------------------------------------------------------------------

needs_vllm = pytest.mark.skipif(find_spec("vllm") is None,
                                reason="vLLM is not installed here (CI's vLLM step installs it and runs this file)")

# Run in a fresh interpreter: vLLM resolves its platform once per process, and on a machine without a GPU it
# must be told to use the CPU one before its argument parser is built.
VLLM_PROBE = textwrap.dedent('''
    import json, os, sys
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")  # vLLM >= 0.33 reads this
    import vllm.platforms as platforms
    if platforms.resolve_current_platform_cls_qualname().endswith("UnspecifiedPlatform"):
        from vllm.platforms.cpu import CpuPlatform
        platforms._current_platform = CpuPlatform()  # what vLLM 0.26 does for `vllm bench` without a GPU
    import vllm
    from vllm.config import CacheConfig, ModelConfig
    from vllm.config.attention import AttentionConfig
    from vllm.utils.argparse_utils import FlexibleArgumentParser
    try:
        from vllm.entrypoints.common.cli_args import make_arg_parser  # vLLM 0.33
    except ImportError:
        from vllm.entrypoints.openai.cli_args import make_arg_parser  # vLLM 0.26

    # `vllm serve`'s parser, built as vllm.entrypoints.cli.serve.ServeSubcommand.subparser_init builds it
    # (importing that module would also import the HTTP server stack, which parsing does not need).
    parser = FlexibleArgumentParser()
    make_arg_parser(parser.add_subparsers(dest="subparser").add_parser("serve"))
    request = json.load(sys.stdin)
    parsed = []
    for argv in request["commands"]:
        args = parser.parse_args(argv)
        parsed.append({"model": args.model_tag or args.model, "backend": str(args.attention_backend),
                       "enum": AttentionConfig(backend=args.attention_backend).backend.name,
                       "block_size": CacheConfig(block_size=args.block_size).block_size,
                       "tp": args.tensor_parallel_size, "pp": args.pipeline_parallel_size,
                       "executor": args.distributed_executor_backend})
    model = ModelConfig(model=request["tiny_model"])
    import dataclasses
    from vllm.engine.arg_utils import EngineArgs
    fields = {field.name for field in dataclasses.fields(EngineArgs)}
    print(json.dumps({"vllm": vllm.__version__, "parsed": parsed,
                      "unknown_llm_kwargs": sorted(set(request["llm_kwargs"]) - fields),
                      "tiny": {"use_mla": model.use_mla, "head_size": model.get_head_size(),
                               "architectures": model.architectures}}))
''')


@pytest.fixture(scope="module")
def vllm_probe(tmp_path_factory):
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    tiny = tiny_model.generate(tmp_path_factory.mktemp("tiny"))
    commands = [["serve", "--config", str(path)] for path in CONFIGS]
    # The wrapper's own command lines, without the program: with a config, with a hub id, the tiny default.
    for model, config in ((None, CONFIGS[0]), ("deepseek-ai/DeepSeek-V2-Lite-Chat", None), (None, None)):
        command = serve.plan(model, None if config is None else str(config), ["-tp", "2"]).command
        commands.append(command[command.index("serve"):])
    result = subprocess.run([sys.executable, "-c", VLLM_PROBE], input=json.dumps(
        {"commands": commands, "tiny_model": str(tiny), "llm_kwargs": list(notebook_llm_kwargs())}),
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return {"commands": commands, **json.loads(result.stdout.strip().splitlines()[-1])}


@needs_vllm
def test_vllm_parser_reads_custom_backend_and_block_64_from_every_config(vllm_probe):
    for path, parsed in zip(CONFIGS, vllm_probe["parsed"], strict=False):
        config, _ = load(path)
        assert parsed["backend"] == "CUSTOM" and parsed["enum"] == "CUSTOM", path.name
        assert parsed["block_size"] == 64, path.name
        assert parsed["model"] == config["model"], path.name
        assert (parsed["tp"], parsed["pp"]) == (config["tensor-parallel-size"], config.get("pipeline-parallel-size", 1))
        assert parsed["executor"] == config.get("distributed-executor-backend")


@needs_vllm
def test_vllm_parser_accepts_the_command_lines_of_mla_backend_serve(vllm_probe):
    wrapper = vllm_probe["parsed"][len(CONFIGS):]
    assert [p["model"] for p in wrapper] == [
        load(CONFIGS[0])[0]["model"], "deepseek-ai/DeepSeek-V2-Lite-Chat", str(tiny_model.default_dir())]
    for parsed in wrapper:  # the wrapper's options, and -tp 2 over the config's value (command line > config)
        assert parsed["enum"] == "CUSTOM" and parsed["block_size"] == 64 and parsed["tp"] == 2


@needs_vllm
def test_vllm_accepts_the_tiny_model_as_an_mla_model(vllm_probe):
    tiny = vllm_probe["tiny"]
    assert tiny["architectures"] == ["DeepseekV2ForCausalLM"]
    assert tiny["use_mla"] is True and tiny["head_size"] == 576  # kv_lora_rank 512 + rope 64: our kernel's shape


@needs_vllm
def test_databricks_notebook_llm_keywords_are_vllm_engine_args(vllm_probe):
    assert vllm_probe["unknown_llm_kwargs"] == []

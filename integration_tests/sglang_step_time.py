"""Time per decode step of SGLang's model runner alone, per attention backend: SGLang's own
`sglang.benchmark.one_batch` (a prefill, then `model_runner.decode` steps, each timed to a synchronize: the CUDA
graph replay, the backend's replay preparation and the sampling, without the scheduler, the HTTP server or the
detokenizer) run once per backend, with SGLang's plugins loaded first so that `--attention-backend mla_backend`
parses. It separates what our backend costs per step from what the serving path around it costs: the e2e
driver's decode tokens/s (sglang_e2e.py) include both.

    python integration_tests/sglang_step_time.py [--model DIR] [--backends flashmla,triton,mla_backend]
        [--batch-size 1 64] [--input-len 2000] [--output-len 256] [--out step_time.json] [--profile]

Without --model it serves e2e_common's tiny checkpoint (made in --workdir). The prompts are random letters, one
per line of a --prompt-filename file; with the tiny model's byte tokenizer a letter is a token, other tokenizers
make the prompts shorter. one_batch draws its own synthetic ids below 10000 for its warm-up whatever the prompt
file says, past the tiny model's 258-token vocabulary: the embedding's out-of-range read surfaced as a CUBLAS error
in the warm-up's prefill, for every backend (H200, SGLang 0.5.17). So the runner draws those ids below the
checkpoint's vocab_size instead (RUN_ONE_BATCH). --profile adds a
torch-profiler trace of the decode steps per backend (one_batch's --profile --profile-stage decode;
SGLANG_TORCH_PROFILER_DIR says where), which shows the host time between graph replays.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import e2e_common  # noqa: E402

BACKENDS = ("flashmla", "triton", "mla_backend")
# What launch_server does before it parses arguments (load_plugins), then SGLang's benchmark as `python -m` runs it
# (its cli_main), with its synthetic warm-up ids drawn below the vocabulary size given as the first argument.
RUN_ONE_BATCH = """
import sys
import numpy as np
from sglang.srt.plugins import load_plugins
load_plugins()
import sglang.benchmark.one_batch as one_batch
vocab_size = int(sys.argv.pop(1))
synthetic = one_batch.prepare_synthetic_inputs_for_latency_test
def inputs_in_vocab(batch_size, input_len, custom_inputs=None):
    if not custom_inputs:
        custom_inputs = np.random.randint(0, vocab_size, (batch_size, input_len), dtype=np.int32).tolist()
    return synthetic(batch_size, input_len, custom_inputs)
one_batch.prepare_synthetic_inputs_for_latency_test = inputs_in_vocab
sys.argv[0] = "one_batch"
one_batch.cli_main()
"""
SERVER_ARGS = ("--page-size", "64", "--dtype", "bfloat16", "--context-length", "4096", "--mem-fraction-static", "0.4",
               "--disable-radix-cache", "--disable-prefill-cuda-graph")


def write_prompts(path: Path, count: int, length: int, seed: int = 0) -> Path:
    """`count` lines of `length` random letters: prompts every tokenizer maps to ids inside its vocabulary."""
    rng = random.Random(seed)
    path.write_text("".join("".join(rng.choices(string.ascii_letters, k=length)) + "\n" for _ in range(count)))
    return path


def command(model: Path, backend: str, args: argparse.Namespace, result_file: Path, prompt_file: Path) -> list[str]:
    vocab_size, _ = e2e_common.vocabulary(model)
    cmd = [sys.executable, "-c", RUN_ONE_BATCH, str(vocab_size), "--model-path", str(model),
           "--attention-backend", backend,
           *SERVER_ARGS, "--prompt-filename", str(prompt_file),
           "--cuda-graph-max-bs-decode", str(max(args.batch_size)),
           "--batch-size", *map(str, args.batch_size), "--input-len", str(args.input_len),
           "--output-len", str(args.output_len), "--result-filename", str(result_file), "--run-name", backend]
    if args.profile:
        cmd += ["--profile", "--profile-stage", "decode", "--profile-prefix", f"{backend}_decode"]
    return cmd


def read_results(result_file: Path) -> dict[str, float]:
    """{batch size: median ms per decode step} from one_batch's result lines."""
    steps = {}
    for line in result_file.read_text().splitlines():
        entry = json.loads(line)
        if "median_decode_latency" in entry:
            steps[str(entry["batch_size"])] = entry["median_decode_latency"] * 1e3
    return steps


def summarize(results: dict[str, dict[str, float]], reference: str = "flashmla") -> dict:
    """Per backend and batch size: ms per step, tokens/s, and ms more per step than the reference."""
    summary = {}
    for backend, steps in results.items():
        rows = {}
        for bs, ms in steps.items():
            row = {"ms_per_step": round(ms, 4), "tokens_per_s": round(int(bs) * 1e3 / ms, 1)}
            if reference in results and bs in results[reference]:
                row["ms_more_than_" + reference] = round(ms - results[reference][bs], 4)
            rows[bs] = row
        summary[backend] = rows
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint directory (default: the tiny one, made in --workdir)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mla_sglang_step_time"))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--input-len", type=int, default=2000)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        model = e2e_common.checkpoint(args.workdir / "tiny_lmhead02")
    prompt_file = write_prompts(args.workdir / "prompts.txt", max(args.batch_size), args.input_len)
    results, errors = {}, {}
    for backend in args.backends.split(","):
        result_file = args.workdir / f"one_batch_{backend}.jsonl"
        result_file.unlink(missing_ok=True)
        log = args.workdir / f"one_batch_{backend}.log"
        with open(log, "w") as out:
            done = subprocess.run(command(model, backend, args, result_file, prompt_file), stdout=out,
                                  stderr=subprocess.STDOUT,
                                  env={**os.environ, "SGLANG_TORCH_PROFILER_DIR": str(args.workdir)})
        if done.returncode != 0 or not result_file.is_file():
            errors[backend] = f"exit {done.returncode}; log {log}:\n" + log.read_text()[-3000:]
            print(f"[one_batch] {backend} FAILED\n{errors[backend]}", flush=True)
            continue
        results[backend] = read_results(result_file)
        print(f"[one_batch] {backend}: ms per decode step {results[backend]}", flush=True)
    report = {"model": str(model), "input_len": args.input_len, "output_len": args.output_len,
              "steps": summarize(results), "errors": errors}
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""`mla-backend`: doctor | bench | serve | bundle.

  mla-backend doctor [--build] [--verbose] [--json]
      can this machine run the kernel? (exit 0: yes)
  mla-backend bench [--quick | --configs ...] [--peers DIR] [options]
      run benchmarks/bench_decode.py, print and plot its results
  mla-backend bench --plot RESULTS.json [--png OUT.png]
  mla-backend serve [MODEL | --model MODEL] [--config FILE] [--once]
                    [--dry-run] [vllm serve options]
  mla-backend bundle build --out DIR | bundle unpack DIR --target SITE
      vLLM for a host without PyPI"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mla-backend", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1],
        description="Check a machine for the mla_backend kernel, benchmark it, serve DeepSeek models through vLLM "
                    "with it.")
    parser.add_argument("--version", action="version", version=f"mla-backend {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{doctor,bench,serve,bundle}")

    doctor = commands.add_parser(
        "doctor", help="check GPU, driver, CUDA, torch, nvcc, CUTLASS, the extension, vLLM/SGLang",
        description="Check whether this machine can run the mla_backend kernel; exit code 0 if it can. "
                    "Every missing piece is listed with how to fix it.")
    doctor.add_argument("--build", action="store_true",
                        help="build the CUDA extension now if it is not built yet (about 2 minutes, with progress)")
    doctor.add_argument("--verbose", action="store_true", help="show the compiler output while building")
    doctor.add_argument("--json", action="store_true",
                        help='print the checks as JSON ({"can_run": ..., "checks": [{name, status, detail, fix}]})')

    bench = commands.add_parser(
        "bench", allow_abbrev=False,
        help="run benchmarks/bench_decode.py (ours vs the installed peers), print and plot the results",
        description="Run the decode benchmark of the repository checkout (benchmarks/bench_decode.py), print "
                    "its results as a table and write a PNG plot of GB/s and TFLOPS per config and "
                    "implementation. Options not listed here are passed to bench_decode.py "
                    "(--only, --reps, --varlen, --merge, --list, ...; see `python benchmarks/bench_decode.py -h`).")
    which = bench.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="a 9-config subset of the grid (fast)")
    which.add_argument("--configs", help="comma-separated keys like b128/s4096/h16/q1[/varlen]")
    bench.add_argument("--peers", help="peer bundle folder (default: .peers)")
    bench.add_argument("--out-dir", type=Path, help="results folder (default: benchmarks/results)")
    bench.add_argument("--card", help="results file name (default: from the GPU name)")
    bench.add_argument("--plot", type=Path, metavar="RESULTS_JSON",
                       help="only print and plot an existing results file (no GPU needed)")
    bench.add_argument("--png", type=Path, help="where to write the plot (default: the results file with .png)")

    serve = commands.add_parser(
        "serve", help="vllm serve with --attention-backend CUSTOM --block-size 64, then one check request",
        allow_abbrev=False,
        usage="mla-backend serve [MODEL | --model MODEL] [--config FILE] [--once]\n"
              "                         [--dry-run] [vllm serve options]",
        description="Start `vllm serve MODEL --attention-backend CUSTOM --block-size 64 [--config FILE]`, "
                    "send one streamed chat request and print the reply and the decode speed, then keep serving. "
                    "Without MODEL (and no `model:` in the config) the default model is a tiny "
                    "DeepSeek-V2-shaped checkpoint with random weights, generated locally. Options not listed "
                    "here go to `vllm serve` unchanged.")
    serve.add_argument("--model", dest="model_option", metavar="MODEL",
                       help="the model, as the positional MODEL (vLLM's older spelling, accepted the same way)")
    serve.add_argument("--config", help="a vLLM YAML config (`vllm serve --config`), e.g. configs/*.yaml")
    serve.add_argument("--dry-run", action="store_true", help="print the vLLM command and exit")
    serve.add_argument("--once", action="store_true", help="stop the server after the check request")
    serve.add_argument("--no-request", dest="check", action="store_false", help="do not send the check request")
    serve.add_argument("--host", help="passed to vllm serve; the check request goes there")
    serve.add_argument("--port", type=int, help="passed to vllm serve (vLLM's default: 8000)")
    serve.add_argument("--prompt", help="the check request's prompt")
    serve.add_argument("--max-tokens", type=int, default=64, help="tokens to generate for the check (default 64)")
    from . import serve as serve_module

    serve.add_argument("--ready-timeout", "--timeout", dest="timeout", type=float,
                       default=serve_module.DEFAULT_READY_TIMEOUT_S, metavar="SECONDS",
                       help=f"how long to wait for the server to be ready (default "
                            f"{serve_module.DEFAULT_READY_TIMEOUT_S}: DeepSeek-V3 loads slowly); also sets vLLM's "
                            f"{serve_module.VLLM_READY_TIMEOUT_ENV} unless it is set")
    from . import bundle as bundle_module

    bundle = commands.add_parser(
        "bundle", help="pack vLLM and its wheels into parts for a GPU host without PyPI, or unpack them there",
        description=bundle_module.__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    bundle_module.add_arguments(bundle)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    model = None
    # Like `vllm serve`, the model is the first argument after the command; taking it out here keeps argparse
    # from reading the value of an unknown vLLM option as the model.
    if argv[:1] == ["serve"] and len(argv) > 1 and not argv[1].startswith("-"):
        model = argv.pop(1)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "doctor":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        from . import doctor

        return doctor.main(build=args.build, verbose=args.verbose, json_output=args.json)
    if args.command == "bundle":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        from . import bundle

        return bundle.run(args)
    if args.command == "bench":
        from . import bench

        if args.plot is not None:
            if extra:
                parser.error(f"--plot takes no benchmark options: {' '.join(extra)}")
            return bench.show(args.plot, args.png)
        bench_argv = (["--quick"] if args.quick else []) + _opt("--configs", args.configs) + \
            _opt("--peers", args.peers) + _opt("--out-dir", args.out_dir) + _opt("--card", args.card) + extra
        return bench.run(bench_argv, args.out_dir, args.png)
    from . import serve

    if args.model_option is not None:
        if model is not None and model != args.model_option:
            parser.error(f"serve: two models, {model} and --model {args.model_option}: give one")
        model = args.model_option
    return serve.main(model=model, config_path=args.config, vllm_args=extra, host=args.host, port=args.port,
                      dry_run=args.dry_run, once=args.once, check=args.check,
                      prompt=args.prompt or serve.DEFAULT_PROMPT, max_tokens=args.max_tokens, timeout=args.timeout)


def _opt(flag: str, value) -> list[str]:
    return [] if value is None else [flag, str(value)]


if __name__ == "__main__":
    sys.exit(main())

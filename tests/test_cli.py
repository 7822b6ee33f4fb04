"""CPU tests of the `mla-backend` command: doctor's checks and exit code, bench's pass-through, table and plot,
serve's vLLM command lines, its no-GPU path, and its check request against a stand-in OpenAI server."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
from conftest import hopper_available
from torch.utils import cpp_extension

from mla_backend import _build
from mla_backend.cli import bench, doctor, serve
from mla_backend.cli import main as cli
from mla_backend.models import tiny_model

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "h100.json"
needs_no_hopper = pytest.mark.skipif(hopper_available(), reason="checks the path of a machine without a Hopper GPU")


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Messages unwrapped, whatever terminal runs the tests; wrapping is tested with explicit widths."""
    monkeypatch.setenv("COLUMNS", "300")


def run_cli(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


# --- doctor -------------------------------------------------------------------------------------------------


@needs_no_hopper
def test_doctor_without_hopper_gpu_exits_nonzero_with_table_and_fixes(capsys):
    rc, out = run_cli(capsys, "doctor")
    assert rc == 1
    for row in ("torch", "GPU", "NVIDIA driver", "nvcc", "CUTLASS headers", "kernel extension", "vLLM", "SGLang"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row
    assert "Result: this machine cannot run the mla_backend kernel" in out
    assert "To fix:" in out and "Hopper" in out


def test_console_script_runs_doctor():
    script = Path(sys.executable).parent / "mla-backend"
    if not script.is_file():
        pytest.skip("mla-backend is not installed in this environment (the CI venv installs it)")
    result = subprocess.run([str(script), "doctor"], capture_output=True, text=True, timeout=120, check=False)
    assert "Result: this machine" in result.stdout
    assert result.returncode == (0 if hopper_available() else 1)


def test_doctor_rejects_unknown_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["doctor", "--frobnicate"])


@pytest.fixture
def hopper_machine(monkeypatch, tmp_path):
    """This machine as doctor would see an H100 box: CUDA torch, 8 sm_90 GPUs, driver 580, CUDA 13 toolkit,
    CUTLASS, ninja, the extension built."""
    library = tmp_path / "mla_backend_C.so"
    library.write_bytes(b"")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (9, 0))
    smi = {"gpus": [{"name": "NVIDIA H100 80GB HBM3", "compute_cap": "9.0", "driver": "580.159.04",
                     "memory": "81559 MiB"}] * 8, "cuda": "13.0"}
    monkeypatch.setattr(doctor, "nvidia_smi", lambda: smi)
    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0, V13.0.88'\n")
    nvcc.chmod(0o755)
    (tmp_path / "cuda" / "include").mkdir()
    (tmp_path / "cuda" / "include" / "cuda_runtime.h").write_text("")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "cuda"))
    monkeypatch.setattr(_build, "cutlass_include_dir", lambda: tmp_path / "cutlass" / "include")
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: True)
    monkeypatch.setattr(doctor, "_built_library", lambda torch: library)
    monkeypatch.setattr(_build, "load_extension", lambda verbose=None: str(library))
    return types.SimpleNamespace(smi=smi, library=library)


def test_doctor_on_a_hopper_machine_with_the_extension_built_exits_zero(hopper_machine, capsys):
    rc, out = run_cli(capsys, "doctor")
    assert rc == 0, out
    assert "Result: this machine can run the mla_backend kernel." in out
    rows = {c.name: c for c in doctor.collect()}
    assert rows["nvcc"].status == doctor.OK and rows["nvcc"].value.endswith("CUDA 13.0")
    assert rows["GPU"].status == doctor.OK and "8 x NVIDIA H100 80GB HBM3, compute capability 9.0" in rows["GPU"].value
    extension = rows["kernel extension"]
    assert extension.status == doctor.OK and str(hopper_machine.library) in extension.value
    assert rows["NVIDIA driver"].value.startswith("580.159.04")


def test_doctor_does_not_need_nvcc_once_the_extension_is_built(hopper_machine, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "no-toolkit"))
    rows = {c.name: c for c in doctor.collect()}
    assert rows["nvcc"].status == doctor.WARN and "not needed" in rows["nvcc"].value
    assert doctor.can_run(list(rows.values()))


def test_doctor_fails_without_nvcc_when_the_extension_must_still_be_built(hopper_machine, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "no-toolkit"))
    monkeypatch.setattr(doctor, "_built_library", lambda torch: None)
    checks = doctor.collect()
    rows = {c.name: c for c in checks}
    assert rows["nvcc"].status == doctor.FAIL and "CUDA_HOME" in rows["nvcc"].fix
    assert rows["kernel extension"].status == doctor.FAIL
    assert not doctor.can_run(checks)


def test_doctor_build_builds_with_progress_and_reports_the_time(hopper_machine, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "_built_library", lambda torch: None)
    calls = []
    monkeypatch.setattr(_build, "load_extension", lambda verbose=None: calls.append(verbose) or "/x/lib.so")
    rows = {c.name: c for c in doctor.collect()}
    extension = rows["kernel extension"]
    assert extension.status == doctor.WARN and "mla-backend doctor --build" in extension.fix
    assert calls == []
    rows = {c.name: c for c in doctor.collect(build=True, verbose=True)}
    assert calls == [True]
    assert rows["kernel extension"].status == doctor.OK and rows["kernel extension"].value.startswith("built in")


def test_doctor_reports_a_failed_build(hopper_machine, monkeypatch):
    def broken(verbose=None):
        raise RuntimeError("mla_backend: nvcc exploded")

    monkeypatch.setattr(_build, "load_extension", broken)
    row = {c.name: c for c in doctor.collect()}["kernel extension"]
    assert row.status == doctor.FAIL and "nvcc exploded" in row.value and "MLA_BACKEND_VERBOSE=1" in row.fix


def test_doctor_rejects_a_non_hopper_gpu(hopper_machine, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA A100-SXM4-80GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (8, 0))
    checks = doctor.collect()
    gpu = {c.name: c for c in checks}["GPU"]
    assert gpu.status == doctor.FAIL and "compute capability 8.0" in gpu.value and "Hopper" in gpu.fix
    assert not doctor.can_run(checks)


def test_doctor_sees_a_hopper_gpu_that_a_cpu_torch_cannot_use(hopper_machine, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    rows = {c.name: c for c in doctor.collect()}
    assert rows["torch"].status == doctor.FAIL and "without CUDA" in rows["torch"].value
    assert rows["GPU"].status == doctor.FAIL and "seen by nvidia-smi" in rows["GPU"].value


def test_doctor_flags_a_driver_older_than_torchs_cuda(hopper_machine):
    hopper_machine.smi["cuda"] = "12.8"
    row = {c.name: c for c in doctor.collect()}["NVIDIA driver"]
    assert row.status == doctor.FAIL and "CUDA 13.0" in row.fix


@pytest.mark.parametrize("engine, version, status, words", [
    ("vllm", "0.26.0", doctor.OK, "verified on H100"),
    ("vllm", "0.26.3", doctor.OK, "TP 1 and 2"),
    ("vllm", "0.33.0", doctor.WARN, "verified on CPU only"),
    ("vllm", "0.30.1", doctor.WARN,
     "plugin stays out of it (verified: 0.26.x (H100, TP 1 and 2; H200, TP 1), 0.33.x (CPU CI))"),
    ("vllm", None, doctor.WARN, "not installed"),
    ("sglang", "0.5.17", doctor.OK, "verified on H200, TP 1"),
    ("sglang", "0.5.17.post1", doctor.OK, "verified on H200, TP 1"),
    ("sglang", "0.5.23", doctor.WARN, "verified on CPU only"),
    ("sglang", "0.5.18", doctor.WARN, "plugin stays out of it (verified: 0.5.17 (H200, TP 1), 0.5.23 (CPU CI))"),
    ("sglang", None, doctor.INFO, "not installed"),
])
def test_engine_versions_are_classified(engine, version, status, words):
    got_status, got_words = doctor.engine_verdict(engine, version)
    assert got_status == status and words in got_words


@pytest.mark.parametrize("installed, fix", [
    ({"vllm": "0.30.1", "sglang": None},
     "`mla-backend serve` (and `--attention-backend CUSTOM`) needs a verified vLLM: `pip install vllm==0.26.0`"),
    ({"vllm": "0.26.0", "sglang": "0.5.18"}, "`--attention-backend mla_backend` needs a verified SGLang: "
                                             "`pip install sglang==0.5.17`"),
])
def test_doctor_says_how_to_install_a_verified_engine(monkeypatch, installed, fix):
    monkeypatch.setattr(doctor, "_version", installed.get)
    monkeypatch.setattr(doctor, "_plugin_check", lambda label, group: doctor.Check(f"{label} plugin", doctor.OK, ""))
    fixes = [c.fix for c in doctor._engine_checks() if c.fix and c.status != doctor.INFO]
    assert len(fixes) == 1 and fixes[0].startswith(fix)


def test_render_lists_fixes_of_failed_and_warned_rows_only():
    checks = [doctor.Check("a", doctor.OK, "fine", "never shown"), doctor.Check("b", doctor.FAIL, "broken", "fix b"),
              doctor.Check("c", doctor.WARN, "meh", "fix c"), doctor.Check("d", doctor.INFO, "note")]
    text = doctor.render(checks)
    assert "never shown" not in text and "1. b: fix b" in text and "2. c: fix c" in text
    assert "cannot run the mla_backend kernel (failed: b)" in text


LONG_CHECKS = [
    doctor.Check("GPU", doctor.FAIL, "none visible (nvidia-smi not found)",
                 "run on an NVIDIA Hopper GPU (H100/H200/H800/H20: AWS p5.48xlarge, p5en.48xlarge, a Databricks or "
                 "SageMaker GPU instance of those)"),
    doctor.Check("kernel extension", doctor.WARN, "not built; building and loading it needs the torch, GPU and "
                 "driver rows to pass"),
    doctor.Check("CUTLASS headers", doctor.OK, "/opt/venv/lib/python3.12/site-packages/cutlass_library/source/include"),
]


def test_render_wraps_to_the_width_at_words_with_the_details_column_kept():
    lines = doctor.render(LONG_CHECKS, width=72).splitlines()
    details_at = lines[0].index("details")
    path = LONG_CHECKS[2].value
    assert all(len(line) <= 72 or line.endswith(" " + path) for line in lines)  # a path is never broken
    row = next(i for i, line in enumerate(lines) if line.startswith("kernel extension"))
    assert lines[row + 1].startswith(" " * details_at) and lines[row + 1][details_at] != " "
    item = next(i for i, line in enumerate(lines) if line.startswith("  1. GPU: "))
    assert lines[item + 1].startswith(" " * 5) and lines[item + 1][5] != " "


def test_render_paints_fail_and_warn_only_when_asked():
    assert "\033[" not in doctor.render(LONG_CHECKS, width=100)
    painted = doctor.render(LONG_CHECKS, width=100, colour=True)
    assert "\033[1;31mFAIL  \033[0m" in painted and "\033[33mWARN  \033[0m" in painted
    assert painted.count("\033[0m") == 2


def test_doctor_output_is_plain_where_stdout_is_not_a_terminal(capsys):
    rc, out = run_cli(capsys, "doctor")
    assert "\033[" not in out and "Result: this machine" in out


def test_doctor_json_lists_the_checks_with_the_same_exit_code(capsys):
    rc, out = run_cli(capsys, "doctor")
    json_rc, json_out = run_cli(capsys, "doctor", "--json")
    doc = json.loads(json_out)
    assert json_rc == rc and doc["can_run"] is (rc == 0)
    assert [c["name"] for c in doc["checks"]][:3] == ["mla_backend", "Python", "torch"]
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in doc["checks"])
    assert {c["status"] for c in doc["checks"]} <= {"ok", "warn", "fail", "info"}
    assert all(c["name"] + " " in out for c in doc["checks"])


def test_doctor_with_a_cuda_torch_and_no_gpu_prints_no_torch_notice_above_the_table():
    # torch.utils.cpp_extension logs "No CUDA runtime is found, using CUDA_HOME=..." on its first import where a
    # CUDA torch sees no GPU: stood in for here by faking a CUDA build of this torch.
    fake_cuda_torch = ("import torch; torch.cuda._is_compiled = lambda: True; torch.version.cuda = '13.0'; "
                       "torch.cuda.is_available = lambda: False; ")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bare = subprocess.run([sys.executable, "-c", fake_cuda_torch + "import torch.utils.cpp_extension"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "No CUDA runtime is found" in bare.stderr  # what doctor must not show
    run = subprocess.run([sys.executable, "-c", fake_cuda_torch + "from mla_backend.cli import doctor; doctor.main()"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.stdout.startswith("check ")
    assert "No CUDA runtime is found" not in run.stdout + run.stderr


# --- bench --------------------------------------------------------------------------------------------------


def test_bench_plot_of_the_committed_h100_results(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "h100.png"
    rc, out = run_cli(capsys, "bench", "--plot", str(RESULTS), "--png", str(png))
    assert rc == 0, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    doc = json.loads(RESULTS.read_text())
    for record in doc["results"]:
        assert record["key"] in out
    header = next(line for line in out.splitlines() if line.startswith("config "))
    assert header.split()[1] == "ours" and "FlashMLA" in header and "vs FlashMLA" in header
    row = next(line for line in out.splitlines() if line.startswith("b128/s4096/h16/q1 "))
    assert "239.0 (2546, 76)" in row and "1.08" in row


def test_bench_table_says_why_a_peer_has_no_time():
    doc = json.loads(RESULTS.read_text())
    table = bench.format_table(doc)
    row = next(line for line in table.splitlines() if line.startswith("b128/s4096/h128/q2 "))
    assert "n/a" in row  # Triton MLA: s_q > 1 unsupported
    assert "not run" in row  # FA3-MLA: no entry in the file
    assert bench.missing_label({"error": "RuntimeError: boom"}) == "failed"


def test_bench_plot_without_matplotlib_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, out = run_cli(capsys, "bench", "--plot", str(RESULTS), "--png", str(tmp_path / "x.png"))
    assert rc == 1 and "pip install matplotlib" in out
    assert "b8/s8192/h16/q1" in out  # the table is still printed


@pytest.mark.parametrize("content,words", [(None, "cannot read the results file"), ("{not json", "is not JSON"),
                                            ('{"results": []}', "is not a results file of bench_decode.py")])
def test_bench_plot_of_a_missing_or_foreign_file_says_so_without_a_traceback(tmp_path, capsys, content, words):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    rc, out = run_cli(capsys, "bench", "--plot", str(path))
    out = " ".join(out.split())  # unwrapped
    assert rc == 2 and words in out and str(path) in out and "Traceback" not in out


def test_matplotlib_hint_names_an_extra_that_exists():
    assert "'.[plot]'" in bench.NO_MATPLOTLIB
    assert '\nplot = ["matplotlib"]\n' in (REPO / "pyproject.toml").read_text()
    assert "mla-backend[" not in bench.NO_MATPLOTLIB  # not on PyPI yet


def test_bench_passes_options_through_to_bench_decode(capsys):
    rc, out = run_cli(capsys, "bench", "--quick", "--list")
    assert rc == 0
    assert out.split() == ["b128/s4096/h16/q1", "b128/s4096/h128/q1", "b128/s4096/h128/q2", "b132/s8192/h128/q2",
                           "b64/s16384/h16/q1", "b32/s1024/h16/q1", "b1/s32768/h128/q1", "b1/s32768/h16/q1",
                           "b8/s8192/h16/q1"]
    rc, out = run_cli(capsys, "bench", "--configs", "b1/s1024/h16/q1", "--varlen", "--list")
    assert rc == 0 and out.split() == ["b1/s1024/h16/q1", "b1/s1024/h16/q1/varlen"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_bench_without_a_gpu_says_so(capsys):
    rc, out = run_cli(capsys, "bench", "--configs", "b1/s1024/h16/q1")
    assert rc == 2 and "needs a Hopper GPU" in out and "mla-backend doctor" in out


def test_bench_outside_a_checkout_says_benchmarks_are_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "__file__", str(tmp_path / "site-packages" / "mla_backend" / "cli" / "x.py"))
    assert bench.find_bench() is None
    rc, out = run_cli(capsys, "bench", "--quick")
    assert rc == 2 and "not part of the installed package" in out


# --- serve: command lines -----------------------------------------------------------------------------------


def dry_run(capsys, *argv):
    rc, out = run_cli(capsys, "serve", *argv, "--dry-run")
    assert rc == 0, out
    return out.splitlines()[0].split()


def test_serve_dry_run_adds_backend_and_block_size(capsys, monkeypatch):
    monkeypatch.setattr(serve, "vllm_command", lambda: ["vllm"])
    command = dry_run(capsys, "deepseek-ai/DeepSeek-V2-Lite-Chat", "-tp", "2", "--max-model-len", "8192")
    assert command == ["vllm", "serve", "deepseek-ai/DeepSeek-V2-Lite-Chat", "--attention-backend", "CUSTOM",
                       "--block-size", "64", "-tp", "2", "--max-model-len", "8192"]


def test_serve_dry_run_passes_the_config_file(capsys, monkeypatch):
    monkeypatch.setattr(serve, "vllm_command", lambda: ["vllm"])
    config = str(REPO / "configs" / "p5-h100-deepseek-v2-chat-tp8.yaml")
    command = dry_run(capsys, "--config", config, "--port", "9000")
    # The config names the model, so none is added; --port also tells the check request where to go.
    assert command == ["vllm", "serve", "--config", config, "--attention-backend", "CUSTOM", "--block-size", "64",
                       "--port", "9000"]
    command = dry_run(capsys, "my/model", "--config", config)
    assert command[:5] == ["vllm", "serve", "my/model", "--config", config]


@pytest.mark.parametrize("model_args", [["--model", "my/model"], ["--model=my/model"],
                                        ["my/model", "--model", "my/model"]])
def test_serve_takes_vllms_model_option_as_the_model(capsys, monkeypatch, model_args):
    monkeypatch.setattr(serve, "vllm_command", lambda: ["vllm"])
    command = dry_run(capsys, *model_args, "--max-model-len", "8192")
    assert command == ["vllm", "serve", "my/model", "--attention-backend", "CUSTOM", "--block-size", "64",
                       "--max-model-len", "8192"]


def test_serve_refuses_two_different_models(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "my/model", "--model", "other/model", "--dry-run"])
    assert exc.value.code == 2 and "two models, my/model and --model other/model" in capsys.readouterr().err


def test_serve_without_a_model_uses_the_tiny_default_without_generating_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLA_BACKEND_CACHE", str(tmp_path))
    monkeypatch.setattr(serve, "vllm_command", lambda: ["vllm"])
    rc, out = run_cli(capsys, "serve", "--dry-run")
    assert rc == 0
    command = out.splitlines()[0].split()
    assert command == ["vllm", "serve", str(tiny_model.default_dir()), "--attention-backend", "CUSTOM",
                       "--block-size", "64", "--served-model-name", tiny_model.NAME]
    assert "generated on first run" in out and not tiny_model.default_dir().exists()
    # A config file without `model:` also gets the default model.
    config = tmp_path / "c.yaml"
    config.write_text("max-model-len: 4096\n")
    assert dry_run(capsys, "--config", str(config))[2] == str(tiny_model.default_dir())


def test_vllm_is_run_from_this_python_environment(monkeypatch, tmp_path):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text("")
    monkeypatch.setattr(sys, "executable", str(python))
    assert serve.vllm_command() == [str(python), "-m", "vllm.entrypoints.cli.main"]
    script = tmp_path / "bin" / "vllm"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert serve.vllm_command() == [str(script)]


@pytest.mark.parametrize("option", [["--attention-backend", "FLASHMLA"], ["--attention_backend=TRITON_MLA"],
                                    ["--block-size", "16"]])
def test_serve_refuses_another_backend_or_block_size(capsys, option):
    rc, out = run_cli(capsys, "serve", "m", *option, "--dry-run")
    assert rc == 2 and "always uses" in out


def test_serve_accepts_the_same_backend_and_block_size_again(capsys, monkeypatch):
    monkeypatch.setattr(serve, "vllm_command", lambda: ["vllm"])
    assert dry_run(capsys, "m", "--block-size", "64", "--attention-backend", "custom")[-4:] == [
        "--block-size", "64", "--attention-backend", "custom"]


def test_serve_check_request_goes_to_the_configured_host_and_port(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: x\nport: 8123\nhost: 0.0.0.0\n")
    assert serve.plan(None, str(config), []).base_url == "http://127.0.0.1:8123"
    assert serve.plan("x", None, [], host="::1", port=9).base_url == "http://[::1]:9"
    assert serve.plan("x", None, []).base_url == "http://127.0.0.1:8000"


@needs_no_hopper
def test_serve_without_hopper_gpu_says_so_runs_doctor_and_exits_nonzero(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLA_BACKEND_CACHE", str(tmp_path))
    rc, out = run_cli(capsys, "serve")
    assert rc == 1
    assert "no NVIDIA Hopper GPU on this machine" in out and "vLLM is not started" in out
    assert "Result: this machine cannot run the mla_backend kernel" in out and "To fix:" in out
    assert not any(tmp_path.iterdir())  # nothing generated


def test_serve_preflight_on_a_hopper_machine_builds_then_checks_vllm(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(serve, "_hopper_listed", lambda: True)
    monkeypatch.setattr(serve.subprocess, "call", lambda argv: calls.append(argv[-2:]) or 0)
    monkeypatch.setattr(serve, "find_spec", lambda name: object())
    monkeypatch.setattr(serve.importlib.metadata, "version", lambda name: "0.26.0")
    assert serve.preflight() == 0 and calls == [["doctor", "--build"]]
    monkeypatch.setattr(serve.importlib.metadata, "version", lambda name: "0.30.0")
    assert serve.preflight() == 1
    err = capsys.readouterr().err
    assert "this is vLLM 0.30.0" in err and "pip install vllm==0.26.0" in err
    monkeypatch.setattr(serve.subprocess, "call", lambda argv: 1)
    assert serve.preflight() == 1
    assert "fix the FAIL rows above" in capsys.readouterr().err


# --- serve: the check request and the server's life, against a stand-in for `vllm serve` --------------------

FAKE_VLLM = textwrap.dedent('''
    """Stands in for `vllm serve`: /health, /v1/models and streamed chat/completions answers."""
    import http.server, json, os, sys, time
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    if os.environ.get("FAKE_ARGV_FILE"):
        open(os.environ["FAKE_ARGV_FILE"], "w").write(json.dumps(args))
    PIECES = ["Hello", ",", " world", "!"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/health":
                self.send_response(200); self.end_headers()
            elif self.path == "/v1/models":
                body = json.dumps({"data": [{"id": "fake-model"}]}).encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            chat = self.path == "/v1/chat/completions"
            if chat and os.environ.get("FAKE_NO_CHAT"):
                self.send_error(400, "no chat template"); return
            self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
            n = request["max_tokens"] if request.get("ignore_eos") else len(PIECES)
            for i in range(n):
                piece = PIECES[i % len(PIECES)]
                choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
                self.wfile.write(f"data: {json.dumps({'choices': [choice]})}\\n\\n".encode()); self.wfile.flush()
                time.sleep(0.01)
            usage = {"choices": [], "usage": {"completion_tokens": n}}
            self.wfile.write(f"data: {json.dumps(usage)}\\n\\ndata: [DONE]\\n\\n".encode())

    time.sleep(0.5)  # a server that takes a moment to come up
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    script = tmp_path / "fake_vllm.py"
    script.write_text(FAKE_VLLM)
    monkeypatch.setattr(serve, "vllm_command", lambda: [sys.executable, str(script)])
    monkeypatch.setattr(serve, "preflight", lambda: 0)
    monkeypatch.setenv("FAKE_ARGV_FILE", str(tmp_path / "argv.json"))
    return tmp_path / "argv.json"


@pytest.fixture
def fake_server(fake_vllm):
    port = free_port()
    server = subprocess.Popen(serve.vllm_command() + ["serve", "m", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    assert serve.wait_until_ready(base, server, timeout=30)
    yield base
    serve._stop(server)


def test_check_request_streams_a_chat_reply_and_measures_decode_speed(fake_server):
    answer = serve.ask(fake_server, "hi", max_tokens=8)
    assert answer.model == "fake-model" and answer.endpoint == "/v1/chat/completions"
    assert answer.text == "Hello, world!" and answer.completion_tokens == 4
    assert answer.decode_tokens_per_s is not None and 10 < answer.decode_tokens_per_s < 1000
    report = answer.report()
    assert "reply:  'Hello, world!'" in report and "tokens/s" in report
    answer = serve.ask(fake_server, "hi", max_tokens=8, ignore_eos=True)
    assert answer.completion_tokens == 8


def test_check_request_falls_back_to_completions_without_a_chat_template(fake_vllm, monkeypatch):
    monkeypatch.setenv("FAKE_NO_CHAT", "1")
    port = free_port()
    server = subprocess.Popen(serve.vllm_command() + ["serve", "m", "--port", str(port)])
    try:
        assert serve.wait_until_ready(f"http://127.0.0.1:{port}", server, timeout=30)
        answer = serve.ask(f"http://127.0.0.1:{port}", "hi", max_tokens=4)
        assert answer.endpoint == "/v1/completions" and answer.text == "Hello, world!"
    finally:
        serve._stop(server)


def test_serve_once_starts_vllm_asks_once_and_stops_it(fake_vllm, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(tiny_model, "ensure", lambda directory=None: Path(directory))
    monkeypatch.setenv("MLA_BACKEND_CACHE", str(tmp_path / "cache"))
    port = free_port()
    rc, out = run_cli(capsys, "serve", "--once", "--port", str(port), "--max-tokens", "12")
    assert rc == 0, out
    argv = json.loads(fake_vllm.read_text())
    assert argv[:2] == ["serve", str(tiny_model.default_dir())]
    assert argv[2:6] == ["--attention-backend", "CUSTOM", "--block-size", "64"]
    assert "default model: tiny DeepSeek-V2-shaped checkpoint" in out
    assert "12 tokens" in out and "tokens/s" in out  # the tiny model ignores EOS: all max_tokens come back


def test_serve_reports_a_server_that_dies_before_it_is_ready(capsys, monkeypatch, tmp_path):
    script = tmp_path / "dead_vllm.py"
    script.write_text("import sys; sys.exit(3)\n")
    monkeypatch.setattr(serve, "vllm_command", lambda: [sys.executable, str(script)])
    monkeypatch.setattr(serve, "preflight", lambda: 0)
    rc, out = run_cli(capsys, "serve", "some/model", "--once", "--port", str(free_port()))
    assert rc == 1 and "vLLM exited with code 3 before it was ready" in out

"""Build the offline bundle of peer MLA decode kernels for the GPU box.

Run on a machine with PyPI access:

    python benchmarks/peers_bundle.py --out .peers

It downloads the vLLM 0.26.0 wheel (torch 2.11 ABI, the box's torch), takes only the files that three
peers need (FlashMLA's `_flashmla_C` op, FA3-MLA's `_vllm_fa3_C` op and their Python call sites, vLLM's
Triton MLA decode kernel) and strips the symbol tables of the shared objects. Nothing of vLLM's package
`__init__`, platform layer or dependencies is taken: `benchmarks/peers.py` installs small stand-ins for
those few modules at import time, so `vllm/` in the bundle only holds files of the wheel (the shared
objects stripped of .symtab/.strtab, everything they load with left as it was).

FlashInfer (vLLM 0.26's pin, 0.6.14) ships sources only and JIT-compiles with nvcc at first use; PyPI has
no prebuilt jit-cache. So the one module the MLA peer needs (the fa3 backend, bf16, int32 indices,
512 + 64 head dims) is compiled here, for sm_90a with this machine's nvcc (CUDA 13 like the box's torch),
through FlashInfer's own build, and placed where FlashInfer looks for ahead-of-time modules
(`flashinfer/data/aot/<name>/<name>.so`); the box needs no compiler. FlashInfer's runtime wheels
(apache-tvm-ffi and a few pure-Python packages, for CPython 3.12) are unpacked under `site/`, which
peers.py appends to sys.path. `--no-flashinfer` leaves all of that out.

The output folder is an mla_backend bundle (mla_backend/cli/bundle.py's format, as `mla-backend bundle build`
writes): `bundle.tar.xz.part-NN` of at most 60 MiB (a reproducible tar.xz: sorted names, fixed owners and
mtimes; nvcc output, hence the FlashInfer module, differs between builds), `SHA256SUMS` (each part and the whole
archive) and the standard-library unpacker `mla_backend_bundle.py`. The archive's top holds `vllm/`,
`reference/`, `site/` and the manifest `MLA_BACKEND_BUNDLE.json` (the sha256 of each vLLM file, each wheel and
the compiled module; "activate": false, since the peers are loaded by peers.py, never put on PYTHONPATH).

On the GPU box `benchmarks/peers.py` checks and extracts the parts itself, streaming, once per archive
(`load_peers(".peers")`, `bench_decode.py --peers .peers`). A folder in the older format (peers.sha256 and
peers.tar.xz.part-NN) is refused with the command that rebuilds it: the one at the top of this docstring.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # an installed mla_backend wins
from mla_backend.cli.bundle import MANIFEST, fetch_wheels, sha256_file, site_members, write_bundle  # noqa: E402

VLLM_VERSION = "0.26.0"
FLASHINFER_VERSION = "0.6.14"  # vLLM 0.26.0's pin
# What `import flashinfer` needs beyond torch and its own dependencies (checked in a bare venv), pinned.
FLASHINFER_RUNTIME = (
    "apache-tvm-ffi==0.1.15.post2", "nvidia-ml-py==13.615.71", "tqdm==4.70.1", "requests==2.34.2",
    "urllib3==2.8.0", "idna==3.20", "certifi==2026.10.19.post1", "packaging==26.4",
)
BOX_PLATFORM = "manylinux_2_28_x86_64"
BOX_CUDA_MAJOR = 13  # torch 2.11.0+cu130
PART_BYTES = 60 * 1024 * 1024
RECIPE = f"peers-vllm-{VLLM_VERSION}"

# Files taken from the wheel, as they are (paths inside the wheel).
WHEEL_FILES = (
    # FlashMLA (dense decode op, metadata computed inside the first call) and vLLM's wrapper of it.
    "vllm/_flashmla_C.abi3.so",
    "vllm/_flashmla_extension_C.abi3.so",  # vLLM's wrapper reports FlashMLA unavailable without it
    "vllm/third_party/__init__.py",
    "vllm/third_party/flashmla/__init__.py",
    "vllm/third_party/flashmla/flash_mla_interface.py",
    "vllm/v1/__init__.py",
    "vllm/v1/attention/__init__.py",
    "vllm/v1/attention/ops/__init__.py",
    "vllm/v1/attention/ops/flashmla.py",
    # vLLM's Triton MLA decode kernel (pure Python + triton).
    "vllm/v1/attention/ops/triton_decode_attention.py",
    # FA3 with q_v (FLASH_ATTN_MLA); the FA2 library (290 MiB) is not needed on Hopper.
    "vllm/vllm_flash_attn/__init__.py",
    "vllm/vllm_flash_attn/flash_attn_interface.py",
    "vllm/vllm_flash_attn/_vllm_fa3_C.abi3.so",
)

# The three backends whose decode path peers.py mirrors; shipped for reading next to the code, never
# imported (they need all of vLLM).
REFERENCE_FILES = (
    "vllm/v1/attention/backends/mla/flashmla.py",
    "vllm/v1/attention/backends/mla/flashattn_mla.py",
    "vllm/v1/attention/backends/mla/triton_mla.py",
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheels(requirements: list[str], dest: Path) -> list[Path]:
    """The box's wheels (CPython 3.12, manylinux_2_28 x86_64) of the pinned requirements, from `dest` or downloaded
    into it, without dependencies."""
    return fetch_wheels(requirements, dest, platforms=(BOX_PLATFORM,))


def strip_shared_object(data: bytes) -> bytes:
    """Drop .symtab/.strtab (and any debug info); the dynamic symbol table stays, so dlopen is unchanged."""
    if shutil.which("strip") is None:
        return data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lib.so"
        path.write_bytes(data)
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
        stripped = path.read_bytes()
    if dynamic_symbols(data) != dynamic_symbols(stripped):
        raise SystemExit("strip changed the dynamic symbol table; refusing to ship the stripped library")
    return stripped


def dynamic_symbols(data: bytes) -> list[str]:
    """The defined dynamic symbols of an ELF shared object (via nm -D); empty when nm is unavailable."""
    if shutil.which("nm") is None:
        return []
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["nm", "-D", "--defined-only", f.name], check=True,
                             capture_output=True, text=True).stdout
    return sorted(out.splitlines())


def collect_vllm_files(wheel: Path, strip: bool) -> dict[str, bytes]:
    """Archive path -> bytes for the vLLM files, .so files stripped when asked."""
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = [n for n in WHEEL_FILES + REFERENCE_FILES if n not in names]
        if missing:
            raise SystemExit(f"{wheel.name} lacks {missing}")
        for name in WHEEL_FILES:
            data = zf.read(name)
            if strip and name.endswith(".so"):
                data = strip_shared_object(data)
            files[name] = data
        for name in REFERENCE_FILES:
            files[f"reference/{name}"] = zf.read(name)
    return files


def collect_site_files(wheels: list[Path]) -> dict[str, bytes]:
    """Every file of each wheel under `site/`, as the bundle's unpacker installs it (site_members)."""
    files: dict[str, bytes] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for parts, info in site_members(zf):
                files["site/" + "/".join(parts)] = zf.read(info)
    return files


# Run inside a venv that has FlashInfer: build the one MLA module through FlashInfer's own JIT machinery.
_AOT_BUILD_SCRIPT = """
import json, torch
from flashinfer.jit.attention.modules import gen_batch_mla_module
spec = gen_batch_mla_module("fa3", torch.bfloat16, torch.bfloat16, torch.bfloat16, torch.int32, 512, 64, False)
spec.build(verbose=False)
print(json.dumps({"name": spec.name, "so": str(spec.jit_library_path)}))
"""


def cuda_toolkit() -> tuple[Path, str]:
    """(root, nvcc release) of the first CUDA toolkit among $CUDA_HOME, $CUDA_PATH, /usr/local/cuda and
    the nvcc on PATH that has nvcc, headers and libcudart; SystemExit when there is none."""
    nvcc_on_path = shutil.which("nvcc")
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
                  nvcc_on_path and str(Path(nvcc_on_path).resolve().parent.parent)]
    for root in (Path(c) for c in candidates if c):
        nvcc = root / "bin" / "nvcc"
        if nvcc.is_file() and (root / "include" / "cuda_runtime.h").is_file() and any(root.glob("lib*/libcudart.so")):
            out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=True).stdout
            return root, out.split("release ")[1].split(",")[0]
    raise SystemExit(f"no CUDA toolkit found in {[c for c in candidates if c]} (set CUDA_HOME, or --no-flashinfer)")


def build_flashinfer_mla_aot(flashinfer_wheel: Path, work: Path) -> tuple[str, bytes, str]:
    """Compile FlashInfer's fa3 MLA module for sm_90a; returns (module name, .so bytes, nvcc release).

    FlashInfer is installed into a throwaway venv next to this interpreter's torch (a CPU build is
    enough). Its link line asks for -lcuda, which a GPU-less machine lacks: an empty stub library with
    the driver's soname stands in (the module calls no driver function, so the linker keeps no reference).
    """
    cuda_home, release = cuda_toolkit()
    if int(release.split(".")[0]) != BOX_CUDA_MAJOR:
        raise SystemExit(f"nvcc {release} here, but the box's torch is CUDA {BOX_CUDA_MAJOR}")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # torch comes from this interpreter's environment (a venv's --system-site-packages would skip it when this
    # interpreter is itself a venv's): a .pth line puts its site-packages after the build venv's own.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "zz_builder_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(flashinfer_wheel),
                    *FLASHINFER_RUNTIME, "ninja"], check=True)
    stubs = work / "stubs"
    stubs.mkdir(exist_ok=True)
    (stubs / "empty.c").write_text("")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(stubs / "libcuda.so"),
                    str(stubs / "empty.c")], check=True)
    env = dict(os.environ, CUDA_HOME=str(cuda_home), FLASHINFER_WORKSPACE_BASE=str(work / "ws"),
               FLASHINFER_CUDA_ARCH_LIST="9.0a", TVM_FFI_DISABLE_TORCH_C_DLPACK="1",
               LIBRARY_PATH=os.pathsep.join(p for p in (str(stubs), os.environ.get("LIBRARY_PATH")) if p),
               PATH=os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")]))
    print(f"compiling FlashInfer {FLASHINFER_VERSION}'s fa3 MLA module for sm_90a (nvcc {release}) ...", flush=True)
    built = subprocess.run([str(python), "-c", _AOT_BUILD_SCRIPT], env=env, capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit(f"FlashInfer MLA build failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}")
    result = json.loads(built.stdout.strip().splitlines()[-1])
    return result["name"], Path(result["so"]).read_bytes(), release


def manifest(entries: dict, vllm_files: dict[str, bytes]) -> bytes:
    doc = {"recipe": RECIPE, "activate": False, "env": {}, **entries,
           "vllm_files": {name: {"bytes": len(data), "sha256": sha256_bytes(data)}
                          for name, data in sorted(vllm_files.items())}}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def write_files(files: dict[str, bytes], root: Path) -> None:
    """Lay `files` (path inside the bundle -> bytes) out under root; shared objects executable, like the wheel's."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if name.endswith(".so") else 0o644)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".peers"), help="output folder (git-ignored)")
    parser.add_argument("--wheel-dir", type=Path, default=Path(".whl"),
                        help="where to find or download the wheels; keep it out of --out, which is "
                             "carried to the box (default: .whl, git-ignored)")
    parser.add_argument("--no-strip", action="store_true", help="ship the vLLM shared objects unstripped")
    parser.add_argument("--no-flashinfer", action="store_true", help="leave FlashInfer out")
    args = parser.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("peers.tar.xz.part-*"), out / "peers.sha256"]:  # a bundle of the older format
        old.unlink(missing_ok=True)
    args.wheel_dir.mkdir(parents=True, exist_ok=True)
    wheel = download_wheels([f"vllm=={VLLM_VERSION}"], args.wheel_dir)[0]
    print(f"wheel {wheel.name} {wheel.stat().st_size:,} B")
    entries: dict = {"vllm_wheel": {wheel.name: sha256_file(wheel)},
                     "vllm_shared_objects_stripped": not args.no_strip}
    vllm_files = collect_vllm_files(wheel, strip=not args.no_strip)
    files = dict(vllm_files)

    if args.no_flashinfer:
        entries["flashinfer"] = "left out (--no-flashinfer)"
    else:
        fi_wheel = download_wheels([f"flashinfer-python=={FLASHINFER_VERSION}"], args.wheel_dir)[0]
        runtime = download_wheels(list(FLASHINFER_RUNTIME), args.wheel_dir)
        with tempfile.TemporaryDirectory(prefix="peers_fi_") as tmp:
            name, module, release = build_flashinfer_mla_aot(fi_wheel, Path(tmp))
        files.update(collect_site_files([fi_wheel, *runtime]))
        files[f"site/flashinfer/data/aot/{name}/{name}.so"] = module
        entries["flashinfer"] = {
            "wheels": {w.name: sha256_file(w) for w in [fi_wheel, *runtime]},
            "aot_module": {"name": name, "sha256": sha256_bytes(module), "bytes": len(module),
                           "nvcc": release, "arch": "sm_90a"},
        }
        print(f"FlashInfer module {name}.so: {len(module):,} B")
    files[MANIFEST] = manifest(entries, vllm_files)
    site = [n for n in files if n.startswith("site/")]
    for name in sorted(set(files) - set(site)):
        print(f"  {len(files[name]):>12,} B  {name}")
    if site:
        print(f"  {sum(len(files[n]) for n in site):>12,} B  site/ ({len(site)} files)")
    print(f"  {sum(map(len, files.values())):>12,} B  unpacked total, {len(files)} files")

    print(f"compressing into {out} (xz -9; a few minutes) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="peers_bundle_") as tmp:
        write_files(files, Path(tmp))
        parts = write_bundle(Path(tmp), out, PART_BYTES)
    for part in parts:
        print(f"  {part}  {part.stat().st_size:,} B")
    if len(parts) > 1:
        print(f"{len(parts)} parts: each must reach the box in its own consecutive call (carry limit 64 MiB).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

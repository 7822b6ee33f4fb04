"""Offline bundles: an engine and the wheels it needs, for a GPU host that cannot reach PyPI.

    mla-backend bundle build --out DIR [--recipe vllm-0.26.0|sglang-0.5.17] [--part-mib 60] [--wheels CACHE]
                             [--no-mla-backend]
    python3 DIR/mla_backend_bundle.py unpack DIR --target SITE   (on the GPU host; then `source SITE/activate.sh`)

`build` (on a machine with PyPI access) downloads the recipe's pinned wheels for the host (CPython 3.12,
manylinux x86_64), unpacks them into one site-packages-style folder, drops what the host never loads (vLLM's FA2
library, its Rust front end, sgl-kernel's FA3 library, Blackwell kernels, xgrammar's static archive; see RECIPES),
strips debug info where that is safe, adds mla_backend itself (its wheel: the plugin entry point and the kernel
sources), and writes one reproducible tar.xz split into parts of at most --part-mib, plus SHA256SUMS and a copy of
this file (standard library only, so the host needs nothing installed to unpack). Copy the folder to the host in
as many trips as it takes. `unpack` checks every part against SHA256SUMS, extracts, and writes `activate.sh`
(PYTHONPATH and the environment the recipe needs). `mla-backend bundle unpack` does the same where mla_backend
is installed. The host must already have the recipe's base:
for vLLM 0.26, Python 3.12 with torch 2.11 (CUDA), triton, transformers, tokenizers, numpy, aiohttp, ...;
for SGLang 0.5.17 the same (its transformers and tokenizers are shipped) plus nvcc, g++ and ninja, since SGLang
and FlashInfer compile some kernels on first use, and glibc >= 2.34.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ARCHIVE = "bundle.tar.xz"
SUMS = "SHA256SUMS"
MANIFEST = "MLA_BACKEND_BUNDLE.json"
ACTIVATE = "activate.sh"
UNPACKER = "mla_backend_bundle.py"
LOCK_DIR = Path(__file__).resolve().parent / "bundles"
DEFAULT_PART_MIB = 60
HOST_PYTHON = "3.12"
# pip matches manylinux tags exactly: every tag a pinned wheel of the vLLM recipe is published under (a recipe
# whose wheels need more lists its own, Recipe.platforms).
HOST_PLATFORMS = ("manylinux_2_31_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
                  "manylinux_2_26_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
                  "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64")


class BundleError(Exception):
    """A bundle cannot be built or unpacked; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Recipe:
    name: str
    lock: str                                   # file in mla_backend/cli/bundles/: one `name==version` per line
    remove: tuple[str, ...] = ()                # paths in the site folder never loaded on the host
    strip_debug: tuple[str, ...] = ()           # shared objects whose debug info is dropped
    env: dict[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = HOST_PLATFORMS  # manylinux tags pip downloads for (the host's glibc allows each)

    def pins(self) -> list[str]:
        path = LOCK_DIR / self.lock
        pins = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
        pins = [p for p in pins if p]
        bad = [p for p in pins if p.count("==") != 1]
        if bad:
            raise BundleError(f"{path}: every line must be name==version, got {bad}")
        names = [canonical(p.split("==")[0]) for p in pins]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BundleError(f"{path}: pinned more than once: {dupes}")
        return pins


RECIPES = {
    "vllm-0.26.0": Recipe(
        name="vllm-0.26.0",
        lock="vllm-0.26.0.txt",
        remove=(
            "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so",  # 291 MiB FA2; Hopper runs _vllm_fa3_C
            "vllm/vllm-rs",                               # only with VLLM_USE_RUST_FRONTEND=1 (default 0)
            "vllm/third_party/fmha_sm100",                # Blackwell, imported lazily by one model
            "xgrammar/lib/libxgrammar.a",                 # static archive, never loaded
        ),
        strip_debug=("xgrammar/libxgrammar_bindings.so",),  # 51 MiB of debug info
        env={
            # flashinfer is not shipped; vLLM's sampler would otherwise import it on CUDA.
            "VLLM_USE_FLASHINFER_SAMPLER": "0",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
    ),
    "sglang-0.5.17": Recipe(
        name="sglang-0.5.17",
        lock="sglang-0.5.17.txt",
        remove=(
            "sgl_kernel/flash_ops.abi3.so",               # 1.1 GB FA3, only --attention-backend fa3 loads it
            "sgl_kernel/sm100",                           # common_ops for non-sm90 GPUs; an H100 loads sm90/
            "sgl_kernel/infllm_ops.cpython-310-x86_64-linux-gnu.so",  # InfLLM-V2 sparse attention, loaded on use
            "sglang/srt/server/_core.cpython-312-x86_64-linux-gnu.so",  # Rust server: only SGLANG_RUST_SERVER=1
            "sglang/srt/grpc/_core.cpython-312-x86_64-linux-gnu.so",    # native gRPC: only --grpc-port
            "xgrammar/lib/libxgrammar.a",                 # static archive, never loaded
        ),
        strip_debug=("xgrammar/libxgrammar_bindings.so",),  # 53 MB with debug info
        env={
            # SGLang 0.5.17 has no usage statistics to turn off; the hub must not be asked for the model, its
            # tokenizer or its config.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
        # sglang 0.5.17's cp312 wheel is manylinux_2_34 only (the host has glibc 2.39).
        platforms=("manylinux_2_34_x86_64",) + HOST_PLATFORMS,
    ),
}


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- build


def find_wheel(pin: str, directory: Path) -> Path | None:
    name, version = pin.split("==")
    for wheel in sorted(directory.glob("*.whl")):
        parts = wheel.name.split("-")
        if len(parts) >= 3 and canonical(parts[0]) == canonical(name) and parts[1] == version:
            return wheel
    return None


def fetch_wheels(pins: list[str], cache: Path, platforms: tuple[str, ...] = HOST_PLATFORMS) -> list[Path]:
    """The wheel of every pin, from `cache` or else downloaded into it for the host's Python and platforms."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [p for p in pins if find_wheel(p, cache) is None]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
               HOST_PYTHON, "--implementation", "cp", "-d", str(cache)]
        for platform in platforms:
            cmd += ["--platform", platform]
        print(f"downloading {len(missing)} wheels into {cache}", flush=True)
        if subprocess.run(cmd + missing).returncode != 0:
            raise BundleError(f"pip download failed for some of: {' '.join(missing)}")
    wheels = []
    for pin in pins:
        wheel = find_wheel(pin, cache)
        if wheel is None:
            raise BundleError(f"no wheel for {pin} in {cache} after pip download")
        wheels.append(wheel)
    return wheels


def site_members(zf: zipfile.ZipFile):
    """(path parts in the site, member) of each file of a wheel, laid out as pip --target lays it out:
    purelib/platlib of `.data` at the top, no scripts, headers or data."""
    for info in zf.infolist():
        if info.is_dir():
            continue
        parts = info.filename.split("/")
        if parts[0].endswith(".data"):
            if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                continue  # nothing the host imports
            parts = parts[2:]
        yield parts, info


def install_wheel(wheel: Path, site: Path) -> None:
    """Unpack a wheel into site (see site_members)."""
    with zipfile.ZipFile(wheel) as zf:
        for parts, info in site_members(zf):
            target = site.joinpath(*parts)
            if ".." in parts or not target.resolve().is_relative_to(site.resolve()):
                raise BundleError(f"{wheel.name}: refusing the path {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if (info.external_attr >> 16) & 0o111:
                target.chmod(0o755)


def slim(site: Path, recipe: Recipe) -> list[str]:
    """Apply the recipe's removals and debug stripping; returns what was done, one line each."""
    done = []
    for rel in recipe.remove:
        path = site / rel
        if not path.exists():
            raise BundleError(f"recipe {recipe.name}: {rel} is not in the unpacked wheels (wrong version?)")
        size = tree_size(path)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        done.append(f"removed {rel} ({size / 2**20:.1f} MiB)")
    for rel in recipe.strip_debug:
        path = site / rel
        if not path.is_file():
            raise BundleError(f"recipe {recipe.name}: {rel} is not in the unpacked wheels (wrong version?)")
        if shutil.which("strip") is None:
            done.append(f"kept {rel} unstripped (no `strip` on this machine)")
            continue
        before = path.stat().st_size
        subprocess.run(["strip", "--strip-debug", str(path)], check=True)
        done.append(f"stripped debug info of {rel} ({before / 2**20:.1f} -> {path.stat().st_size / 2**20:.1f} MiB)")
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    return done


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_own_wheel(dest: Path) -> Path:
    """mla_backend's wheel (pure Python + kernel sources; the host builds the extension on first use)."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / "pyproject.toml").is_file():
        raise BundleError("bundling mla_backend needs its source checkout (pyproject.toml not found); "
                          "pass --no-mla-backend to leave it out")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dest), str(repo)]
    env = {**os.environ, "MLA_BACKEND_NO_AOT": "1"}
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        raise BundleError(f"building the mla_backend wheel failed: {' '.join(cmd)}")
    return next(dest.glob("mla_backend-*.whl"))


def write_archive(site: Path, archive: Path) -> None:
    """A reproducible tar (sorted names, fixed owner and mtime) compressed with xz -9."""
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "bundle.tar"
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(site.rglob("*")):
                if path.is_dir():
                    continue
                info = tar.gettarinfo(str(path), arcname=path.relative_to(site).as_posix())
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        if shutil.which("xz"):
            with open(archive, "wb") as out:
                subprocess.run(["xz", "-9", "-T0", "-c", str(tar_path)], stdout=out, check=True)
        else:
            with open(tar_path, "rb") as src, lzma.open(archive, "wb", preset=9) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def split(archive: Path, out: Path, part_bytes: int) -> list[Path]:
    """Cut the archive into `out/<name>.part-00`, `-01`, ... of at most part_bytes each."""
    parts = []
    with open(archive, "rb") as f:
        while chunk := f.read(part_bytes):
            part = out / f"{archive.name}.part-{len(parts):02d}"
            part.write_bytes(chunk)
            parts.append(part)
    return parts


def build(recipe: Recipe, out: Path, part_mib: float = DEFAULT_PART_MIB, wheel_cache: Path | None = None,
          with_mla_backend: bool = True) -> list[Path]:
    """Build the bundle into `out` (its old parts are replaced); returns the part files."""
    part_bytes = int(part_mib * 2**20)
    if part_bytes < 1:
        raise BundleError(f"--part-mib: expected a positive size, got {part_mib}")
    pins = recipe.pins()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheels = fetch_wheels(pins, wheel_cache or tmp / "wheels", recipe.platforms)
        if with_mla_backend:
            wheels.append(build_own_wheel(tmp / "own"))
        site = tmp / "site"
        site.mkdir()
        for wheel in wheels:
            install_wheel(wheel, site)
        actions = slim(site, recipe)
        manifest = {"recipe": recipe.name, "env": recipe.env, "slimmed": actions,
                    "wheels": {w.name: sha256_file(w) for w in wheels}}
        (site / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        print(f"{len(wheels)} wheels unpacked, {tree_size(site) / 2**20:.0f} MiB; " + "; ".join(actions), flush=True)
        parts = write_bundle(site, out, part_bytes)
    for p in parts:
        print(f"{p}  {p.stat().st_size / 2**20:.1f} MiB")
    return parts


def write_bundle(site: Path, out: Path, part_bytes: int) -> list[Path]:
    """Pack the folder `site` (MANIFEST at its top) into `out` as a bundle: the archive's parts (the old ones
    replaced), SHA256SUMS and this file as the unpacker. Returns the parts. The benchmarks' peer bundle is one too."""
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob(f"{ARCHIVE}.part-*"), out / SUMS, out / UNPACKER]:
        old.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / ARCHIVE
        write_archive(site, archive)
        whole = sha256_file(archive)
        parts = split(archive, out, part_bytes)
    lines = [f"{sha256_file(p)}  {p.name}" for p in parts] + [f"{whole}  {ARCHIVE}"]
    (out / SUMS).write_text("\n".join(lines) + "\n")
    shutil.copyfile(__file__, out / UNPACKER)
    return parts


# --------------------------------------------------------------------------------------------- unpack


def read_sums(src: Path) -> tuple[dict[str, str], str]:
    sums_file = src / SUMS
    if not sums_file.is_file():
        raise BundleError(f"{src}: no {SUMS} (is this a folder written by `mla-backend bundle build`?)")
    parts, whole = {}, None
    for line in sums_file.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if name == ARCHIVE:
            whole = digest
        else:
            parts[name] = digest
    if whole is None or not parts:
        raise BundleError(f"{sums_file}: expected one line per part and one for {ARCHIVE}")
    return parts, whole


# Python >= 3.12 (and security backports) check members themselves too; the checks above hold everywhere.
_SAFE_EXTRACT = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class _Concat(io.RawIOBase):
    """The parts read back to back as one stream, hashed on the way."""

    def __init__(self, paths: list[Path]):
        self._paths = list(paths)
        self._file = None
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self._file is None:
                if not self._paths:
                    return 0
                self._file = open(self._paths.pop(0), "rb")
            n = self._file.readinto(buffer)
            if n:
                self.digest.update(memoryview(buffer)[:n])
                return n
            self._file.close()
            self._file = None


def extract(src: Path, target: Path) -> dict:
    """Check every part against SHA256SUMS and extract the archive into `target`, streaming (no part is held in
    memory); returns the bundle's manifest."""
    parts, whole = read_sums(src)
    missing = [name for name in parts if not (src / name).is_file()]
    if missing:
        raise BundleError(f"{src}: missing parts {missing} (copy every {ARCHIVE}.part-* listed in {SUMS})")
    for name, digest in parts.items():
        if sha256_file(src / name) != digest:
            raise BundleError(f"{src / name}: sha256 differs from {SUMS} (a truncated or corrupted copy)")
    target.mkdir(parents=True, exist_ok=True)
    stream = _Concat([src / name for name in sorted(parts)])
    with lzma.open(io.BufferedReader(stream, 1 << 20)) as xz, tarfile.open(fileobj=xz, mode="r|") as tar:
        for member in tar:
            if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in member.name.split("/"):
                raise BundleError(f"{src}: refusing the archive member {member.name}")
            tar.extract(member, target, set_attrs=False, **_SAFE_EXTRACT)
            if member.isfile():
                if member.mode & 0o111:
                    (target / member.name).chmod(0o755)
                # The archive's fixed mtime, not the time of extraction: a JIT compile cache made from the same
                # bundle on another machine (FlashInfer's ninja builds) must stay newer than the sources it was
                # built from, or every fresh machine recompiles it.
                os.utime(target / member.name, (member.mtime, member.mtime))
    if stream.digest.hexdigest() != whole:
        raise BundleError(f"{src}: the joined parts do not match {ARCHIVE}'s sha256 in {SUMS}")
    return json.loads((target / MANIFEST).read_text())


def unpack(src: Path, target: Path) -> Path | None:
    """Check, extract and write target/activate.sh; returns its path (None for a bundle whose manifest says
    "activate": false, such as the benchmarks' peers, which are loaded by their own code, not put on PYTHONPATH)."""
    manifest = extract(src, target)
    if not manifest.get("activate", True):
        return None
    activate = target / ACTIVATE
    lines = [f"# source {activate}  (written by mla-backend bundle unpack, recipe {manifest['recipe']})",
             f'export PYTHONPATH="{target}${{PYTHONPATH:+:$PYTHONPATH}}"']
    lines += [f"export {key}={value}" for key, value in sorted(manifest["env"].items())]
    activate.write_text("\n".join(lines) + "\n")
    return activate


# ------------------------------------------------------------------------------------------------ CLI


def default_recipe() -> str:
    # Imported here: the copy of this file beside a bundle runs without mla_backend, and only unpacks.
    from mla_backend.engines import ENGINES

    return ENGINES["vllm"].recommended().bundle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="{build,unpack}")
    b = actions.add_parser("build", help="download, slim and pack a recipe's wheels into parts (needs PyPI)")
    b.add_argument("--out", type=Path, required=True, help="folder for the parts and SHA256SUMS")
    b.add_argument("--recipe", choices=sorted(RECIPES),
                   help="default: the one of the vLLM release verified on a GPU (mla_backend/engines.py)")
    b.add_argument("--part-mib", type=float, default=DEFAULT_PART_MIB,
                   help=f"largest part, MiB (default {DEFAULT_PART_MIB})")
    b.add_argument("--wheels", type=Path, help="wheel cache folder: reused, and downloads go there")
    b.add_argument("--no-mla-backend", dest="with_mla_backend", action="store_false",
                   help="leave mla_backend itself out (install it on the host some other way)")
    u = actions.add_parser("unpack", help="check the parts, extract them and write SITE/activate.sh")
    u.add_argument("src", type=Path, help="folder holding the parts and SHA256SUMS")
    u.add_argument("--target", type=Path, required=True, help="folder to extract into (goes on PYTHONPATH)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "build":
            build(RECIPES[args.recipe or default_recipe()], args.out, args.part_mib, args.wheels, args.with_mla_backend)
            print(f"copy the folder {args.out} to the host, then run there:\n"
                  f"  python3 DIR/{UNPACKER} unpack DIR --target SITE && source SITE/{ACTIVATE}")
        else:
            activate = unpack(args.src, args.target)
            print(f"unpacked into {args.target}" + (f"; now run:  source {activate}" if activate else ""))
    except BundleError as exc:
        print(f"mla-backend bundle: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=Path(sys.argv[0]).name, description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""mla_backend.cli.bundle on small made-up wheels: build -> parts -> unpack, and every way a copy can go wrong."""
from __future__ import annotations

import io
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from mla_backend import _build
from mla_backend.cli import bundle
from mla_backend.cli import main as cli
from mla_backend.cli.bundle import ARCHIVE, SUMS, BundleError, Recipe


def make_wheel(directory: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
    return wheel


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "LOCK_DIR", tmp_path)
    (tmp_path / "test.txt").write_text("# a comment\nalpha==1.0\n\nbeta==2.0  # trailing comment\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "alpha", "1.0", {
        "alpha/__init__.py": b"VALUE = 1\n",
        "alpha/blob.bin": os.urandom(6000),     # incompressible: several parts at 1 KiB
        "alpha-1.0.data/purelib/alpha_extra.py": b"EXTRA = 2\n",
        "alpha-1.0.data/scripts/alpha-tool": b"#!/bin/sh\n",
    })
    make_wheel(wheels, "beta", "2.0", {"beta/__init__.py": b"", "beta/unused/big.py": b"x = 0\n"})
    return Recipe(name="test", lock="test.txt", remove=("beta/unused",), env={"SOME_FLAG": "0"}), wheels


def build(recipe_and_wheels, out: Path) -> list[Path]:
    recipe, wheels = recipe_and_wheels
    return bundle.build(recipe, out, part_mib=1 / 1024, wheel_cache=wheels, with_mla_backend=False)


def test_build_then_unpack_gives_the_slimmed_site_and_an_activate_script(recipe, tmp_path):
    parts = build(recipe, tmp_path / "out")
    assert len(parts) >= 5 and all(p.stat().st_size <= 1024 for p in parts)
    activate = bundle.unpack(tmp_path / "out", tmp_path / "site")
    site = tmp_path / "site"
    assert (site / "alpha" / "__init__.py").read_text() == "VALUE = 1\n"
    assert (site / "alpha_extra.py").is_file()                 # .data/purelib lands at the top, like pip
    assert not list(site.rglob("alpha-tool"))                  # scripts are not shipped
    assert not (site / "beta" / "unused").exists() and (site / "beta" / "__init__.py").is_file()
    assert (site / "beta-2.0.dist-info" / "METADATA").is_file()  # entry points stay discoverable
    text = activate.read_text()
    assert f'export PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}"' in text and "export SOME_FLAG=0" in text


def test_unpacked_files_keep_the_archives_fixed_mtime(recipe, tmp_path):
    """Not the time of extraction: a compile cache made from the same bundle elsewhere stays newer than them."""
    build(recipe, tmp_path / "out")
    bundle.unpack(tmp_path / "out", tmp_path / "site")
    files = [p for p in (tmp_path / "site").rglob("*") if p.is_file() and p.name != "activate.sh"]
    assert files and {p.stat().st_mtime for p in files} == {0}


def test_the_copied_unpacker_works_without_mla_backend(recipe, tmp_path):
    build(recipe, tmp_path / "out")
    unpacker = tmp_path / "out" / bundle.UNPACKER
    # -I: isolated mode, so neither this checkout nor an installed mla_backend is importable.
    done = subprocess.run([sys.executable, "-I", str(unpacker), "unpack", str(tmp_path / "out"), "--target",
                           str(tmp_path / "site")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "alpha" / "__init__.py").is_file() and "activate.sh" in done.stdout


def test_the_same_wheels_give_the_same_bytes(recipe, tmp_path):
    build(recipe, tmp_path / "a")
    build(recipe, tmp_path / "b")
    assert (tmp_path / "a" / SUMS).read_text() == (tmp_path / "b" / SUMS).read_text()


def test_a_corrupted_part_is_named(recipe, tmp_path):
    parts = build(recipe, tmp_path / "out")
    data = bytearray(parts[1].read_bytes())
    data[10] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{parts[1].name}: sha256 differs"):
        bundle.unpack(tmp_path / "out", tmp_path / "site")


def test_a_missing_part_is_named(recipe, tmp_path):
    parts = build(recipe, tmp_path / "out")
    parts[-1].unlink()
    with pytest.raises(BundleError, match=rf"missing parts \['{parts[-1].name}'\]"):
        bundle.unpack(tmp_path / "out", tmp_path / "site")


def test_a_folder_without_sums_is_refused(tmp_path):
    with pytest.raises(BundleError, match=SUMS):
        bundle.unpack(tmp_path, tmp_path / "site")


def test_an_archive_reaching_outside_the_target_is_refused(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    archive = lzma.compress(raw.getvalue())
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{ARCHIVE}.part-00").write_bytes(archive)
    digest = bundle.sha256_file(src / f"{ARCHIVE}.part-00")
    (src / SUMS).write_text(f"{digest}  {ARCHIVE}.part-00\n{digest}  {ARCHIVE}\n")
    with pytest.raises(BundleError, match="refusing the archive member ../escape.py"):
        bundle.unpack(src, tmp_path / "site" / "inner")
    assert not (tmp_path / "site" / "escape.py").exists()


def test_a_recipe_removal_that_matches_nothing_is_an_error(recipe, tmp_path):
    base, wheels = recipe
    stale = Recipe(name="stale", lock=base.lock, remove=("gamma/gone.so",))
    with pytest.raises(BundleError, match="gamma/gone.so is not in the unpacked wheels"):
        bundle.build(stale, tmp_path / "out", wheel_cache=wheels, with_mla_backend=False)


def test_lock_lines_must_be_exact_pins(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "LOCK_DIR", tmp_path)
    (tmp_path / "loose.txt").write_text("alpha>=1.0\n")
    with pytest.raises(BundleError, match="name==version"):
        Recipe(name="loose", lock="loose.txt").pins()
    (tmp_path / "twice.txt").write_text("Alpha_X==1.0\nalpha-x==1.1\n")
    with pytest.raises(BundleError, match="pinned more than once"):
        Recipe(name="twice", lock="twice.txt").pins()


def test_the_vllm_recipe_pins_vllm_and_our_cutlass():
    pins = bundle.RECIPES["vllm-0.26.0"].pins()
    assert "vllm==0.26.0" in pins and _build.CUTLASS_REQUIREMENT in pins
    assert len(pins) == 74
    assert bundle.RECIPES["vllm-0.26.0"].env["VLLM_USE_FLASHINFER_SAMPLER"] == "0"


VLLM_PLATFORMS = ("manylinux_2_31_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64",
                  "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64",
                  "manylinux1_x86_64")


def test_each_recipe_downloads_for_its_own_platforms():
    # The vLLM bundle's downloads stay what they were; sglang 0.5.17's cp312 wheel is manylinux_2_34 only.
    assert bundle.RECIPES["vllm-0.26.0"].platforms == VLLM_PLATFORMS
    sglang = bundle.RECIPES["sglang-0.5.17"].platforms
    assert "manylinux_2_34_x86_64" in sglang and set(VLLM_PLATFORMS) <= set(sglang)


def test_pip_download_is_asked_for_the_recipe_platforms(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(bundle.subprocess, "run",
                        lambda cmd, *args, **kwargs: calls.append(cmd) or subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(BundleError, match="pip download failed"):
        bundle.fetch_wheels(["alpha==1.0"], tmp_path, ("manylinux_2_34_x86_64", "manylinux_2_17_x86_64"))
    (cmd,) = calls
    platforms = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--platform"]
    assert platforms == ["manylinux_2_34_x86_64", "manylinux_2_17_x86_64"] and cmd[-1] == "alpha==1.0"


def test_the_sglang_recipe_pins_sglang_its_transformers_and_our_cutlass():
    recipe = bundle.RECIPES["sglang-0.5.17"]
    pins = recipe.pins()
    assert {"sglang==0.5.17", "sglang-kernel==0.4.5", "flashinfer-python==0.6.15.post1", "xgrammar==0.2.1",
            "transformers==5.12.1", _build.CUTLASS_REQUIREMENT} <= set(pins)
    assert len(pins) == 49
    assert not any(p.split("==")[0] in ("torch", "triton", "nvidia-cutlass-dsl", "tilelang") for p in pins)
    assert "sgl_kernel/flash_ops.abi3.so" in recipe.remove
    assert recipe.env["HF_HUB_OFFLINE"] == "1"


def test_cli_unpack_reports_a_bad_folder_with_exit_code_2(tmp_path, capsys):
    assert cli.main(["bundle", "unpack", str(tmp_path), "--target", str(tmp_path / "site")]) == 2
    assert "no SHA256SUMS" in capsys.readouterr().err


def test_cli_lists_bundle(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bundle", "build", "--help"])
    assert "--part-mib" in capsys.readouterr().out

"""tests/conftest.py: without a Hopper GPU, GPU tests are deselected and counted in one line, unless -m is given."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import hopper_available

pytestmark = pytest.mark.skipif(hopper_available(), reason="checks the runs of a machine without a Hopper GPU")

CONFTEST = Path(__file__).resolve().parent / "conftest.py"
REPO = CONFTEST.parent.parent


@pytest.fixture
def suite(tmp_path):
    shutil.copy2(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs a Hopper GPU\n")
    (tmp_path / "test_cpu.py").write_text("def test_cpu():\n    pass\n")
    (tmp_path / "test_gpu.py").write_text(textwrap.dedent("""
        import pytest
        from conftest import requires_hopper

        pytestmark = [pytest.mark.gpu, requires_hopper]

        @pytest.mark.parametrize("n", range(3))
        def test_gpu(n):
            pass
    """))
    return tmp_path


def run(suite, *args):
    # the copied conftest imports mla_backend: this checkout's, whatever the venv has installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=suite,
                            capture_output=True, text=True, timeout=120, env=env)
    return result.returncode, result.stdout


def test_gpu_tests_are_deselected_and_counted_in_one_line(suite):
    rc, out = run(suite)
    assert rc == 0, out
    assert "3 GPU tests deselected (no Hopper GPU here)" in out and "pytest -q tests -m gpu" in out
    assert "1 passed, 3 deselected" in out and "skipped" not in out


def test_a_marker_expression_keeps_them(suite):
    rc, out = run(suite, "-m", "gpu")
    assert rc == 0, out
    assert "3 skipped, 1 deselected" in out and "GPU tests deselected" not in out


def test_a_run_of_gpu_tests_only_skips_them_rather_than_collecting_nothing(suite):
    rc, out = run(suite, "test_gpu.py")
    assert rc == 0, out  # not 5
    assert "3 skipped" in out and "GPU tests deselected" not in out

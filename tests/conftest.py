import pytest

from mla_backend.kernel_facts import HOPPER, current_gpu_is_hopper

hopper_available = current_gpu_is_hopper


requires_hopper = pytest.mark.skipif(not hopper_available(), reason=f"needs {HOPPER}")


# Without a Hopper GPU the ~1200 kernel tests could only skip, one line each in -rs and a count that buries the
# CPU result: unless a marker expression was given (`-m gpu` runs them), they are deselected and counted in one
# line. A run of nothing but GPU tests keeps them, skipping, so that it never collects nothing (exit code 5).
_GPU_DESELECTED = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    if config.option.markexpr or hopper_available():
        return
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu or len(gpu) == len(items):
        return
    items[:] = [item for item in items if item.get_closest_marker("gpu") is None]
    config.hook.pytest_deselected(items=gpu)
    config.stash[_GPU_DESELECTED] = len(gpu)


def pytest_terminal_summary(terminalreporter, config):
    count = config.stash.get(_GPU_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{count} GPU tests deselected (no Hopper GPU here); on an H100/H200 run them "
                                    "with `python -m pytest -q tests -m gpu`")

import pytest

from mla_backend.kernel_facts import HOPPER, current_gpu_is_hopper

hopper_available = current_gpu_is_hopper

requires_hopper = pytest.mark.skipif(not hopper_available(), reason=f"needs {HOPPER}")

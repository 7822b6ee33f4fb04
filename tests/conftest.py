import pytest
import torch


def hopper_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9


requires_hopper = pytest.mark.skipif(not hopper_available(), reason="needs a Hopper GPU (compute capability 9.x)")

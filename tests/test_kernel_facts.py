"""One Hopper check and one sentence for every refusal of another GPU (the numbers are checked against the CUDA
sources in test_tile_scheduler.py)."""
import pytest
import torch

from mla_backend import _build, ops
from mla_backend.cli import doctor, serve
from mla_backend.engine_limits import refusal, unsupported_reasons
from mla_backend.kernel_facts import HOPPER, is_hopper, not_hopper, parse_capability

A100 = "NVIDIA A100-SXM4-80GB"


@pytest.mark.parametrize("capability,hopper", [((9, 0), True), ((9, 1), True), ((8, 0), False), ((10, 0), False),
                                               ((12, 0), False), (None, False)])
def test_is_hopper_is_compute_capability_9(capability, hopper):
    assert is_hopper(capability) is hopper
    assert (not_hopper(capability) is None) is hopper if capability else True


@pytest.mark.parametrize("text,capability", [("9.0", (9, 0)), (" 10.0\n", (10, 0)), ("[N/A]", None), ("", None)])
def test_nvidia_smi_capabilities_are_parsed(text, capability):
    assert parse_capability(text) == capability


def test_every_refusal_of_another_gpu_says_the_same_sentence(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: A100)
    messages = []
    for refuse in (lambda: ops._check_hopper(torch.device("cuda", 0)), lambda: _build._require_hopper_gpu(torch)):
        with pytest.raises(RuntimeError) as info:
            refuse()
        messages.append(str(info.value))
    messages.append(refusal(unsupported_reasons(page_flag="--block-size", capability=(8, 0))))
    for message in messages:
        assert f"the kernel needs {HOPPER}, but " in message and "has compute capability 8.0" in message, message
    assert A100 in messages[0] and f"GPU 0 ({A100})" in messages[1] and "this GPU" in messages[2]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu_row = doctor._gpu_check(torch, {})
    assert gpu_row.status == doctor.FAIL and HOPPER in gpu_row.fix


@pytest.mark.parametrize("caps,listed", [(["8.0", "9.0"], True), (["8.0"], False), (["10.0", "[N/A]"], False)])
def test_serve_reads_nvidia_smi_with_the_same_check(monkeypatch, caps, listed):
    gpus = [{"name": "GPU", "compute_cap": cap, "driver": "580.65"} for cap in caps]
    monkeypatch.setattr(doctor, "nvidia_smi", lambda: {"gpus": gpus})
    assert serve._hopper_listed() is listed

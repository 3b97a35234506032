import pytest
import torch

from aigc_desktop.core.errors import UserError
from aigc_desktop.engines import device


def test_auto_picks_best_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.resolve_device("auto").type == "cpu"


def test_unavailable_or_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="not available"):
        device.resolve_device("cuda")
    with pytest.raises(UserError, match="Unknown device"):
        device.resolve_device("tpu")


def test_dtype_defaults_and_overrides():
    assert device.resolve_dtype(torch.device("cuda"), "auto") == torch.float16
    assert device.resolve_dtype(torch.device("cuda"), "bf16") == torch.bfloat16
    assert device.resolve_dtype(torch.device("cpu"), "auto") == torch.float32
    with pytest.raises(UserError):
        device.resolve_dtype(torch.device("cpu"), "fp16")
    with pytest.raises(UserError):
        device.resolve_dtype(torch.device("cpu"), "int8")


@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (4, 3), (8, 8)])
def test_threads_leave_a_core_to_the_ui_on_small_machines(monkeypatch, cores, expected):
    monkeypatch.setattr(device.os, "cpu_count", lambda: cores)
    assert device.default_threads() == expected
    assert device.default_threads(5) == 5


def test_model_memory_estimate_from_headers(tiny_sd_path):
    from aigc_desktop.engines.diffusion.engine import estimate_bytes

    params = sum(p.numel() for name in ("unet", "vae", "text_encoder")
                 for p in __import__("safetensors.torch", fromlist=["load_file"]).load_file(
                     str(next((tiny_sd_path / name).glob("*.safetensors")))).values())
    assert estimate_bytes(tiny_sd_path, 4) == params * 4
    assert estimate_bytes(tiny_sd_path, 2) == params * 2

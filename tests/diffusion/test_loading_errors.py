"""Bad model files get one clear line and never run code: truncated / corrupted safetensors, pickles naming
anything but tensors and containers, folders that are not models, files of the wrong kind."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aigc_desktop.core.detect import identify
from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.engines.diffusion.loader import load_model
from aigc_desktop.engines.diffusion.single_file import safe_torch_load
from aigc_desktop.testing.original_layout import checkpoint_state_dict
from aigc_desktop.testing.tiny import tiny_family_pipeline
from tests.diffusion.loading_support import CPU, one_thread  # noqa: F401 - autouse fixture



@pytest.fixture(scope="module")
def sd1_state():
    return checkpoint_state_dict(tiny_family_pipeline("sd1", seed=5), "sd1")


def _load_error(path, **ref) -> str:
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRef(str(path), **ref), CPU, torch.float32)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def test_truncated_and_corrupted_safetensors(sd1_state, tmp_path):
    good = tmp_path / "good.safetensors"
    save_file(sd1_state, str(good))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated" in _load_error(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + b"\0" * 64)
    assert "corrupted" in _load_error(garbage)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    assert "not a safetensors file" in _load_error(empty)


class _Payload:
    """Unpickling this with plain pickle would create `target` (a harmless stand-in for real damage)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_ckpt_is_refused_and_never_executed(sd1_state, tmp_path):
    target = tmp_path / "pwned"
    # A torch zip checkpoint with real weights and a payload beside them.
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": dict(list(sd1_state.items())[:20]), "hook": _Payload(str(target))}, str(ckpt))
    message = _load_error(ckpt)
    assert "refused" in message and "system" in message
    # A bare pickle (protocol 4, STACK_GLOBAL) named .pt.
    bare = tmp_path / "evil.pt"
    bare.write_bytes(pickle.dumps({"model.diffusion_model.x": _Payload(str(target))}, protocol=4))
    assert "refused" in _load_error(bare)
    # Identification and the catalog only scan the opcodes.
    identify(ckpt), identify(bare)
    assert not target.exists()


def test_ckpt_with_lightning_callback_and_numpy_scalars_loads(sd1_state, tmp_path, monkeypatch):
    """Full training checkpoints carry a Lightning ModelCheckpoint and numpy scores: inert stand-ins."""
    name = "pytorch_lightning.callbacks.model_checkpoint"
    for i in range(1, 4):  # a fake package, only for writing the file
        monkeypatch.setitem(sys.modules, ".".join(name.split(".")[:i]), types.ModuleType(name))

    class ModelCheckpoint:
        def __init__(self):
            self.best_model_score = np.float64(0.25)
            self.monitor = "val/loss"

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = name, "ModelCheckpoint"
    sys.modules[name].ModelCheckpoint = ModelCheckpoint
    path = tmp_path / "full.ckpt"
    torch.save({"state_dict": sd1_state, "global_step": 470000, "callbacks": {"cb": ModelCheckpoint()},
                "best": np.float64(1.5)}, str(path))
    monkeypatch.undo()
    obj = safe_torch_load(path)
    assert type(obj["callbacks"]["cb"]).__name__ == "ModelCheckpoint"
    assert not isinstance(obj["callbacks"]["cb"], ModelCheckpoint)  # a stand-in, not the class
    model = load_model(ModelRef(str(path)), CPU, torch.float32)
    assert model.family == "sd1"


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.txt").write_text("hello")
    assert "not a diffusers model folder" in _load_error(tmp_path / "photos")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline", "unet": '
                                             '["diffusers", "UNet2DConditionModel"]}')
    assert "Could not load model folder broken" in _load_error(broken)


def test_wrong_kind_of_file(tmp_path):
    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 4)}, str(lora))
    assert "is not a Stable Diffusion checkpoint (found lora)" in _load_error(lora)
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    assert "unsupported file type" in _load_error(text)
    assert "VAE file not found" in _load_error(lora, vae=str(tmp_path / "missing.safetensors"))


def test_lora_given_as_vae(sd1_state, tmp_path):
    model = tmp_path / "model.safetensors"
    save_file(sd1_state, str(model))
    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(4, 32)}, str(lora))
    assert "is not a VAE (found lora)" in _load_error(model, vae=str(lora))


def test_incomplete_and_mismatched_checkpoints(sd1_state, tmp_path):
    missing = dict(sd1_state)
    del missing["model.diffusion_model.middle_block.1.proj_out.weight"]
    path = tmp_path / "missing.safetensors"
    save_file(missing, str(path))
    assert "the UNet lacks 1 of its" in _load_error(path)
    no_vae = {k: v for k, v in sd1_state.items() if not k.startswith("first_stage_model.")}
    path = tmp_path / "novae.safetensors"
    save_file(no_vae, str(path))
    assert "has no VAE weights; choose a VAE file" in _load_error(path)
    mixed = dict(sd1_state)
    mixed.update({k: torch.zeros(*v.shape[:-1], 16) for k, v in sd1_state.items() if k.endswith("attn2.to_k.weight")
                  or k.endswith("attn2.to_v.weight")})
    path = tmp_path / "mixed.safetensors"
    save_file(mixed, str(path))
    assert "cross-attention expects 16" in _load_error(path)


@pytest.mark.parametrize("key", ["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                                 "model.diffusion_model.input_blocks.0.0.weight",
                                 "first_stage_model.decoder.conv_in.weight"])
@pytest.mark.parametrize("shape", [(0,), (3,), (1, 1, 1, 1, 1), (0, 8)])
def test_tensors_of_the_wrong_rank_or_empty(sd1_state, tmp_path, key, shape):
    """A tensor where the layout needs another rank (or an empty one): one line, never an unpacking error."""
    broken = dict(sd1_state)
    broken[key] = torch.zeros(shape)
    path = tmp_path / "odd.safetensors"
    save_file(broken, str(path))
    assert "odd.safetensors" in _load_error(path)

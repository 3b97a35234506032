"""Real-sized layouts, without weights: the released SD 1.5, SD 2.x and SDXL architectures, written in the
original single-file key layout as shape-only (meta) tensors, must come back from the loader as exactly the
architectures diffusers publishes (sizes read from shapes + the family conventions in resources/configs)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.core.paths import resources_dir
from aigc_desktop.engines.diffusion.single_file import StateFile, build_checkpoint
from aigc_desktop.testing.original_layout import checkpoint_state_dict
from tests.diffusion.loading_support import one_thread  # noqa: F401 - autouse fixture

# Parameter counts of the released models (UNet, VAE, text encoders as diffusers builds them).
RELEASED = {
    "sd15": ("sd1", "v1-5-pruned-emaonly.safetensors", 859_520_964, [123_060_480]),
    "sd2": ("sd2", "v2-1_512-ema-pruned.safetensors", 865_910_724, [340_387_840]),
    "sd2-v": ("sd2", "v2-1_768-ema-pruned.safetensors", 865_910_724, [340_387_840]),
    "sdxl": ("sdxl", "sd_xl_base_1.0.safetensors", 2_567_463_684, [123_060_480, 694_659_840]),
}
VAE_PARAMS = 83_653_863


def _config(name: str, part: str) -> dict:
    return json.loads((resources_dir() / "configs" / name / part / "config.json").read_text())


def _released_parts(name: str) -> SimpleNamespace:
    """The released architecture on the meta device (built from the published config values)."""
    import transformers
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel

    index = json.loads((resources_dir() / "configs" / name / "model_index.json").read_text())
    with init_empty_weights():
        parts = {"unet": UNet2DConditionModel.from_config(_config(name, "unet")),
                 "vae": AutoencoderKL.from_config(_config(name, "vae"))}
        for slot in ("text_encoder", "text_encoder_2"):
            if slot in index:
                cls = getattr(transformers, index[slot][1])
                parts[slot] = cls(transformers.CLIPTextConfig(**_config(name, slot)))
    return SimpleNamespace(**parts)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", list(RELEASED))
def test_released_architectures_come_back_from_their_original_layout(name):
    family, filename, unet_params, text_params = RELEASED[name]
    state = checkpoint_state_dict(_released_parts(name), family)
    sf = StateFile(Path(filename), {k: tuple(v.shape) for k, v in state.items()},
                   {k for k, v in state.items() if v.is_floating_point()}, {}, None, state.__getitem__)
    model = build_checkpoint(ModelRef(filename), sf, torch.float16)

    assert model.family == family
    expected_prediction = "v_prediction" if name == "sd2-v" else "epsilon"
    assert model.scheduler_config["prediction_type"] == expected_prediction
    pipe = model.pipe
    assert _count(pipe.unet) == unet_params and _count(pipe.vae) == VAE_PARAMS
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    assert [_count(e) for e in encoders] == text_params
    unet = _config(name, "unet")
    for key in ("block_out_channels", "attention_head_dim", "cross_attention_dim", "layers_per_block",
                "down_block_types", "up_block_types", "use_linear_projection", "upcast_attention",
                "transformer_layers_per_block", "addition_time_embed_dim", "projection_class_embeddings_input_dim"):
        if key in unet:
            got = pipe.unet.config[key]
            assert (list(got) if isinstance(got, (list, tuple)) else got) == unet[key], key
    for slot, encoder in zip(("text_encoder", "text_encoder_2"), encoders):
        released = _config(name, slot)
        for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "hidden_act",
                    "max_position_embeddings", "vocab_size"):
            assert getattr(encoder.config, key) == released[key], (slot, key)
    if family == "sdxl":
        assert pipe.text_encoder_2.config.projection_dim == 1280
    vae = _config(name, "vae")
    for key in ("block_out_channels", "scaling_factor", "latent_channels", "layers_per_block"):
        got = pipe.vae.config[key]
        assert (list(got) if isinstance(got, (list, tuple)) else got) == vae[key], key

"""Weights that produce NaN/Inf: the VAE decode is retried once in float32 (A1111's --no-half-vae fallback),
otherwise the job fails with "the model produced invalid values (NaN)" and no black image is saved."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from aigc_desktop.engines.diffusion import decode
from tests.hostile.conftest import one_error_line, run_cli


def _tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 32), layers_per_block=1,
                         norm_num_groups=32, sample_size=16).eval()


def test_half_precision_overflow_is_decoded_again_in_float32():
    vae = _tiny_vae()
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(1e5)  # outputs beyond float16's 65504: inf in half, finite in float32
    z = torch.randn(1, 4, 8, 8)
    reference = vae.decode(z).sample
    assert torch.isfinite(reference).all()
    vae.to(torch.float16)
    assert not torch.isfinite(vae.decode(z.half()).sample).all()  # what a pipeline would turn into black
    retries = []
    with decode.finite_decode(vae, lambda: retries.append(1)), torch.no_grad():
        out = vae.decode(z.half(), return_dict=False)[0]
        again = vae.decode(z.half()).sample  # remembered: straight to float32, no second warning
    assert retries == [1] and torch.isfinite(out).all() and torch.isfinite(again).all()
    # Same weights (fp16-rounded) in float32: within float16's rounding of weights and latents (measured
    # relative error here about 1e-3; 1e-2 of the output's range leaves room across machines).
    assert (out.float() - reference).abs().max() <= 1e-2 * reference.abs().max()
    assert vae.dtype == torch.float16  # put back after each float32 decode
    assert "decode" not in vae.__dict__  # the wrapper is gone after the block


def test_nan_in_float32_or_in_the_latents_fails_with_one_line():
    vae = _tiny_vae()
    with torch.no_grad():
        vae.decoder.conv_out.bias.fill_(float("nan"))
    with decode.finite_decode(vae), torch.no_grad(), pytest.raises(decode.InvalidValues) as err:
        vae.decode(torch.randn(1, 4, 8, 8))
    assert "invalid values (NaN)" in str(err.value) and "\n" not in str(err.value)
    healthy = _tiny_vae()
    with decode.finite_decode(healthy), torch.no_grad(), pytest.raises(decode.InvalidValues, match="latents"):
        healthy.decode(torch.full((1, 4, 8, 8), float("nan")))


def test_generate_with_nan_weights_fails_and_saves_nothing(tiny_sd_path, tmp_path, capsys):
    folder = shutil.copytree(tiny_sd_path, tmp_path / "nan-model")
    weights = next((folder / "vae").glob("*.safetensors"))
    state = load_file(str(weights))
    key = next(k for k in state if k.startswith("decoder.conv_out.weight"))
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, str(weights))
    out = tmp_path / "o.png"
    code, stdout, err = run_cli(capsys, "generate", "--model", folder, "--prompt", "x", "--steps", "1",
                                "--width", "64", "--height", "64", "--seed", "3", "--out", out, "--quiet")
    line = one_error_line(err)
    assert code == 1 and "The model produced invalid values (NaN)" in line and "weights are broken" in line
    assert not out.exists() and stdout == ""

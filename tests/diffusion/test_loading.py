"""Loading real model layouts offline: tiny models of each family written in the original single-file layout
(and as diffusers folders), loaded through the app's loader and compared output for output with the
diffusers pipelines they came from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc_desktop.core.detect import identify
from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.engines.diffusion.loader import load_model
from aigc_desktop.testing.original_layout import save_checkpoint, save_vae
from aigc_desktop.testing.tiny import tiny_family_pipeline
from tests.diffusion.loading_support import CPU, one_thread  # noqa: F401 - autouse fixture
from tests.image_compare import assert_images_close

# A loaded model computes with the same weights as the pipeline it was written from (compared bit for bit
# below), but not the same computation: weights read from a file sit at the offsets the file gives them (not
# 64-byte aligned; fresh allocations are), and the CPU kernels then take other vector paths and round in
# other places. Measured on these float images in [0, 1]: at most 1.2e-5 under ATEN_CPU_CAPABILITY default
# and AVX2, 1.007e-5 on AVX-512 (0.003 of an 8-bit level); with the weights copied to aligned memory, 0.
# Bound: 0.05 level (2e-4) on every value; a wrong VAE scale or scheduler config moves values by many levels.
SAME_WEIGHTS = dict(level=0.05, share=1.0, mean=0.01, worst=None)

PROMPT = "a photo of a cat, (best quality)"
NEGATIVE = "blurry"

# name -> (family, inpaint, file name, save options)
CASES = {
    "sd1": ("sd1", False, "sd1.safetensors", {"ema": True}),
    "sd1-inpaint": ("sd1", True, "sd1-inpaint.safetensors", {}),
    "sd2-v": ("sd2", False, "sd2-v.safetensors", {}),
    "sd2-base-ckpt": ("sd2", False, "sd2-base.ckpt", {"global_step": 875000}),
    "sd2-inpaint": ("sd2", True, "sd2-inpaint.safetensors", {}),
    "sdxl": ("sdxl", False, "sdxl.safetensors", {}),
    "sdxl-inpaint": ("sdxl", True, "sdxl-inpaint.safetensors", {}),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each case's diffusers pipeline and its original-layout file, built once for the module."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for name, (family, inpaint, filename, options) in CASES.items():
        prediction = "epsilon" if name == "sd2-base-ckpt" else None
        pipe = tiny_family_pipeline(family, seed=3, inpaint=inpaint, prediction_type=prediction)
        out[name] = (pipe, save_checkpoint(pipe, family, folder / filename, **options))
    return out


def _run(pipe, inpaint: bool, seed: int = 7) -> np.ndarray:
    kwargs = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=2, height=64, width=64,
                  guidance_scale=6.0, generator=torch.Generator().manual_seed(seed), output_type="np")
    if inpaint:
        import diffusers

        name = type(pipe).__name__
        if "Inpaint" not in name:
            name = name.replace("Pipeline", "InpaintPipeline")
            pipe = getattr(diffusers, name)(**pipe.components)
            pipe.set_progress_bar_config(disable=True)
        g = torch.Generator().manual_seed(1)
        image = torch.rand((1, 3, 64, 64), generator=g)
        mask = torch.zeros((1, 1, 64, 64))
        mask[..., 16:48, 16:48] = 1
        kwargs.update(image=image, mask_image=mask, strength=1.0)
    return pipe(**kwargs).images


@pytest.mark.parametrize("name", list(CASES))
def test_single_file_matches_its_diffusers_model(built, name):
    family, inpaint, _file, _opts = CASES[name]
    pipe, path = built[name]
    model = load_model(ModelRef(str(path), kind="checkpoint"), CPU, torch.float32)
    assert model.family == family
    assert model.variant == ("inpaint" if inpaint else None)
    assert model.scheduler_config["prediction_type"] == pipe.scheduler.config.prediction_type
    assert type(model.pipe.scheduler).__name__ == type(pipe.scheduler).__name__
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        ours, theirs = getattr(model.pipe, part, None), getattr(pipe, part, None)
        assert (ours is None) == (theirs is None), part
        if ours is not None:
            a, b = ours.state_dict(), theirs.state_dict()
            assert a.keys() == b.keys(), part
            assert all(torch.equal(a[k], b[k]) for k in a), part
    assert_images_close(_run(model.pipe, inpaint), _run(pipe, inpaint), what=f"{name} file against its pipeline",
                        **SAME_WEIGHTS)


def test_families_and_prediction_types_detected(built):
    sd2_v, sd2_base = built["sd2-v"][1], built["sd2-base-ckpt"][1]
    assert identify(built["sdxl"][1]).family == "sdxl"
    assert identify(sd2_v).family == "sd2" and identify(sd2_base).family == "sd2"
    assert identify(built["sd1-inpaint"][1]).variant == "inpaint"
    # v-prediction is the SD 2.x default; the 512 base (global step 875000) is epsilon; the user decides last.
    assert load_model(ModelRef(str(sd2_v)), CPU, torch.float32).scheduler_config["prediction_type"] == "v_prediction"
    forced = load_model(ModelRef(str(sd2_v), prediction_type="epsilon"), CPU, torch.float32)
    assert forced.scheduler_config["prediction_type"] == "epsilon"
    assert forced.pipe.scheduler.config.prediction_type == "epsilon"


def test_diffusers_recognises_the_written_layouts(built):
    """The inverse converters write what real files hold: diffusers' own detector agrees on the kind."""
    from types import SimpleNamespace

    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    from aigc_desktop.core.detect import read_safetensors_header, tensor_shapes

    def kind(path):
        shapes = tensor_shapes(read_safetensors_header(path))
        return infer_diffusers_model_type({k: SimpleNamespace(shape=v) for k, v in shapes.items()})

    assert kind(built["sd1"][1]) == "v1"
    assert kind(built["sd1-inpaint"][1]) == "inpainting"
    assert kind(built["sdxl"][1]) == "xl_base"
    assert kind(built["sdxl-inpaint"][1]) == "xl_inpaint"


def test_open_clip_conversion_agrees_with_diffusers(built):
    """Our OpenCLIP converter gives what diffusers' own gives for the SDXL bigG tower."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from safetensors.torch import load_file

    from aigc_desktop.engines.diffusion.ldm import open_clip_to_diffusers

    pipe, path = built["sdxl"]
    state = load_file(str(path))
    prefix = "conditioner.embedders.1.model."
    theirs = convert_open_clip_checkpoint(pipe.text_encoder_2, state, prefix=prefix)
    ours = open_clip_to_diffusers({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)},
                                  drop_last_layer=False)
    ours = {(k if k == "text_projection.weight" else "text_model." + k): v for k, v in ours.items()}
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(theirs[k], ours[k]) for k in ours)


def test_half_precision_file_loads_in_fp32(built, tmp_path):
    pipe, _ = built["sd1"]
    path = save_checkpoint(pipe, "sd1", tmp_path / "sd1-fp16.safetensors", dtype=torch.float16)
    model = load_model(ModelRef(str(path)), CPU, torch.float32)
    weight = model.pipe.unet.conv_in.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, pipe.unet.conv_in.weight.half().float())


def test_diffusers_folders_of_each_family(built, tmp_path):
    for name in ("sd1", "sd1-inpaint", "sd2-v", "sdxl", "sdxl-inpaint"):
        pipe, _ = built[name]
        folder = tmp_path / name
        # One folder holds only fp16-variant weights, as some downloads do; one lacks its tokenizer files.
        pipe.save_pretrained(str(folder), safe_serialization=True, variant="fp16" if name == "sdxl" else None)
        if name == "sd2-v":
            for f in (folder / "tokenizer").iterdir():
                f.unlink()
        model = load_model(ModelRef(str(folder)), CPU, torch.float32)
        assert model.family == CASES[name][0]
        assert model.variant == ("inpaint" if CASES[name][1] else None)
        assert model.scheduler_config["prediction_type"] == pipe.scheduler.config.prediction_type
        inpaint = CASES[name][1]
        assert_images_close(_run(model.pipe, inpaint), _run(pipe, inpaint), what=f"{name} folder against its pipeline",
                            **SAME_WEIGHTS)


def test_standalone_vae_replaces_the_models_own(built, tmp_path):
    from aigc_desktop.engines.diffusion.single_file import load_vae
    from aigc_desktop.testing.tiny import tiny_family_components

    pipe, path = built["sd1"]
    other = tiny_family_components("sd1", seed=11)["vae"]
    paths = {layout: save_vae(other, tmp_path / f"vae-{layout}.safetensors", layout=layout)
             for layout in ("original", "diffusers")}
    for vae_path in paths.values():
        assert identify(vae_path).kind == "vae"
        vae = load_vae(vae_path, "sd1", torch.float32)
        theirs = other.state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in vae.state_dict().items())
    model = load_model(ModelRef(str(path), vae=str(paths["original"])), CPU, torch.float32)
    reference = type(pipe)(**{**pipe.components, "vae": other})
    reference.set_progress_bar_config(disable=True)
    assert_images_close(_run(model.pipe, False), _run(reference, False), what="model with a standalone VAE",
                        **SAME_WEIGHTS)
    # A folder model takes a standalone VAE too.
    folder = tmp_path / "folder"
    pipe.save_pretrained(str(folder))
    model = load_model(ModelRef(str(folder), vae=str(paths["diffusers"])), CPU, torch.float32)
    assert torch.equal(model.pipe.vae.decoder.conv_out.weight, other.decoder.conv_out.weight)
    # The scaling factor comes from the family the VAE is used with.
    assert load_vae(paths["original"], "sdxl", torch.float32).config.scaling_factor == pytest.approx(0.13025)


def test_hand_chosen_family_for_an_undetectable_file(built, tmp_path):
    """A file whose family the keys do not tell (a UNet alone of an unusual width) gets a message saying what
    was found; the same parts with a text encoder in the layout of the chosen family load."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(built["sd1"][1]))
    unet_only = {k: v for k, v in state.items() if k.startswith("model.diffusion_model.")}
    path = tmp_path / "mystery.safetensors"
    save_file(unet_only, str(path))
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRef(str(path)), CPU, torch.float32)
    message = str(err.value)
    assert "cross-attention width 32 and no text encoder; choose the family by hand" in message
    assert "\n" not in message
    with pytest.raises(ModelLoadError, match="has no text encoder weights"):
        load_model(ModelRef(str(path), family="sd1"), CPU, torch.float32)


def test_resources_tokenizer_gives_clip_ids():
    from aigc_desktop.engines.diffusion.families import family_config

    tok = family_config("sd1").tokenizer()
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert tok.pad_token_id == 49407
    for family, slot in (("sd2", "tokenizer"), ("sdxl", "tokenizer_2")):
        other = family_config(family).tokenizer(slot)
        assert other.pad_token == "!" and other.pad_token_id == 0
        ids = other("a photo of a cat", padding="max_length", max_length=10).input_ids
        assert ids == [49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0]
    assert family_config("sdxl").tokenizer("tokenizer").pad_token_id == 49407


def test_cli_generates_from_a_single_file_with_family_vae_and_prediction_type(built, tmp_path, capsys):
    from aigc_desktop.cli import main
    from aigc_desktop.core.metadata import read_record
    from aigc_desktop.testing.tiny import tiny_family_components

    pipe, path = built["sd2-v"]
    vae = save_vae(tiny_family_components("sd2", seed=11)["vae"], tmp_path / "other-vae.safetensors")
    out = tmp_path / "out.png"
    args = ["generate", "--model", str(path), "--prompt", "a cat", "--steps", "2", "--width", "64",
            "--height", "64", "--seed", "5", "--out", str(out), "--quiet"]
    assert main(args + ["--family", "sd2", "--vae", str(vae), "--prediction-type", "epsilon"]) == 0
    record = read_record(out)
    assert record["model"]["family"] == "sd2" and record["model"]["prediction_type"] == "epsilon"
    assert record["model"]["vae"] == str(vae)
    capsys.readouterr()
    assert main(args + ["--vae", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: VAE file not found") and "\n" not in err
    assert main(args + ["--family", "sd3"]) == 2
